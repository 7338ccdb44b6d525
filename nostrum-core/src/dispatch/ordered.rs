//! Per-key queues for `Tasking::Ordered`: one worker task per busy key, gone when its queue is empty.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc;

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;
type Key = (u64, u64);

/// The queues of one consumer.
pub(super) struct Queues {
    workers: Arc<Mutex<HashMap<Key, mpsc::UnboundedSender<Job>>>>,
}

impl Queues {
    pub(super) fn new() -> Self {
        Self {
            workers: Arc::default(),
        }
    }

    /// Queues `job` behind the earlier jobs of `key`. Returns whether a worker task was spawned.
    pub(super) fn push(&self, key: Key, job: Job) -> bool {
        let mut workers = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
        // A worker removes its entry under this lock, only when its queue is empty, so a sender found
        // here still has a live receiver.
        let job = match workers.get(&key) {
            Some(tx) => match tx.send(job) {
                Ok(()) => return false,
                Err(mpsc::error::SendError(job)) => job,
            },
            None => job,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(job);
        workers.insert(key, tx);
        tokio::spawn(work(key, rx, Arc::clone(&self.workers)));
        true
    }
}

/// Runs the jobs of one key in order; leaves when the queue is empty.
async fn work(
    key: Key,
    mut rx: mpsc::UnboundedReceiver<Job>,
    workers: Arc<Mutex<HashMap<Key, mpsc::UnboundedSender<Job>>>>,
) {
    loop {
        while let Ok(job) = rx.try_recv() {
            job.await; // jobs are guarded: a panic is caught inside
        }
        let mut guard = workers.lock().unwrap_or_else(PoisonError::into_inner);
        if rx.is_empty() {
            guard.remove(&key);
            return;
        }
    }
}
