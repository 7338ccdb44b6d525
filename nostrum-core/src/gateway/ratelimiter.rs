//! The per-connection command limiter: 120 sends per 60 s, with a share kept for heartbeats.

use std::collections::VecDeque;

use tokio::time::{Duration, Instant};

/// Discord's window for gateway sends.
pub(crate) const PERIOD: Duration = Duration::from_secs(60);
/// Discord's limit of sends per [`PERIOD`] and connection.
pub(crate) const GATEWAY_LIMIT: usize = 120;
/// Sends per [`PERIOD`] left to user commands. The other 10 are kept for the shard's own
/// sends, which bypass the limiter: heartbeats (2 or 3 a minute at Discord's 41.25 s interval,
/// plus the ones the server asks for with op 1) and the IDENTIFY or RESUME of the connection.
pub(crate) const COMMANDS_PER_PERIOD: usize = GATEWAY_LIMIT - 10;

/// A sliding-window log of the last sends: never more than `max` within any [`PERIOD`].
///
/// Commands that find no permit wait in the shard's queue; they are never dropped.
#[derive(Debug)]
pub(crate) struct CommandRatelimiter {
    /// Instants of the sends within the last period, oldest first.
    sent: VecDeque<Instant>,
    /// Permits per period.
    max: usize,
}

impl CommandRatelimiter {
    /// A limiter with [`COMMANDS_PER_PERIOD`] permits.
    pub(crate) fn new() -> Self {
        Self::with_max(COMMANDS_PER_PERIOD)
    }

    /// A limiter with `max` permits per [`PERIOD`].
    pub(crate) fn with_max(max: usize) -> Self {
        Self {
            sent: VecDeque::with_capacity(max),
            max: max.max(1),
        }
    }

    /// Forgets sends that left the window.
    fn prune(&mut self, now: Instant) {
        while self.sent.front().is_some_and(|&at| at + PERIOD <= now) {
            self.sent.pop_front();
        }
    }

    /// The instant from which a permit is free (`now` or earlier if one is free now).
    pub(crate) fn ready_at(&mut self) -> Instant {
        let now = Instant::now();
        self.prune(now);
        if self.sent.len() < self.max {
            now
        } else {
            // The window is full: the oldest send leaves it first.
            self.sent[self.sent.len() - self.max] + PERIOD
        }
    }

    /// Permits free right now.
    #[cfg(test)]
    pub(crate) fn available(&mut self) -> usize {
        self.prune(Instant::now());
        self.max.saturating_sub(self.sent.len())
    }

    /// Takes a permit. Call only once [`ready_at`](Self::ready_at) has passed.
    pub(crate) fn acquire(&mut self) {
        let now = Instant::now();
        self.prune(now);
        debug_assert!(self.sent.len() < self.max, "acquired without a free permit");
        if self.sent.len() + 1 == self.max {
            tracing::debug!("gateway command limit reached, further commands wait");
        }
        self.sent.push_back(now);
    }
}

#[cfg(test)]
mod tests {
    use super::{COMMANDS_PER_PERIOD, CommandRatelimiter, GATEWAY_LIMIT, PERIOD};
    use tokio::time::{Duration, Instant, sleep_until};

    async fn send(limiter: &mut CommandRatelimiter) -> Instant {
        sleep_until(limiter.ready_at()).await;
        limiter.acquire();
        Instant::now()
    }

    #[tokio::test(start_paused = true)]
    async fn bursts_then_waits_for_the_window() {
        let start = Instant::now();
        let mut limiter = CommandRatelimiter::new();
        assert_eq!(limiter.available(), COMMANDS_PER_PERIOD);
        let mut times = Vec::new();
        for _ in 0..COMMANDS_PER_PERIOD + 5 {
            times.push(send(&mut limiter).await - start);
        }
        assert!(
            times[..COMMANDS_PER_PERIOD]
                .iter()
                .all(|t| *t == Duration::ZERO)
        );
        assert!(times[COMMANDS_PER_PERIOD..].iter().all(|t| *t == PERIOD));
        // At 60 s the first burst left the window; the last five are in it.
        assert_eq!(limiter.available(), COMMANDS_PER_PERIOD - 5);
    }

    #[tokio::test(start_paused = true)]
    async fn no_window_ever_exceeds_the_limit() {
        let start = Instant::now();
        let mut limiter = CommandRatelimiter::with_max(COMMANDS_PER_PERIOD);
        let mut times = Vec::new();
        for i in 0..400u64 {
            // Irregular arrivals: some bursts, some pauses.
            if i % 37 == 0 {
                tokio::time::sleep(Duration::from_millis(i * 97)).await;
            }
            times.push(send(&mut limiter).await);
        }
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..].iter().take_while(|u| **u < *t + PERIOD).count();
            assert!(
                in_window <= COMMANDS_PER_PERIOD,
                "window at {:?}",
                *t - start
            );
        }
        // Room is always left for heartbeats and IDENTIFY.
        const { assert!(COMMANDS_PER_PERIOD + 5 <= GATEWAY_LIMIT) };
    }

    #[tokio::test(start_paused = true)]
    async fn permits_return_as_the_window_slides() {
        let mut limiter = CommandRatelimiter::with_max(2);
        let start = Instant::now();
        send(&mut limiter).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        send(&mut limiter).await;
        assert_eq!(send(&mut limiter).await - start, PERIOD);
        assert_eq!(
            send(&mut limiter).await - start,
            PERIOD + Duration::from_secs(10)
        );
    }
}
