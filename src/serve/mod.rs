//! `cfql serve`: the PostgreSQL wire protocol (simple and extended query, through
//! datafusion-postgres's pgwire, arrow-pg and datafusion-pg-catalog) over cfql's
//! [`Session`], so BI tools and any Postgres driver can browse and query the `cloudflare`
//! catalog. Every connection runs on a fork of one session: one HTTP client, API budget
//! and response cache for all, settings and template variables of its own.
//!
//! It fails closed: a non-loopback address needs TLS and a password, a certificate that
//! does not load stops the start, and everything but reading is refused unless writes
//! were allowed.

mod accept;
mod auth;
mod bind;
mod cancel;
mod catalog;
mod connection;
mod copy;
mod cursors;
mod encode;
mod extended;
mod functions;
mod gate;
mod information_schema;
mod introspection;
mod limits;
mod names;
mod params;
mod pg_overrides;
mod pg_types;
mod rewrite;
mod settings;

use std::fs::File;
use std::io::BufReader;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use datafusion_postgres::pgwire;
use pgwire::api::PgWireServerHandlers;
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, ServerConfig};

pub use accept::Drained;
pub use auth::DATABASE;

use crate::cancel::InFlight;
use crate::error::{Error, Result};
use crate::session::Session;
use accept::Conn;
use auth::{Admit, Login, Startup};
use cancel::{Canceller, Registry};
use connection::Queries;
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
    /// Logged-in connections served at once (more are refused with SQLSTATE 53300); 0
    /// for no limit. A client holds a slot only once it has logged in.
    pub max_connections: usize,
    /// Connections still logging in, at once: past it the one waiting longest is dropped
    /// (so sockets left open and silent never keep a client, or a cancel request, out).
    pub max_startups: usize,
    /// How long a client may take from connecting to being logged in.
    pub startup_timeout: Duration,
    /// The statement timeout of a connection that sets none (`SET statement_timeout`);
    /// `None`: no limit.
    pub statement_timeout: Option<Duration>,
    /// Memory DataFusion's operators may hold for all statements together, in bytes.
    pub memory_limit: usize,
    /// Memory one statement may hold, in bytes (also the largest value one function call
    /// such as `repeat` may build).
    pub statement_memory_limit: usize,
    /// The longest statement text read, in bytes.
    pub max_statement_bytes: usize,
    /// Cores one statement may use (DataFusion's `target_partitions`), so statements of
    /// several clients share the machine.
    pub partitions: usize,
    /// How long a stopping server waits for running statements and writes' calls in
    /// flight to end (their answers recorded) before it gives up on them.
    pub drain_timeout: Duration,
}

impl ServeOptions {
    /// Options for `listen`: user `cfql`, no password (so a loopback address only), no
    /// TLS, read-only, no connection limit, and the default bounds (`cfql serve --help`).
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            user: "cfql".into(),
            password: None,
            tls: None,
            allow_writes: false,
            max_connections: 0,
            max_startups: 32,
            startup_timeout: Duration::from_secs(10),
            statement_timeout: None,
            memory_limit: 2 << 30,
            statement_memory_limit: 512 << 20,
            max_statement_bytes: 1 << 20,
            partitions: 1,
            drain_timeout: Duration::from_secs(90),
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
            .field("max_startups", &self.max_startups)
            .field("startup_timeout", &self.startup_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("memory_limit", &self.memory_limit)
            .field("statement_memory_limit", &self.statement_memory_limit)
            .field("max_statement_bytes", &self.max_statement_bytes)
            .field("partitions", &self.partitions)
            .field("drain_timeout", &self.drain_timeout)
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

/// What every connection's statements obey.
#[derive(Clone)]
pub(super) struct Rules {
    pub(super) allow_writes: bool,
    pub(super) statement_timeout: Option<Duration>,
    pub(super) max_statement_bytes: usize,
    /// Set once the server stops: no new statement runs.
    pub(super) stopping: Arc<AtomicBool>,
    /// Statements running now, on every connection.
    pub(super) statements: InFlight,
}

/// What every connection shares.
struct Shared {
    /// The session every connection forks when its client logs in: the PostgreSQL
    /// catalog is set up on it once (it holds the catalog list it describes, so it lives
    /// as long as the server), and a fork shares it.
    template: Session,
    tls: bool,
    login: Option<Arc<Login>>,
    registry: Arc<Registry>,
    slots: Option<Arc<Semaphore>>,
    starting: Arc<accept::Starting>,
    max_startups: usize,
    startup_timeout: Duration,
    drain_timeout: Duration,
    pids: Arc<pgwire::api::RandomPidSecretKeyGenerator>,
    rules: Rules,
    /// Connections open now (a stopping server gives them a moment to send their last
    /// results).
    connections: InFlight,
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
            template: template(&session, opts)?,
            tls: tls.is_some(),
            login,
            registry: Arc::default(),
            slots: (opts.max_connections > 0)
                .then(|| Arc::new(Semaphore::new(opts.max_connections))),
            starting: Arc::default(),
            max_startups: opts.max_startups.max(1),
            startup_timeout: opts.startup_timeout,
            drain_timeout: opts.drain_timeout,
            pids: Arc::default(),
            rules: Rules {
                allow_writes: opts.allow_writes,
                statement_timeout: opts.statement_timeout,
                max_statement_bytes: opts.max_statement_bytes,
                stopping: Arc::default(),
                statements: InFlight::default(),
            },
            connections: InFlight::default(),
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

    /// What the server is running, to report while it stops.
    pub fn activity(&self) -> Activity {
        Activity {
            statements: self.shared.rules.statements.clone(),
            writes: self.shared.template.engine().writes.clone(),
        }
    }

    /// Serves connections until the task is dropped.
    pub async fn run(self) -> Result<()> {
        self.run_until(std::future::pending()).await;
        Ok(())
    }

    /// Serves connections until `stop` resolves, then stops as a PostgreSQL server does
    /// on a "fast" shutdown, losing nothing: it accepts no new connection and runs no new
    /// statement, cancels the running ones (a read stops; a write starts no new call),
    /// and waits until every write's calls in flight have returned and been recorded
    /// (secrets file, audit log), at most `drain_timeout`. Says what was still running.
    pub async fn run_until(self, stop: impl std::future::Future<Output = ()>) -> Drained {
        tokio::pin!(stop);
        loop {
            let (socket, peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!("cannot accept a connection: {e}");
                        continue;
                    }
                },
                _ = &mut stop => break,
            };
            let (shared, tls) = (self.shared.clone(), self.tls.clone());
            tokio::spawn(accept::serve(shared, socket, peer, tls));
        }
        drop(self.listener);
        accept::drain(&self.shared, self.shared.drain_timeout).await
    }
}

/// What a server is running: statements of its clients, and writes whose calls are in
/// flight (a write goes on, keeping every outcome, after its client went away).
#[derive(Clone, Debug)]
pub struct Activity {
    statements: InFlight,
    writes: InFlight,
}

impl Activity {
    /// Statements running now.
    pub fn statements(&self) -> usize {
        self.statements.count()
    }

    /// Writes with calls in flight now.
    pub fn writes(&self) -> usize {
        self.writes.count()
    }
}

/// The session connections fork: the configured one, with the PostgreSQL catalog and the
/// server's bounds (memory, cores per statement) set up once.
fn template(session: &Session, opts: &ServeOptions) -> Result<Session> {
    let mut template = session.fork()?;
    template.set_limits(
        (
            opts.memory_limit,
            "cfql serve --memory-limit, for all statements together".into(),
        ),
        (
            opts.statement_memory_limit,
            "cfql serve --statement-memory-limit".into(),
        ),
        opts.partitions,
    )?;
    catalog::install(template.context())?;
    limits::install(template.context(), opts.statement_memory_limit);
    Ok(template)
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

/// The handlers of one connection (pgwire asks for them once per socket): nothing of the
/// connection's own is built until its client logs in ([`Conn`]).
struct Connection {
    queries: Arc<Queries>,
    startup: Arc<Startup>,
    canceller: Arc<Canceller>,
}

impl Connection {
    fn new(shared: &Shared, conn: Arc<Conn>) -> Self {
        let admit = Admit {
            require_tls: shared.tls,
            conn: conn.clone(),
            registry: shared.registry.clone(),
            pids: shared.pids.clone(),
        };
        Self {
            queries: Arc::new(Queries {
                parser: Arc::new(Parser { conn: conn.clone() }),
                conn,
            }),
            startup: Arc::new(Startup::new(shared.login.clone(), admit)),
            canceller: Arc::new(Canceller(shared.registry.clone())),
        }
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
