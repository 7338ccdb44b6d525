//! The in-process rate limiter: per-route queues, learned buckets, a global window, a guard.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::{BucketKey, Outcome, Permit, RateLimiter};

/// How long a queue without requests lives on.
const IDLE: Duration = Duration::from_secs(60);
/// How often requests waiting for the probe after a global 429 look again.
const PROBE_POLL: Duration = Duration::from_millis(50);
/// Discord's window for invalid requests.
const INVALID_WINDOW: Duration = Duration::from_secs(600);

/// The default rate limiter: it waits instead of earning a 429.
///
/// - Requests with the same route and top-level resource (channel, guild, webhook + token,
///   interaction) wait in one queue and are sent one at a time, in the order they were awaited.
/// - Buckets are learned from `X-RateLimit-Bucket`: when one is known to be empty, its requests wait
///   for its reset. Routes that share a bucket share its count.
/// - At most `global` requests per period (50 per second by default) across all routes, except
///   interaction and webhook-token routes.
/// - A 429 pauses its bucket (or everything, for a global one) for `retry_after`; the request is
///   retried first in its queue. After a global 429, one request goes first and the others wait
///   for its answer, so a global pause does not end in a burst of 429s.
/// - When the invalid requests (401, 403, 429 not shared) of the last 10 minutes reach the guard
///   (2,500 by default, a quarter of the 10,000 at which Cloudflare bans), requests wait. (Those
///   already in flight when it is reached still go: hence the margin.)
///
/// ```
/// use std::time::Duration;
/// use nostrum_core::http::{Http, ratelimit::InProcessLimiter};
/// let limiter = InProcessLimiter::builder().global(40, Duration::from_secs(1)).build();
/// let http = Http::builder(None).ratelimiter(limiter.clone()).build();
/// assert_eq!(limiter.invalid_requests(), 0);
/// ```
#[derive(Clone)]
pub struct InProcessLimiter {
    inner: Arc<Inner>,
}

impl fmt::Debug for InProcessLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.lock();
        f.debug_struct("InProcessLimiter")
            .field("global", &self.inner.global)
            .field("invalid_limit", &self.inner.invalid_limit)
            .field("queues", &state.queues.len())
            .field("buckets", &state.buckets.len())
            .finish()
    }
}

/// Configures an [`InProcessLimiter`].
#[derive(Debug)]
#[must_use]
pub struct InProcessLimiterBuilder {
    global: Option<(u32, Duration)>,
    invalid_limit: u32,
}

impl InProcessLimiterBuilder {
    /// At most `requests` per `period` across all routes but interactions (default 50 per second).
    pub fn global(mut self, requests: u32, period: Duration) -> Self {
        self.global = Some((requests.max(1), period));
        self
    }

    /// No global limit (for a proxy that enforces it, or a bot with a raised limit).
    pub fn no_global(mut self) -> Self {
        self.global = None;
        self
    }

    /// How many invalid requests in 10 minutes make requests wait (default 2,500).
    pub fn invalid_request_limit(mut self, limit: u32) -> Self {
        self.invalid_limit = limit.max(1);
        self
    }

    /// The limiter.
    pub fn build(self) -> InProcessLimiter {
        InProcessLimiter {
            inner: Arc::new(Inner {
                global: self.global,
                invalid_limit: self.invalid_limit,
                state: Mutex::new(State::default()),
            }),
        }
    }
}

struct Inner {
    global: Option<(u32, Duration)>,
    invalid_limit: u32,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    queues: HashMap<BucketKey, mpsc::UnboundedSender<oneshot::Sender<Permit>>>,
    /// Route key -> the bucket Discord put it in.
    routes: HashMap<&'static str, Arc<str>>,
    /// (bucket, top-level resource) -> its count.
    buckets: HashMap<(Arc<str>, Box<str>), Bucket>,
    /// Send times given out, the last `global.0` of them.
    global_slots: VecDeque<Instant>,
    /// Set by a global 429.
    global_until: Option<Instant>,
    /// After a global 429 one request goes first (this queue's); the rest wait for its answer.
    probe: Option<BucketKey>,
    probing: bool,
    /// When invalid requests were answered, within the last 10 minutes.
    invalid: VecDeque<Instant>,
}

#[derive(Debug)]
struct Bucket {
    limit: u32,
    remaining: u32,
    reset_at: Option<Instant>,
}

impl Default for InProcessLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl InProcessLimiter {
    /// A limiter with the defaults: 50 requests per second, a guard at 2,500 invalid requests.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A limiter to configure.
    pub fn builder() -> InProcessLimiterBuilder {
        InProcessLimiterBuilder {
            global: Some((50, Duration::from_secs(1))),
            invalid_limit: 2_500,
        }
    }

    /// The invalid requests (401, 403, 429 not shared) answered in the last 10 minutes.
    pub fn invalid_requests(&self) -> usize {
        let mut state = self.inner.lock();
        prune(&mut state.invalid, Instant::now());
        state.invalid.len()
    }

    /// The bucket Discord put a route in, once learned.
    pub fn bucket_of(&self, route: &str) -> Option<String> {
        self.inner.lock().routes.get(route).map(|b| b.to_string())
    }
}

impl RateLimiter for InProcessLimiter {
    fn acquire(&self, key: BucketKey) -> Pin<Box<dyn Future<Output = Permit> + Send>> {
        let (tx, rx) = oneshot::channel();
        {
            let mut state = self.inner.lock();
            let unsent = match state.queues.get(&key) {
                Some(queue) => queue.send(tx).err().map(|back| back.0),
                None => Some(tx),
            };
            if let Some(tx) = unsent {
                let (queue, requests) = mpsc::unbounded_channel();
                let _ = queue.send(tx);
                state.queues.insert(key.clone(), queue);
                tokio::spawn(run_queue(self.inner.clone(), key, requests));
            }
        }
        Box::pin(async move { rx.await.unwrap_or_else(|_| Permit::unlimited()) })
    }
}

/// One queue: grants permits one at a time, in order, each once its bucket and the global limit allow.
async fn run_queue(
    inner: Arc<Inner>,
    key: BucketKey,
    mut requests: mpsc::UnboundedReceiver<oneshot::Sender<Permit>>,
) {
    loop {
        let mut waiter = match tokio::time::timeout(IDLE, requests.recv()).await {
            Ok(Some(waiter)) => waiter,
            Ok(None) => return,
            Err(_) => {
                // Senders only send under the lock, so an empty queue stays empty once removed.
                let mut state = inner.lock();
                if requests.is_empty() {
                    state.queues.remove(&key);
                    return;
                }
                continue;
            }
        };
        loop {
            if waiter.is_closed() {
                break;
            }
            inner.wait_turn(&key).await;
            let (permit, pending) = Permit::channel();
            if waiter.send(permit).is_err() {
                // Gone before its turn: release what the turn took (a probe, say).
                inner.apply(&key, &Outcome::default());
                break;
            }
            let report = pending.await;
            inner.apply(&key, &report.outcome);
            match report.retry {
                Some(retry) => {
                    if report.outcome.status != Some(429)
                        && let Some(backoff) = report.outcome.backoff
                    {
                        tokio::time::sleep(backoff).await;
                    }
                    waiter = retry.0;
                }
                None => break,
            }
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until the global pause, the invalid-request guard, the bucket and the global window
    /// let the request of `key` go; takes one from its bucket and a slot of the window.
    async fn wait_turn(&self, key: &BucketKey) {
        loop {
            let now = Instant::now();
            let wake = self.lock().blocked_until(key, now, self.invalid_limit);
            match wake {
                Some(until) => tokio::time::sleep_until(until).await,
                None => break,
            }
        }
        if !key.exempt
            && let Some((requests, period)) = self.global
        {
            let now = Instant::now();
            let slot = self.lock().reserve_global(now, requests, period);
            if slot > now {
                tokio::time::sleep_until(slot).await;
            }
        }
    }

    /// Learns from an answer: the route's bucket and its count, a 429's pause, invalid requests.
    fn apply(&self, key: &BucketKey, outcome: &Outcome) {
        let now = Instant::now();
        let mut state = self.lock();
        let state = &mut *state;
        let Some(status) = outcome.status else {
            if state.probe.as_ref() == Some(key) {
                state.probing = false;
                state.probe = None;
            }
            return;
        };
        if outcome.is_invalid() {
            state.invalid.push_back(now);
        }
        let global_429 = status == 429 && outcome.global;
        if global_429 {
            state.probing = true;
        } else if state.probe.as_ref() == Some(key) {
            state.probing = false;
            state.probe = None;
        }
        let hash = match &outcome.bucket {
            Some(bucket) => {
                let hash = match state.routes.get(key.route) {
                    Some(known) if **known == **bucket => known.clone(),
                    _ => Arc::<str>::from(&**bucket),
                };
                state.routes.insert(key.route, hash.clone());
                Some(hash)
            }
            None => state.routes.get(key.route).cloned(),
        };
        if let (Some(hash), Some(limit), Some(remaining), Some(reset_after)) =
            (&hash, outcome.limit, outcome.remaining, outcome.reset_after)
        {
            state.buckets.insert(
                (hash.clone(), key.major.clone()),
                Bucket {
                    limit: limit.max(1),
                    remaining,
                    reset_at: Some(now + reset_after),
                },
            );
        }
        if status == 429 {
            let until = now + outcome.retry_after.unwrap_or(Duration::from_secs(1));
            if global_429 {
                state.global_until = state.global_until.max(Some(until));
            } else {
                let hash = hash.unwrap_or_else(|| {
                    let hash = Arc::<str>::from(key.route);
                    state.routes.insert(key.route, hash.clone());
                    hash
                });
                let bucket = state
                    .buckets
                    .entry((hash, key.major.clone()))
                    .or_insert(Bucket {
                        limit: 1,
                        remaining: 0,
                        reset_at: None,
                    });
                bucket.remaining = 0;
                bucket.reset_at = bucket.reset_at.max(Some(until));
            }
        }
        if state.buckets.len() > 4096 {
            state
                .buckets
                .retain(|_, bucket| bucket.reset_at.is_some_and(|t| t > now));
        }
    }
}

impl State {
    /// Until when the request of `key` must wait, or `None` after taking one from its bucket.
    fn blocked_until(
        &mut self,
        key: &BucketKey,
        now: Instant,
        invalid_limit: u32,
    ) -> Option<Instant> {
        if !key.exempt {
            match self.global_until {
                Some(until) if until > now => return Some(until),
                _ => self.global_until = None,
            }
            if self.probing {
                match &self.probe {
                    None => self.probe = Some(key.clone()),
                    Some(probe) if probe == key => {}
                    // Look again shortly: the probe's answer ends the wait.
                    Some(_) => return Some(now + PROBE_POLL),
                }
            }
        }
        prune(&mut self.invalid, now);
        if self.invalid.len() >= invalid_limit as usize {
            return self.invalid.front().map(|t| *t + INVALID_WINDOW);
        }
        let hash = self.routes.get(key.route)?.clone();
        let bucket = self.buckets.get_mut(&(hash, key.major.clone()))?;
        if bucket.reset_at.is_some_and(|t| t <= now) {
            bucket.remaining = bucket.limit;
            bucket.reset_at = None;
        }
        if bucket.remaining == 0
            && let Some(reset) = bucket.reset_at
        {
            return Some(reset);
        }
        bucket.remaining = bucket.remaining.saturating_sub(1);
        None
    }

    /// The send time of the next request under the global limit: no more than `requests` in any
    /// `period` (a sliding window, so no burst of twice the limit across a window's edge).
    fn reserve_global(&mut self, now: Instant, requests: u32, period: Duration) -> Instant {
        let slots = &mut self.global_slots;
        let mut slot = now;
        if slots.len() >= requests as usize
            && let Some(oldest) = slots.pop_front()
        {
            slot = slot.max(oldest + period);
        }
        if let Some(last) = slots.back() {
            slot = slot.max(*last);
        }
        slots.push_back(slot);
        slot
    }
}

fn prune(times: &mut VecDeque<Instant>, now: Instant) {
    while times
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= INVALID_WINDOW)
    {
        times.pop_front();
    }
}
