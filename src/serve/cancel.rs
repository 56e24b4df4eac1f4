//! Cancel requests: a client's cancel (psql's Ctrl-C) arrives on a connection of its own
//! with the key the server gave the session at start-up; it fires that session's running
//! statement's [`Cancel`], which stops its HTTP calls the way Ctrl-C stops the CLI's (a
//! write starts no new call and keeps every outcome already returned).
//!
//! pgwire's own cancel path drops the running statement's future instead; a write in
//! flight would then lose the secrets it was returning to the client. So the server never
//! gives pgwire a connection manager and keeps this registry itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use datafusion_postgres::pgwire::api::cancel::CancelHandler;
use datafusion_postgres::pgwire::messages::cancel::CancelRequest;

use crate::cancel::Cancel;

type Key = (i32, Bytes);

/// The statement a connection is running, if any (and whether it writes): what a
/// cancel request fires.
#[derive(Debug, Default)]
pub(super) struct Running(Mutex<Option<(Cancel, bool)>>);

impl Running {
    /// A fresh cancel for the statement about to run; `write` if it writes.
    pub(super) fn start(&self, write: bool) -> Cancel {
        let cancel = Cancel::new();
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some((cancel.clone(), write));
        cancel
    }

    /// Fires the running statement's cancel if it only reads: a client that hung up
    /// stops its reads spending the API budget, while a write it started goes on to its
    /// end (every secret to the secrets file), as the client asked.
    pub(super) fn fire_read(&self) {
        if let Some((c, false)) = self.0.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            c.cancel();
        }
    }

    /// The statement finished: a late cancel request finds nothing to stop.
    pub(super) fn finish(&self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Fires the running statement's cancel, if a statement runs.
    pub(super) fn fire(&self) {
        if let Some((c, _)) = self.0.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            c.cancel();
        }
    }
}

/// Every live connection's cancel key and running statement.
#[derive(Debug, Default)]
pub(super) struct Registry {
    live: Mutex<HashMap<Key, Arc<Running>>>,
}

impl Registry {
    /// Registers a connection; it is forgotten when the returned guard drops (with the
    /// connection).
    pub(super) fn register(self: &Arc<Self>, key: Key, running: Arc<Running>) -> Registration {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone(), running);
        Registration {
            key,
            registry: self.clone(),
        }
    }

    /// Fires every connection's running statement (the server is stopping).
    pub(super) fn fire_all(&self) {
        let live: Vec<Arc<Running>> = self
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        for running in live {
            running.fire();
        }
    }

    fn fire(&self, key: &Key) -> bool {
        let running = self
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned();
        running.map(|r| r.fire()).is_some()
    }
}

/// Removes a connection from the registry when dropped.
#[derive(Debug)]
pub(super) struct Registration {
    key: Key,
    registry: Arc<Registry>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.key);
    }
}

/// pgwire's hook for cancel requests, on the registry.
pub(super) struct Canceller(pub(super) Arc<Registry>);

#[async_trait]
impl CancelHandler for Canceller {
    async fn on_cancel_request(&self, request: CancelRequest) {
        let key = (request.pid, request.secret_key.to_bytes());
        if self.0.fire(&key) {
            tracing::info!("cancel request for connection {}", request.pid);
        }
    }
}
