//! `cfql serve`: the PostgreSQL wire protocol (simple and extended query, through
//! datafusion-postgres's pgwire, arrow-pg and datafusion-pg-catalog) over cfql's
//! [`Session`], so BI tools and any Postgres driver can browse and query the `cloudflare`
//! catalog. Every connection runs on a fork of one session: one HTTP client, API budget
//! and response cache for all, settings and template variables of its own.
//!
//! It fails closed: a non-loopback address needs TLS and a password, a certificate that
//! does not load stops the start, and everything but reading is refused unless writes
//! were allowed.

mod auth;
mod cancel;
mod catalog;
mod connection;
mod encode;
mod extended;
mod functions;
mod gate;
mod params;
mod rewrite;

use std::fs::File;
use std::io::BufReader;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use datafusion_postgres::pgwire;
use pgwire::api::PgWireServerHandlers;
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, ServerConfig};

pub use auth::DATABASE;

use crate::error::{Error, Result};
use crate::session::Session;
use auth::{Admit, Login, Startup};
use cancel::{Canceller, Registry, Running};
use connection::{Core, Queries};
use extended::Parser;

/// How the server listens and whom it lets in. `Debug` never shows the password.
#[derive(Clone)]
pub struct ServeOptions {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The user name clients log in as (with `password`).
    pub user: String,
    /// The password clients must give (SCRAM-SHA-256); `None` lets anyone who can
    /// connect in, which only a loopback address allows.
    pub password: Option<String>,
    /// Certificate and key (PEM) for TLS.
    pub tls: Option<TlsFiles>,
    /// Run cfql's writes (INSERT, UPDATE, REPLACE, DELETE, EXEC); else they are refused.
    /// Needs the session's `Config::secrets_file`, so no secret depends on the client
    /// staying connected to read it.
    pub allow_writes: bool,
    /// Connections served at once (more are refused with SQLSTATE 53300); 0 for no limit.
    pub max_connections: usize,
}

impl ServeOptions {
    /// Options for `listen`: user `cfql`, no password (so a loopback address only), no
    /// TLS, read-only, no connection limit.
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            user: "cfql".into(),
            password: None,
            tls: None,
            allow_writes: false,
            max_connections: 0,
        }
    }
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("listen", &self.listen)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<set>"))
            .field("tls", &self.tls)
            .field("allow_writes", &self.allow_writes)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// A certificate chain and its private key, PEM files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// What every connection shares.
struct Shared {
    root: Session,
    tls: bool,
    login: Option<Arc<Login>>,
    allow_writes: bool,
    registry: Arc<Registry>,
    slots: Option<Arc<Semaphore>>,
}

/// A bound server; [`Server::run`] serves it.
pub struct Server {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("listen", &self.listener.local_addr().ok())
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Checks `opts` (refusing what would serve in clear or unauthenticated off
    /// loopback), loads TLS and binds. Connections fork `session`.
    pub async fn bind(session: Session, opts: &ServeOptions) -> Result<Server> {
        check(opts)?;
        if opts.allow_writes && session.engine().config.secrets_file.is_none() {
            return Err(Error::Config(
                "serving writes needs a secrets file (Config::secrets_file): a client that goes away \
                 mid-result would take the only copy of the secrets it was being sent"
                    .into(),
            ));
        }
        let tls = opts.tls.as_ref().map(load_tls).transpose()?;
        let listener = TcpListener::bind(opts.listen)
            .await
            .map_err(|e| Error::Config(format!("cannot listen on {}: {e}", opts.listen)))?;
        let login = opts
            .password
            .as_deref()
            .map(|p| Arc::new(Login::new(&opts.user, p)));
        let shared = Arc::new(Shared {
            root: session,
            tls: tls.is_some(),
            login,
            allow_writes: opts.allow_writes,
            registry: Arc::default(),
            slots: (opts.max_connections > 0)
                .then(|| Arc::new(Semaphore::new(opts.max_connections))),
        });
        Ok(Server {
            listener,
            tls,
            shared,
        })
    }

    /// The address it listens on (the port, when bound to port 0).
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener
            .local_addr()
            .map_err(|e| Error::Config(format!("cannot read the listening address: {e}")))
    }

    /// Serves connections until the task is dropped.
    pub async fn run(self) -> Result<()> {
        loop {
            let (socket, peer) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("cannot accept a connection: {e}");
                    continue;
                }
            };
            let permit = match &self.shared.slots {
                None => None,
                Some(slots) => match slots.clone().try_acquire_owned() {
                    Ok(p) => Some(p),
                    Err(_) => {
                        tokio::spawn(refuse_busy(socket));
                        continue;
                    }
                },
            };
            let handlers = match Connection::new(&self.shared) {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!("cannot start a session for {peer}: {e}");
                    continue;
                }
            };
            let tls = self.tls.clone();
            tokio::spawn(async move {
                let _permit = permit;
                if let Err(e) = pgwire::tokio::process_socket(socket, tls, handlers).await {
                    tracing::debug!("connection from {peer} ended: {e}");
                }
            });
        }
    }
}

/// The start-up checks: nothing served in clear or without a password off loopback.
fn check(opts: &ServeOptions) -> Result<()> {
    if opts.password.as_deref() == Some("") {
        return Err(Error::Config("the server's password is empty".into()));
    }
    if !opts.listen.ip().is_loopback() && (opts.tls.is_none() || opts.password.is_none()) {
        return Err(Error::Config(format!(
            "refusing to serve on {}, which is not a loopback address, without both TLS and a password: \
             passwords and results (secrets among them) would cross the network in clear or to anyone",
            opts.listen
        )));
    }
    Ok(())
}

/// Loads the certificate and key; any failure stops the start (never a fallback to
/// serving in clear).
fn load_tls(files: &TlsFiles) -> Result<TlsAcceptor> {
    let bad = |what: &str, path: &PathBuf, e: String| {
        Error::Config(format!(
            "cannot load the TLS {what} {}: {e}",
            path.display()
        ))
    };
    let open = |path: &PathBuf, what: &str| {
        File::open(path)
            .map(BufReader::new)
            .map_err(|e| bad(what, path, e.to_string()))
    };
    let certs = rustls_pemfile::certs(&mut open(&files.cert, "certificate")?)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad("certificate", &files.cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(bad(
            "certificate",
            &files.cert,
            "no PEM certificate in it".into(),
        ));
    }
    let key = rustls_pemfile::private_key(&mut open(&files.key, "key")?)
        .map_err(|e| bad("key", &files.key, e.to_string()))?
        .ok_or_else(|| bad("key", &files.key, "no PEM private key in it".into()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| bad("certificate and key", &files.cert, e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Tells a client over the limit why it is turned away (FATAL 53300, as PostgreSQL's
/// "too many clients"), without reading its start-up.
async fn refuse_busy(mut socket: TcpStream) {
    let mut body = Vec::new();
    for (field, value) in [
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', "53300"),
        (
            b'M',
            "sorry, too many clients already (cfql serve --max-connections)",
        ),
    ] {
        body.push(field);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = vec![b'E'];
    msg.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    msg.extend_from_slice(&body);
    let _ = socket.write_all(&msg).await;
    let _ = socket.shutdown().await;
}

/// The handlers of one connection (pgwire asks for them once per socket).
struct Connection {
    queries: Arc<Queries>,
    startup: Arc<Startup>,
    canceller: Arc<Canceller>,
}

impl Connection {
    fn new(shared: &Shared) -> Result<Self> {
        let session = Arc::new(shared.root.fork()?);
        catalog::install(session.context())?;
        let running = Arc::new(Running::default());
        let core = Arc::new(Core::new(
            session.clone(),
            running.clone(),
            shared.allow_writes,
        ));
        let admit = Admit {
            require_tls: shared.tls,
            session,
            running,
            registry: shared.registry.clone(),
        };
        Ok(Self {
            queries: Arc::new(Queries {
                parser: Arc::new(Parser { core: core.clone() }),
                core,
            }),
            startup: Arc::new(Startup::new(shared.login.clone(), admit)),
            canceller: Arc::new(Canceller(shared.registry.clone())),
        })
    }
}

impl PgWireServerHandlers for Connection {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.queries.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.queries.clone()
    }

    fn startup_handler(&self) -> Arc<impl pgwire::api::auth::StartupHandler> {
        self.startup.clone()
    }

    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        self.canceller.clone()
    }
}
