//! `ShardManager`: each shard's state and latency, and start, stop and restart at run time.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use tokio::task::JoinHandle;

use super::{Runtime, run_shard};
use crate::gateway::{
    GatewayConfig, SessionInfo, Shard, ShardId, ShardSender, ShardState, ShardStatus,
};

/// A shard's state as the manager reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardInfo {
    /// Its number and the total.
    pub id: ShardId,
    /// Where it is in its life.
    pub status: ShardStatus,
    /// The last heartbeat's round trip.
    pub latency: Option<Duration>,
    /// The last sequence number received.
    pub sequence: Option<u64>,
}

struct Running {
    state: Arc<ShardState>,
    sender: ShardSender,
    task: JoinHandle<()>,
}

/// The shards of a client. Cheap to clone.
#[derive(Clone, Default)]
pub struct ShardManager(Arc<Inner>);

#[derive(Default)]
struct Inner {
    attached: OnceLock<(Arc<GatewayConfig>, Arc<Runtime>)>,
    shards: Mutex<BTreeMap<u32, Running>>,
    shutdown: tokio::sync::Notify,
}

impl std::fmt::Debug for ShardManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.info()).finish()
    }
}

impl ShardManager {
    pub(super) fn new() -> Self {
        Self::default()
    }

    pub(super) fn attach(&self, config: Arc<GatewayConfig>, runtime: Arc<Runtime>) {
        let _ = self.0.attached.set((config, runtime));
    }

    /// Every shard's state and latency, by shard number.
    pub fn info(&self) -> Vec<ShardInfo> {
        self.0
            .shards
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|running| ShardInfo {
                id: running.state.id(),
                status: running.state.status(),
                latency: running.state.latency(),
                sequence: running.state.sequence(),
            })
            .collect()
    }

    /// Starts shard `id` (stopping a running one of that number first). Returns `false` before the
    /// client runs.
    pub fn start(&self, id: ShardId) -> bool {
        self.launch(id, None)
    }

    /// Starts shard `id` by resuming `session`, handed over by another process
    /// ([`hand_over`](Self::hand_over) there): no IDENTIFY, and Discord replays the events after
    /// the session's sequence. Returns `false` before the client runs.
    pub fn resume(&self, id: ShardId, session: &SessionInfo) -> bool {
        self.launch(id, Some(session))
    }

    /// Stops shard `number` without ending its session (close 4000), once every event it received
    /// has gone through the pipeline (cache, consumers, sink), and returns the session for another
    /// process to [`resume`](Self::resume). `None` when the shard was not running or had no session
    /// (another process must then identify it).
    pub async fn hand_over(&self, number: u32) -> Option<SessionInfo> {
        let running = self
            .0
            .shards
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&number)?;
        let _ = running.sender.close_resumable();
        let abort = running.task.abort_handle();
        if tokio::time::timeout(Duration::from_secs(10), running.task)
            .await
            .is_err()
        {
            abort.abort();
            tracing::warn!(
                shard = number,
                "the shard did not stop within 10 s of a handover"
            );
        }
        running.state.session()
    }

    fn launch(&self, id: ShardId, session: Option<&SessionInfo>) -> bool {
        let Some((config, runtime)) = self.0.attached.get() else {
            return false;
        };
        let shard = match session {
            Some(session) => Shard::resume_session(id, Arc::clone(config), session),
            None => Shard::new(id, Arc::clone(config)),
        };
        let running = Running {
            state: shard.state(),
            sender: shard.sender(),
            task: tokio::spawn(run_shard(shard, Arc::clone(runtime))),
        };
        let previous = self
            .0
            .shards
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.number, running);
        if let Some(previous) = previous {
            let _ = previous.sender.close();
        }
        true
    }

    /// Stops shard `number` gracefully (close 1000: the session ends). Returns whether it ran.
    pub fn stop(&self, number: u32) -> bool {
        let running = self
            .0
            .shards
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&number);
        running.is_some_and(|running| running.sender.close().is_ok())
    }

    /// Stops shard `number` and starts it again.
    pub fn restart(&self, number: u32) -> bool {
        let id = self
            .0
            .shards
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&number)
            .map(|r| r.state.id());
        id.is_some_and(|id| self.start(id))
    }

    /// The command sender of shard `number`.
    pub fn sender(&self, number: u32) -> Option<ShardSender> {
        self.0
            .shards
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&number)
            .map(|r| r.sender.clone())
    }

    /// Stops every shard gracefully (close 1000: the sessions end) and makes
    /// [`Client::run`](super::Client::run) return `Ok(())`.
    pub async fn shutdown(&self) {
        self.stop_all().await;
        self.0.shutdown.notify_one();
    }

    pub(super) async fn shutdown_requested(&self) {
        self.0.shutdown.notified().await;
    }

    /// Asks every shard to close (1000), waits a moment for the close frames to leave, then ends the
    /// tasks that did not finish.
    pub(super) async fn stop_all(&self) {
        let shards =
            std::mem::take(&mut *self.0.shards.lock().unwrap_or_else(PoisonError::into_inner));
        for running in shards.values() {
            let _ = running.sender.close();
        }
        for running in shards.into_values() {
            let abort = running.task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), running.task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}
