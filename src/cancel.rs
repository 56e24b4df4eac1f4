//! Cancellation of a running statement, shared by the caller (Ctrl-C, SIGTERM, a client's
//! cancel request) and the write runner, which must stop *starting* calls without dropping
//! the ones already sent: their answers may carry secrets.

use std::sync::Arc;

use tokio::sync::watch;

/// A cancel signal for one or more statements. Cloning shares the signal.
///
/// Reads stop at once when it fires (dropping a GET loses nothing). Writes start no new
/// mutating call, wait for the calls already sent, and keep their outcomes.
#[derive(Clone, Debug)]
pub struct Cancel {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Cancel {
    fn default() -> Self {
        Self::new()
    }
}

impl Cancel {
    /// A signal that has not fired.
    pub fn new() -> Self {
        Self {
            tx: Arc::new(watch::channel(false).0),
        }
    }

    /// Fires the signal (idempotent).
    pub fn cancel(&self) {
        self.tx.send_replace(true);
    }

    /// Whether the signal has fired.
    pub fn is_cancelled(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once the signal fires.
    pub async fn cancelled(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives as long as `self`, so `wait_for` cannot fail while we wait.
        let _ = rx.wait_for(|fired| *fired).await;
    }
}

/// Work a process must wait for before it exits (a write's calls in flight, a server's
/// running statements): a count, and a way to wait until it is zero. Cloning shares it.
#[derive(Clone, Debug)]
pub struct InFlight {
    count: Arc<watch::Sender<usize>>,
}

impl Default for InFlight {
    fn default() -> Self {
        Self {
            count: Arc::new(watch::channel(0).0),
        }
    }
}

impl InFlight {
    /// Counts one more piece of work until the guard drops.
    pub fn enter(&self) -> InFlightGuard {
        self.count.send_modify(|n| *n += 1);
        InFlightGuard(self.clone())
    }

    /// How many are running now.
    #[cfg_attr(not(feature = "serve"), allow(dead_code))] // used by the server only
    pub fn count(&self) -> usize {
        *self.count.borrow()
    }

    /// Resolves once none is running.
    #[cfg_attr(not(feature = "serve"), allow(dead_code))] // used by the server only
    pub async fn idle(&self) {
        let mut rx = self.count.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

/// One piece of work counted by an [`InFlight`] while it lives.
#[derive(Debug)]
pub struct InFlightGuard(InFlight);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.count.send_modify(|n| *n = n.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fires_once_for_every_clone() {
        let c = Cancel::new();
        let other = c.clone();
        assert!(!other.is_cancelled());
        let waiter = tokio::spawn(async move { other.cancelled().await });
        c.cancel();
        waiter.await.unwrap();
        assert!(c.is_cancelled());
        c.cancel();
        c.cancelled().await;
    }
}
