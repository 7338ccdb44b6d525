//! The identify queue: one IDENTIFY per 5 s per bucket, within the daily session start limit.

use std::{fmt, future::Future, pin::Pin};

use tokio::{
    sync::Mutex,
    time::{Duration, Instant},
};

/// Discord's spacing of IDENTIFYs within one rate limit bucket.
pub const IDENTIFY_INTERVAL: Duration = Duration::from_secs(5);
/// Length of the session start window once the first one resets.
const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// Decides when a shard may send IDENTIFY.
///
/// Every shard of a [`GatewayConfig`](super::GatewayConfig) waits on the same limiter before it
/// identifies. [`IdentifyQueue`] is the in-process one; a limiter shared between processes (in
/// Redis, say) lets shards of one bot run on many machines and still send at most one IDENTIFY per
/// 5 s per `max_concurrency` bucket, within the session start limit.
///
/// The future must be cancel-safe: dropping it gives up the turn without spending a session start.
pub trait IdentifyLimiter: fmt::Debug + Send + Sync + 'static {
    /// Completes when shard `shard_id` may identify, having spent one session start.
    fn wait(&self, shard_id: u32) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

impl IdentifyLimiter for IdentifyQueue {
    fn wait(&self, shard_id: u32) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(IdentifyQueue::wait(self, shard_id))
    }
}

/// The session start budget shared by every bucket.
#[derive(Debug)]
struct Budget {
    /// Starts allowed per window after a reset.
    total: u32,
    /// Starts left in this window.
    remaining: u32,
    /// When the window resets.
    reset_at: Instant,
}

/// Orders the IDENTIFYs of every shard of a process.
///
/// Shard `n` identifies in bucket `n % max_concurrency`; each bucket lets one IDENTIFY through
/// per 5 s, in the order the shards asked. Every IDENTIFY also spends one session start; when
/// none remain, shards wait until the window resets. Build it from `GET /gateway/bot`'s
/// `session_start_limit` and share it (`Arc`) between the shards.
///
/// ```
/// use std::time::Duration;
/// use nostrum_core::gateway::IdentifyQueue;
///
/// # async fn run() {
/// let queue = IdentifyQueue::new(1, 1000, Duration::from_secs(3600));
/// queue.wait(0).await; // shard 0 may identify now
/// # }
/// ```
pub struct IdentifyQueue {
    /// Last IDENTIFY of each bucket, locked for the whole wait so shards go in turn.
    buckets: Box<[Mutex<Option<Instant>>]>,
    /// The shared session start budget.
    budget: Mutex<Budget>,
}

impl fmt::Debug for IdentifyQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentifyQueue")
            .field("max_concurrency", &self.buckets.len())
            .finish_non_exhaustive()
    }
}

impl Default for IdentifyQueue {
    /// One bucket and 1000 session starts a day: Discord's limits for a small bot.
    fn default() -> Self {
        Self::new(1, 1000, DAY)
    }
}

impl IdentifyQueue {
    /// A queue for `max_concurrency` buckets with `remaining` session starts left until
    /// `reset_after`; after the reset, the budget is `max(remaining, 1000)` per 24 hours.
    pub fn new(max_concurrency: u32, remaining: u32, reset_after: Duration) -> Self {
        Self::with_total(max_concurrency, remaining.max(1000), remaining, reset_after)
    }

    /// Like [`new`](Self::new), with the `total` session starts of `session_start_limit`.
    pub fn with_total(
        max_concurrency: u32,
        total: u32,
        remaining: u32,
        reset_after: Duration,
    ) -> Self {
        let buckets = (0..max_concurrency.max(1))
            .map(|_| Mutex::new(None))
            .collect();
        Self {
            buckets,
            budget: Mutex::new(Budget {
                total: total.max(1),
                remaining,
                reset_at: Instant::now() + reset_after,
            }),
        }
    }

    /// The number of buckets (`max_concurrency`).
    pub fn max_concurrency(&self) -> u32 {
        u32::try_from(self.buckets.len()).unwrap_or(u32::MAX)
    }

    /// Waits for this shard's turn to IDENTIFY, and spends one session start.
    ///
    /// At most one IDENTIFY per 5 s per bucket (`shard_id % max_concurrency`); when no session
    /// start remains, waits for the reset. Cancel-safe: dropping the future gives up the turn
    /// without spending anything.
    pub async fn wait(&self, shard_id: u32) {
        let index = usize::try_from(shard_id % self.max_concurrency()).unwrap_or(0);
        let mut last = self.buckets[index].lock().await;
        if let Some(last) = *last {
            tokio::time::sleep_until(last + IDENTIFY_INTERVAL).await;
        }
        {
            let mut budget = self.budget.lock().await;
            let now = Instant::now();
            if now >= budget.reset_at {
                budget.remaining = budget.total;
                budget.reset_at = now + DAY;
            }
            if budget.remaining == 0 {
                tracing::warn!(
                    shard_id,
                    wait = ?budget.reset_at - now,
                    "session start limit exhausted, waiting for the reset"
                );
                tokio::time::sleep_until(budget.reset_at).await;
                budget.remaining = budget.total;
                budget.reset_at = Instant::now() + DAY;
            }
            budget.remaining -= 1;
        }
        *last = Some(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::{IDENTIFY_INTERVAL, IdentifyQueue};
    use std::sync::Arc;
    use tokio::time::{Duration, Instant};

    /// Runs `shards` waits concurrently (asked in shard order) and returns when each passed.
    async fn run(queue: Arc<IdentifyQueue>, shards: u32) -> Vec<Duration> {
        let start = Instant::now();
        let mut handles = Vec::new();
        for shard in 0..shards {
            let queue = Arc::clone(&queue);
            handles.push(tokio::spawn(async move {
                queue.wait(shard).await;
                Instant::now() - start
            }));
            // Let the task reach its bucket so the asking order is the shard order.
            tokio::task::yield_now().await;
        }
        let mut times = Vec::new();
        for handle in handles {
            times.push(handle.await.unwrap());
        }
        times
    }

    #[tokio::test(start_paused = true)]
    async fn one_bucket_spaces_every_identify() {
        let times = run(
            Arc::new(IdentifyQueue::new(1, 1000, Duration::from_secs(3600))),
            16,
        )
        .await;
        let mut sorted = times.clone();
        sorted.sort();
        for pair in sorted.windows(2) {
            assert!(pair[1] - pair[0] >= IDENTIFY_INTERVAL, "{sorted:?}");
        }
        assert_eq!(sorted[0], Duration::ZERO);
        assert!(sorted[15] < IDENTIFY_INTERVAL * 16);
        // Shards went in order.
        assert_eq!(times, sorted);
    }

    #[tokio::test(start_paused = true)]
    async fn buckets_run_side_by_side() {
        let times = run(
            Arc::new(IdentifyQueue::new(4, 1000, Duration::from_secs(3600))),
            16,
        )
        .await;
        for (shard, time) in times.iter().enumerate() {
            // Shards 0-3 at once, 4-7 five seconds later, and so on.
            assert_eq!(
                *time,
                IDENTIFY_INTERVAL * (shard as u32 / 4),
                "shard {shard}"
            );
        }
        for bucket in 0..4 {
            let in_bucket: Vec<_> = times.iter().skip(bucket).step_by(4).collect();
            for pair in in_bucket.windows(2) {
                assert!(*pair[1] - *pair[0] >= IDENTIFY_INTERVAL);
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn exhausted_budget_waits_for_the_reset() {
        let reset = Duration::from_secs(600);
        let queue = Arc::new(IdentifyQueue::with_total(16, 1000, 2, reset));
        let times = run(queue, 4).await;
        assert_eq!(times[0], Duration::ZERO);
        assert_eq!(times[1], Duration::ZERO);
        assert!(times[2] >= reset, "{times:?}");
        assert!(times[3] >= reset, "{times:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn cancelled_wait_spends_nothing() {
        let queue = IdentifyQueue::with_total(1, 1, 1, Duration::from_secs(600));
        let start = Instant::now();
        queue.wait(0).await;
        // The budget is spent; a cancelled wait does not change that or block the bucket.
        let cancelled = tokio::time::timeout(Duration::from_secs(1), queue.wait(0)).await;
        assert!(cancelled.is_err());
        queue.wait(0).await;
        assert!(Instant::now() - start >= Duration::from_secs(600));
    }
}
