//! Start-up and authentication: the database name a client asks for, the password
//! (SCRAM-SHA-256, so it never crosses the wire even without TLS), the parameters a
//! driver reads at start-up, and, once a client is in, its cancel key and its name in the
//! audit log.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use datafusion_postgres::pgwire;
use futures::Sink;
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::sasl::scram::{ScramAuth, gen_salted_password};
use pgwire::api::auth::{
    AuthSource, DefaultServerParameterProvider, LoginInfo, Password, StartupHandler,
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata,
};
use pgwire::api::{
    ClientInfo, METADATA_DATABASE, METADATA_USER, PgWireConnectionState, PidSecretKeyGenerator,
    RandomPidSecretKeyGenerator,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use super::accept::Conn;
use super::cancel::Registry;

/// The database clients connect to.
pub const DATABASE: &str = "cloudflare";

/// SCRAM's iteration count (PostgreSQL's default).
const ITERATIONS: usize = 4096;

/// The one login the server accepts, kept as SCRAM's salted password (computed once:
/// 4096 rounds of HMAC per connection would be the cost of every connect).
pub(super) struct Login {
    user: String,
    salt: Vec<u8>,
    salted: Vec<u8>,
}

impl Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Login {
    pub(super) fn new(user: &str, password: &str) -> Self {
        let salt: [u8; 16] = rand::random();
        Self {
            user: user.to_string(),
            salt: salt.to_vec(),
            salted: gen_salted_password(password, &salt, ITERATIONS),
        }
    }
}

#[async_trait]
impl AuthSource for Login {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        match login.user() {
            Some(u) if u == self.user => {
                Ok(Password::new(Some(self.salt.clone()), self.salted.clone()))
            }
            other => Err(PgWireError::InvalidPassword(
                other.unwrap_or_default().to_string(),
            )),
        }
    }
}

/// The start-up parameters: PostgreSQL 16's names and formats, which drivers check.
fn parameters() -> DefaultServerParameterProvider {
    let mut p = DefaultServerParameterProvider::default();
    p.server_version = super::catalog::SERVER_VERSION.to_string();
    p.search_path = "user".to_string();
    p.is_superuser = false;
    p
}

/// What a connection does once its client is in: register its cancel key, build its
/// session (named `user@address` in the audit log).
pub(super) struct Admit {
    /// The server has TLS: a client that did not ask for it is refused (as PostgreSQL's
    /// `hostssl`), so no result ever crosses the network in clear.
    pub(super) require_tls: bool,
    pub(super) conn: Arc<Conn>,
    pub(super) registry: Arc<Registry>,
    /// One generator for the server, so each connection has a process id of its own.
    pub(super) pids: Arc<RandomPidSecretKeyGenerator>,
}

impl Admit {
    fn admitted<C: ClientInfo>(&self, client: &mut C) -> PgWireResult<()> {
        let user = client
            .metadata()
            .get(METADATA_USER)
            .cloned()
            .unwrap_or_default();
        let (pid, key) = client.pid_and_secret_key();
        self.conn
            .admit(&user, format!("{user}@{}", client.socket_addr()), pid)?;
        let registration = self
            .registry
            .register((pid, key.to_bytes()), self.conn.running.clone());
        client.session_extensions().insert(Arc::new(registration));
        // `SHOW search_path` answers from here: cfql's default schema, unless the
        // client asked for its own at start-up.
        client
            .metadata_mut()
            .entry("search_path".into())
            .or_insert_with(|| "user".into());
        tracing::info!("{user} connected from {}", client.socket_addr());
        Ok(())
    }
}

/// The start-up handler of one connection.
pub(super) enum Startup {
    /// No password configured (loopback only): anyone who can connect is in.
    Open(Admit),
    /// SCRAM-SHA-256 against the configured login; counts the client's password messages
    /// (the second carries its proof, when a connection slot is taken).
    Scram(
        Box<SASLAuthStartupHandler<DefaultServerParameterProvider>>,
        Admit,
        AtomicUsize,
    ),
}

impl Startup {
    pub(super) fn new(login: Option<Arc<Login>>, admit: Admit) -> Self {
        match login {
            None => Startup::Open(admit),
            Some(login) => {
                let handler = SASLAuthStartupHandler::new(Arc::new(parameters()))
                    .with_scram(ScramAuth::new(login))
                    .with_pid_secret_key_generator(admit.pids.clone());
                Startup::Scram(Box::new(handler), admit, AtomicUsize::new(0))
            }
        }
    }

    fn admit(&self) -> &Admit {
        match self {
            Startup::Open(a) | Startup::Scram(_, a, _) => a,
        }
    }
}

/// Refuses any database but [`DATABASE`], as PostgreSQL refuses one that does not exist.
fn check_database(params: &BTreeMap<String, String>) -> PgWireResult<()> {
    match params.get(METADATA_DATABASE).map(String::as_str) {
        Some(DATABASE) => Ok(()),
        other => Err(fatal(
            "3D000",
            format!(
                "database \"{}\" does not exist: cfql serves one database, connect with dbname={DATABASE}",
                other
                    .or(params.get(METADATA_USER).map(String::as_str))
                    .unwrap_or("")
            ),
        )),
    }
}

/// A start-up refusal: the connection ends.
fn fatal(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".into(),
        code.into(),
        message,
    )))
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let PgWireFrontendMessage::Startup(ref startup) = message {
            if self.admit().require_tls && !client.is_secure() {
                return Err(fatal(
                    "28000",
                    "this server requires TLS: connect with sslmode=require".into(),
                ));
            }
            check_database(&startup.parameters)?;
        }
        match self {
            Startup::Open(admit) => {
                if let PgWireFrontendMessage::Startup(ref startup) = message {
                    protocol_negotiation(client, startup).await?;
                    save_startup_parameters_to_metadata(client, startup);
                    admit.conn.reserve()?;
                    let (pid, key) = admit.pids.generate(client);
                    client.set_pid_and_secret_key(pid, key);
                    finish_authentication(client, &parameters()).await?;
                }
            }
            Startup::Scram(handler, admit, passwords) => {
                // A connection slot is taken when the client sends its proof, not before:
                // a client that stalls while logging in never holds one.
                if matches!(message, PgWireFrontendMessage::PasswordMessageFamily(_))
                    && passwords.fetch_add(1, Ordering::SeqCst) == 1
                {
                    admit.conn.reserve()?;
                }
                // SCRAM's own message names no user (libpq sends `n=` there; pgwire's
                // error would say user ""): name the one the client logged in as.
                handler
                    .on_startup(client, message)
                    .await
                    .map_err(|e| match e {
                        PgWireError::InvalidPassword(_) => PgWireError::InvalidPassword(
                            client
                                .metadata()
                                .get(METADATA_USER)
                                .cloned()
                                .unwrap_or_default(),
                        ),
                        other => other,
                    })?
            }
        }
        if matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            self.admit().admitted(client)?;
        }
        Ok(())
    }
}
