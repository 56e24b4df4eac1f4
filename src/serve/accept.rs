//! A connection from accept to close: the start-up limits (clients not yet logged in have
//! their own limit, past which the one waiting longest is dropped, and a short timeout;
//! they never hold a slot a logged-in client needs, so silent sockets cannot lock clients
//! out, and a cancel request always gets through), the connection's state (created when
//! its client logs in, on a fork of the server's template session), the hang-up watch (a
//! client that goes away cancels its statement), and the drain when the server stops.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use datafusion_postgres::pgwire;
use pgwire::error::{PgWireError, PgWireResult};
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::sync::{Notify, OwnedSemaphorePermit};
use tokio_rustls::TlsAcceptor;

use super::cancel::Running;
use super::connection::Core;
use super::encode::refusal;
use super::{Connection, Shared};

/// The connections still logging in, oldest first. Past the limit the oldest is dropped
/// to make room: a client that logs in as clients do (in milliseconds) always gets in,
/// however many sockets others leave open and silent.
#[derive(Default)]
pub(super) struct Starting {
    waiting: Mutex<VecDeque<(u64, Arc<Notify>)>>,
    next: AtomicU64,
}

impl Starting {
    /// Queues a new connection (dropping the oldest if `limit` are waiting); its ticket
    /// says when it is dropped, and leaves the queue with it.
    fn enter(self: &Arc<Self>, limit: usize) -> Ticket {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let evicted = Arc::new(Notify::new());
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        while waiting.len() >= limit.max(1) {
            if let Some((_, oldest)) = waiting.pop_front() {
                oldest.notify_one();
            }
        }
        waiting.push_back((id, evicted.clone()));
        Ticket {
            id,
            evicted,
            queue: self.clone(),
        }
    }
}

/// A place in [`Starting`]; leaving it (dropped) takes the connection out of the queue.
struct Ticket {
    id: u64,
    evicted: Arc<Notify>,
    queue: Arc<Starting>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.queue
            .waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(id, _)| *id != self.id);
    }
}

/// A connection's state: empty at accept, filled when its client logs in.
pub(super) struct Conn {
    shared: Arc<Shared>,
    pub(super) running: Arc<Running>,
    core: OnceLock<Arc<Core>>,
    slot: Mutex<Option<OwnedSemaphorePermit>>,
    admitted: Notify,
}

impl Conn {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            running: Arc::default(),
            core: OnceLock::new(),
            slot: Mutex::new(None),
            admitted: Notify::new(),
        }
    }

    /// The logged-in connection's session and rules.
    pub(super) fn core(&self) -> PgWireResult<&Arc<Core>> {
        self.core
            .get()
            .ok_or_else(|| refusal("08P01", "the client has not logged in".into()))
    }

    /// Takes one of the server's connection slots for this client, which is about to
    /// log in: FATAL 53300 when none is free.
    pub(super) fn reserve(&self) -> PgWireResult<()> {
        let Some(slots) = &self.shared.slots else {
            return Ok(());
        };
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(slots.clone().try_acquire_owned().map_err(|_| too_many())?);
        }
        Ok(())
    }

    /// The client is in: its session (a fork of the template: shared engine, catalog and
    /// functions; its own settings), named `who` in the audit log.
    pub(super) fn admit(&self, user: &str, who: String, pid: i32) -> PgWireResult<()> {
        self.reserve()?;
        let session = self.shared.template.fork_state();
        session.set_origin(who);
        super::functions::register_user(session.context(), user);
        super::functions::register_backend_pid(session.context(), pid);
        let core = Core::new(
            Arc::new(session),
            self.running.clone(),
            self.shared.rules.clone(),
        );
        let _ = self.core.set(Arc::new(core));
        self.admitted.notify_one();
        Ok(())
    }
}

fn too_many() -> PgWireError {
    PgWireError::UserError(Box::new(pgwire::error::ErrorInfo::new(
        "FATAL".into(),
        "53300".into(),
        "sorry, too many clients already (cfql serve --max-connections)".into(),
    )))
}

/// Serves one accepted socket: its start-up within the server's start-up timeout (unless
/// newer connections push it out of the start-up queue), then its statements, cancelling
/// the running one if the client hangs up.
pub(super) async fn serve(
    shared: Arc<Shared>,
    socket: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
) {
    let _open = shared.connections.enter();
    let ticket = shared.starting.enter(shared.max_startups);
    let conn = Arc::new(Conn::new(shared.clone()));
    let hangup = watch_hangup(&socket, conn.running.clone());
    let handlers = Connection::new(&shared, conn.clone());
    let session = pgwire::tokio::process_socket(socket, tls, handlers);
    tokio::pin!(session);
    tokio::select! {
        r = &mut session => return ended(peer, r),
        _ = conn.admitted.notified() => {}
        _ = ticket.evicted.notified() => {
            tracing::debug!("{peer} was still logging in when newer clients needed its place");
            return;
        }
        _ = tokio::time::sleep(shared.startup_timeout) => {
            tracing::debug!("{peer} did not log in within {:?}", shared.startup_timeout);
            return;
        }
    }
    drop(ticket);
    tokio::select! {
        r = &mut session => ended(peer, r),
        _ = hangup => {}
    }
}

fn ended(peer: SocketAddr, r: Result<(), std::io::Error>) {
    if let Err(e) = r {
        tracing::debug!("connection from {peer} ended: {e}");
    }
}

/// Watches a socket (through a second descriptor of it) for its client hanging up, and
/// then cancels the connection's running read, which stops spending the API budget (a
/// write goes on to its end: see [`Running::fire_read`]). Never resolves, so the
/// connection itself ends it.
fn watch_hangup(socket: &TcpStream, running: Arc<Running>) -> impl Future<Output = ()> + use<> {
    let watched = socket
        .as_fd()
        .try_clone_to_owned()
        .map(std::net::TcpStream::from)
        .and_then(|s| {
            s.set_nonblocking(true)?;
            TcpStream::from_std(s)
        });
    async move {
        let Ok(watched) = watched else {
            return std::future::pending().await;
        };
        loop {
            let Ok(ready) = watched.ready(Interest::READABLE).await else {
                break;
            };
            if ready.is_read_closed() {
                running.fire_read();
                break;
            }
            // Readable: the client sent more (pgwire reads it in turn) or closed. Peeking
            // tells which; nothing pending clears the readiness so the next wait blocks.
            let mut byte = [0u8; 1];
            match watched.try_io(Interest::READABLE, || peek(&watched, &mut byte)) {
                Ok(0) => {
                    running.fire_read();
                    break;
                }
                Ok(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                Err(_) => {}
            }
        }
        std::future::pending().await
    }
}

fn peek(socket: &TcpStream, buf: &mut [u8]) -> std::io::Result<usize> {
    use std::os::fd::AsRawFd;
    // SAFETY: `buf` is valid for `buf.len()` bytes; the descriptor is open while `socket`
    // lives; MSG_PEEK leaves the data for pgwire's own reads.
    let n = unsafe {
        libc::recv(
            socket.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Stops the server's statements once it stops accepting: new ones are refused, running
/// ones are cancelled (a read stops; a write starts no new call and waits for the ones in
/// flight), and this waits until every statement and every write's calls have ended, at
/// most `limit`. Returns how many were still running then.
pub(super) async fn drain(shared: &Shared, limit: Duration) -> Drained {
    shared
        .rules
        .stopping
        .store(true, std::sync::atomic::Ordering::SeqCst);
    shared.registry.fire_all();
    let writes = shared.template.engine().writes.clone();
    let done = async {
        shared.rules.statements.idle().await;
        writes.idle().await;
    };
    let finished = tokio::time::timeout(limit, done).await.is_ok();
    // The last results are still being sent; a client that got its answer closes.
    let _ = tokio::time::timeout(Duration::from_secs(2), shared.connections.idle()).await;
    Drained {
        statements: shared.rules.statements.count(),
        writes: writes.count(),
        finished,
    }
}

/// What a stopping server left running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// Statements still running when the wait ended.
    pub statements: usize,
    /// Writes whose calls were still in flight.
    pub writes: usize,
    /// Whether everything ended within the wait.
    pub finished: bool,
}
