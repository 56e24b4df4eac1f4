//! Memory bounds for statements that share one engine (`cfql serve`'s connections): a
//! DataFusion memory pool that caps one statement inside the shared pool, and the words a
//! statement over a bound fails with. DataFusion's operators (sorts, aggregates, joins)
//! reserve memory before they use it; a reservation past either bound fails the statement,
//! never the process.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::memory_pool::{
    MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
};

/// The start of every memory-bound error's message: how the server's encoder recognises
/// it (SQLSTATE 53200) whatever DataFusion wraps it in.
pub const OUT_OF_MEMORY: &str = "out of memory:";

/// The error of a statement over a memory bound: says which bound, and the number.
pub fn exhausted(what: &str, limit: usize) -> DataFusionError {
    DataFusionError::ResourcesExhausted(format!(
        "{OUT_OF_MEMORY} the statement would hold more than {} ({what}); it was stopped, nothing else was affected",
        human(limit)
    ))
}

/// Bytes as a person reads them (`256 MiB`).
pub fn human(bytes: usize) -> String {
    const MIB: usize = 1 << 20;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// One statement's share of a pool: at most `limit` bytes, and whatever the shared pool
/// (`parent`, the server's bound) still has.
#[derive(Debug)]
pub struct StatementPool {
    parent: Arc<dyn MemoryPool>,
    limit: usize,
    used: AtomicUsize,
    what: String,
}

impl StatementPool {
    /// A pool for one statement inside `parent`; `what` names the bound in errors (such
    /// as the flag that sets it).
    pub fn new(parent: Arc<dyn MemoryPool>, limit: usize, what: impl Into<String>) -> Self {
        Self {
            parent,
            limit,
            used: AtomicUsize::new(0),
            what: what.into(),
        }
    }
}

impl fmt::Display for StatementPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "statement pool ({} of {})",
            human(self.limit),
            self.parent
        )
    }
}

impl MemoryPool for StatementPool {
    fn name(&self) -> &str {
        "cfql-statement"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.parent.register(consumer);
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.parent.unregister(consumer);
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.used.fetch_add(additional, Ordering::SeqCst);
        self.parent.grow(reservation, additional);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |u| {
                Some(u.saturating_sub(shrink))
            });
        self.parent.shrink(reservation, shrink);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> DfResult<()> {
        let limit = self.limit;
        let took = self
            .used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |u| {
                (u + additional <= limit).then_some(u + additional)
            });
        if took.is_err() {
            return Err(exhausted(&self.what, limit));
        }
        if let Err(e) = self.parent.try_grow(reservation, additional) {
            self.used.fetch_sub(additional, Ordering::SeqCst);
            return Err(e);
        }
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.used.load(Ordering::SeqCst)
    }

    fn memory_limit(&self) -> MemoryLimit {
        MemoryLimit::Finite(self.limit)
    }
}

/// The server-wide pool: DataFusion's greedy pool, whose errors name the bound.
#[derive(Debug)]
pub struct ServerPool {
    inner: datafusion::execution::memory_pool::GreedyMemoryPool,
    limit: usize,
    what: String,
}

impl ServerPool {
    /// A pool of `limit` bytes; `what` names the bound in errors.
    pub fn new(limit: usize, what: impl Into<String>) -> Self {
        Self {
            inner: datafusion::execution::memory_pool::GreedyMemoryPool::new(limit),
            limit,
            what: what.into(),
        }
    }
}

impl fmt::Display for ServerPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "server pool ({})", human(self.limit))
    }
}

impl MemoryPool for ServerPool {
    fn name(&self) -> &str {
        "cfql-server"
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.inner.grow(reservation, additional);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.inner.shrink(reservation, shrink);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> DfResult<()> {
        self.inner
            .try_grow(reservation, additional)
            .map_err(|_| exhausted(&self.what, self.limit))
    }

    fn reserved(&self) -> usize {
        self.inner.reserved()
    }

    fn memory_limit(&self) -> MemoryLimit {
        MemoryLimit::Finite(self.limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_stops_at_its_own_bound_and_at_the_servers() {
        let server: Arc<dyn MemoryPool> = Arc::new(ServerPool::new(1000, "server bound"));
        let a: Arc<dyn MemoryPool> = Arc::new(StatementPool::new(server.clone(), 600, "stmt"));
        let b: Arc<dyn MemoryPool> = Arc::new(StatementPool::new(server.clone(), 600, "stmt"));
        let ra = MemoryConsumer::new("a").register(&a);
        let rb = MemoryConsumer::new("b").register(&b);
        ra.try_grow(500).unwrap();
        let e = ra.try_grow(200).unwrap_err().to_string();
        assert!(
            e.contains("out of memory:") && e.contains("600 bytes (stmt)"),
            "{e}"
        );
        rb.try_grow(400).unwrap();
        let e = rb.try_grow(150).unwrap_err().to_string();
        assert!(e.contains("1000 bytes (server bound)"), "{e}");
        assert_eq!(b.reserved(), 400, "a refused reservation is given back");
        drop(ra);
        rb.try_grow(150).unwrap();
    }
}
