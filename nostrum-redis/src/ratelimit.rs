//! The REST rate limiter with its buckets, global limit and 429 pauses in Redis, shared by processes.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use nostrum_core::http::ratelimit::{BucketKey, Outcome, Permit, RateLimiter, Retry};
use redis::{Script, aio::ConnectionManager};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// How long a queue without requests lives on.
const IDLE: Duration = Duration::from_secs(60);
/// How often a request waiting for another's answer (a probe after a global 429, or the first
/// request of a bucket not learned yet) looks again.
const POLL_MS: u64 = 50;
/// How long a probe or a first request of a bucket may hold the others back before its lease ends
/// (in case its process died).
const LEASE_MS: u64 = 10_000;
/// Added to a bucket's window when a new window starts before any answer tells its real reset.
const WINDOW_MARGIN_MS: u64 = 250;
/// How long one Redis call may take before it counts as failed.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
/// At most one warning per this period about Redis failing (the rest are debug).
const WARN_EVERY: Duration = Duration::from_secs(10);

/// One attempt to take a turn. Returns `{wait_ms, window, learn_key, reservation}`: `wait_ms` 0
/// is a grant (of the bucket's window `window`, -1 when untracked; `learn_key` set when this
/// request learns a bucket for everyone), otherwise wait that long (holding the global slot
/// `reservation` when set) and try again.
const ACQUIRE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local p, route, major = ARGV[1], ARGV[2], ARGV[3]
local exempt = ARGV[4] == '1'
local glimit, gperiod, ilimit = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local qid, nonce, res = ARGV[8], ARGV[9], ARGV[10]
local lease, margin, poll = tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13])
local gkey = p .. ':rl:global'
local held = false
if res ~= '' then
  local score = redis.call('ZSCORE', gkey, res)
  if score then
    score = tonumber(score)
    if score > now then return {score - now, -1, '', res} end
    held = true
  end
end
local function wait(ms)
  if held then redis.call('ZREM', gkey, res) end
  return {math.max(ms, 1), -1, '', ''}
end
local probe_take = false
if not exempt then
  local pause = redis.call('PTTL', p .. ':rl:global_until')
  if pause > 0 then return wait(pause) end
  if redis.call('EXISTS', p .. ':rl:probing') == 1 then
    local owner = redis.call('GET', p .. ':rl:probe')
    if not owner then
      probe_take = true
    elseif owner ~= qid then
      return wait(poll)
    end
  end
end
local ikey = p .. ':rl:invalid'
redis.call('ZREMRANGEBYSCORE', ikey, '-inf', now - 600000)
if redis.call('ZCARD', ikey) >= ilimit then
  local oldest = redis.call('ZRANGE', ikey, 0, 0, 'WITHSCORES')
  return wait(tonumber(oldest[2]) + 600000 - now)
end
local bucket = redis.call('GET', p .. ':rl:route:' .. route)
local bkey, learn = false, ''
local remaining, reset_at, win, confirmed
if not bucket then
  learn = p .. ':rl:learn:route:' .. route .. ':' .. major
elseif bucket ~= '' then
  bkey = p .. ':rl:bucket:' .. bucket .. ':' .. major
  local h = redis.call('HMGET', bkey, 'limit', 'remaining', 'reset_at', 'win', 'window', 'confirmed')
  if h[1] then
    remaining, reset_at, win, confirmed = tonumber(h[2]), tonumber(h[3]), tonumber(h[4]), h[6]
    if now >= reset_at then
      -- A new window: its reset is known once an answer tells it.
      remaining, win, confirmed = tonumber(h[1]), win + 1, '0'
      reset_at = now + tonumber(h[5]) + margin
    end
    if remaining <= 0 then return wait(reset_at - now) end
  else
    learn = p .. ':rl:learn:bucket:' .. bucket .. ':' .. major
    bkey = false
  end
end
if learn ~= '' then
  local owner = redis.call('GET', learn)
  if owner and owner ~= qid then return wait(poll) end
end
if not exempt and glimit > 0 and not held then
  redis.call('ZREMRANGEBYSCORE', gkey, '-inf', now - gperiod)
  local n = redis.call('ZCARD', gkey)
  local slot = now
  if n > 0 then
    local last = tonumber(redis.call('ZRANGE', gkey, -1, -1, 'WITHSCORES')[2])
    slot = math.max(slot, last)
    -- Past a fifth of the limit within the window, requests are paced evenly.
    if n >= math.max(1, math.floor(glimit / 5)) then
      slot = math.max(slot, last + math.floor(gperiod / glimit))
    end
  end
  if n >= glimit then
    local nth = redis.call('ZRANGE', gkey, -glimit, -glimit, 'WITHSCORES')
    slot = math.max(slot, tonumber(nth[2]) + gperiod)
  end
  redis.call('ZADD', gkey, slot, nonce)
  redis.call('PEXPIRE', gkey, slot - now + 2 * gperiod)
  if slot > now then return {slot - now, -1, '', nonce} end
end
if bkey then
  redis.call('HSET', bkey, 'remaining', remaining - 1, 'reset_at', reset_at, 'win', win, 'confirmed', confirmed)
  redis.call('PEXPIRE', bkey, math.max(reset_at - now, 0) + 60000)
end
if learn ~= '' then redis.call('SET', learn, qid, 'PX', lease) end
if probe_take then redis.call('SET', p .. ':rl:probe', qid, 'PX', lease) end
return {0, win or -1, learn, ''}
";

/// Learns from one answer. `ARGV`: prefix, route, major, status (0: no answer), bucket ('' if
/// none), limit, remaining, reset_after (ms), retry_after (ms; -1 for none), global, invalid,
/// queue id, window of the grant, learn key, nonce.
const APPLY: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local p, route, major = ARGV[1], ARGV[2], ARGV[3]
local status = tonumber(ARGV[4])
local limit, rem, ra, retry = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local qid, grant_win, learn, nonce = ARGV[12], tonumber(ARGV[13]), ARGV[14], ARGV[15]
local probe, probing = p .. ':rl:probe', p .. ':rl:probing'
if learn ~= '' and redis.call('GET', learn) == qid then redis.call('DEL', learn) end
if status == 0 then
  if redis.call('GET', probe) == qid then redis.call('DEL', probe, probing) end
  return 0
end
if ARGV[11] == '1' then
  redis.call('ZADD', p .. ':rl:invalid', now, nonce)
  redis.call('PEXPIRE', p .. ':rl:invalid', 600000)
end
if retry < 0 then retry = 1000 end
local global429 = status == 429 and ARGV[10] == '1'
if global429 then
  redis.call('SET', probing, '1', 'PX', retry + 60000)
elseif redis.call('GET', probe) == qid then
  redis.call('DEL', probe, probing)
end
local rkey = p .. ':rl:route:' .. route
local bucket = ARGV[5]
if bucket ~= '' then
  redis.call('SET', rkey, bucket, 'PX', 86400000)
else
  bucket = redis.call('GET', rkey)
  if not bucket then
    bucket = ''
    -- Answered without rate limit headers: the route has no bucket to wait for.
    if status < 500 and status ~= 429 then redis.call('SET', rkey, '', 'PX', 86400000) end
  end
end
if bucket ~= '' and limit >= 0 and rem >= 0 and ra >= 0 then
  local bkey = p .. ':rl:bucket:' .. bucket .. ':' .. major
  local h = redis.call('HMGET', bkey, 'remaining', 'reset_at', 'win', 'window', 'confirmed')
  local answer_reset = now + ra
  local cur_rem, cur_reset, win, window, confirmed
  if not h[1] then
    cur_rem, cur_reset, win, window, confirmed = rem, answer_reset, 1, math.max(ra, 1), '1'
  else
    cur_rem, cur_reset, win = tonumber(h[1]), tonumber(h[2]), tonumber(h[3])
    window, confirmed = math.max(tonumber(h[4]), ra, 1), h[5]
    if grant_win == win then
      -- Granted in this window: the count in Redis already holds requests still in flight.
      if confirmed == '0' then cur_reset = answer_reset else cur_reset = math.max(cur_reset, answer_reset) end
      confirmed = '1'
      cur_rem = math.min(cur_rem, rem)
    elseif answer_reset >= cur_reset + window / 2 then
      -- Discord is in a later window than Redis knows: take its word.
      cur_rem, cur_reset, win, confirmed = rem, answer_reset, win + 1, '1'
    elseif answer_reset > cur_reset - window / 2 then
      -- Same window, from a request Redis did not count in it (a first one, one granted across
      -- a reset, or one let through while Redis failed): count it now.
      cur_rem = math.max(math.min(cur_rem - 1, rem), 0)
      if confirmed == '1' then cur_reset = math.max(cur_reset, answer_reset) end
    end
  end
  redis.call('HSET', bkey, 'limit', math.max(limit, 1), 'remaining', cur_rem, 'reset_at', cur_reset,
    'win', win, 'window', window, 'confirmed', confirmed)
  redis.call('PEXPIRE', bkey, math.max(cur_reset - now, 0) + 60000)
end
if status == 429 then
  if global429 then
    local gu = p .. ':rl:global_until'
    if redis.call('PTTL', gu) < retry then redis.call('SET', gu, '1', 'PX', math.max(retry, 1)) end
  else
    if bucket == '' then
      bucket = route
      redis.call('SET', rkey, route, 'PX', 86400000)
    end
    local bkey = p .. ':rl:bucket:' .. bucket .. ':' .. major
    local h = redis.call('HMGET', bkey, 'reset_at', 'window')
    local paused = now + retry
    if not h[1] then
      redis.call('HSET', bkey, 'limit', 1, 'remaining', 0, 'reset_at', paused, 'win', 1,
        'window', math.max(retry, 1), 'confirmed', '1')
    else
      redis.call('HSET', bkey, 'remaining', 0, 'reset_at', math.max(tonumber(h[1]), paused), 'confirmed', '1')
    end
    redis.call('PEXPIRE', bkey, retry + 60000)
  end
end
return 0
";

/// A REST rate limiter whose state lives in Redis, so that many processes with one token stay
/// under Discord's limits together.
///
/// It behaves like [`InProcessLimiter`](nostrum_core::http::ratelimit::InProcessLimiter), with
/// the shared parts in Redis:
///
/// - Requests with the same route and top-level resource wait in one queue per process and are
///   sent one at a time, in the order they were awaited (a task per queue, as in process).
/// - Buckets are learned from `X-RateLimit-Bucket`, `-Limit`, `-Remaining` and `-Reset-After`;
///   the route to bucket mapping and each bucket's count live in Redis. Each grant takes one from
///   the count in a Lua script, atomically with the global check, so requests in flight from any
///   process are counted before their answers arrive. Until a bucket is known for a route and
///   resource, one request at a time across all processes goes first to learn it.
/// - At most `global` requests per period (50 per second by default) across every process, bar
///   interaction and webhook-token routes: a sliding window in a sorted set, its slots reserved
///   ahead so waiting requests sleep instead of polling. A fifth of the limit may go at once;
///   past that within a window, requests are paced evenly (one per `period / requests`), so that
///   the requests of a burst, delayed differently on their way, do not arrive together with the
///   next window's. The window is also kept a little longer than the period (50 ms by default,
///   [`global_margin`](RedisRateLimiterBuilder::global_margin)) to absorb network jitter.
/// - A 429 pauses its bucket for `retry_after`; a global 429 pauses every process (a key with
///   `PX`), after which one request goes first and the others wait for its answer.
/// - When the invalid requests (401, 403, 429 not shared) of all processes in the last 10 minutes
///   reach the guard (2,500 by default), requests wait.
/// - All times are Redis's `TIME`, so the processes' clocks do not matter.
///
/// When Redis fails or does not answer within 2 s, the limiter logs a warning (at most one per
/// 10 s), waits [`fallback_wait`](RedisRateLimiterBuilder::fallback_wait) (250 ms by default;
/// a retry after a 429 waits its `retry_after` first) and lets the request go: it never panics
/// and never loses a request, but until Redis is back the only limits are one request at a time
/// per queue and that wait, not the buckets or the global limit.
///
/// Keys (prefix [`DEFAULT_PREFIX`](Self::DEFAULT_PREFIX), `nostrum`, unless
/// [`RedisRateLimiterBuilder::prefix`] says otherwise): `{prefix}:rl:route:{route}` (a route's
/// bucket), `{prefix}:rl:bucket:{bucket}:{major}` (a hash: `limit`, `remaining`, `reset_at`,
/// `win`, `window`, `confirmed`), `{prefix}:rl:global` (sorted set of send times),
/// `{prefix}:rl:global_until` (a global 429's pause), `{prefix}:rl:probing` and
/// `{prefix}:rl:probe` (after a global 429), `{prefix}:rl:learn:...` (a bucket being learned) and
/// `{prefix}:rl:invalid` (sorted set of invalid answers). The scripts build key names from the
/// prefix, so on Redis Cluster put the prefix in braces (`{mybot}`) to keep them in one slot.
///
/// ```no_run
/// use nostrum_core::http::Http;
/// use nostrum_redis::RedisRateLimiter;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = redis::Client::open("redis://127.0.0.1/")?;
/// let connection = redis::aio::ConnectionManager::new(client).await?;
/// let limiter = RedisRateLimiter::builder(connection).prefix("mybot").build();
/// let http = Http::builder(Some("token".into())).ratelimiter(limiter).build();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisRateLimiter {
    inner: Arc<Inner>,
}

impl fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("prefix", &self.inner.prefix)
            .field("global", &self.inner.global)
            .field("global_margin", &self.inner.global_margin)
            .field("invalid_limit", &self.inner.invalid_limit)
            .field("fallback_wait", &self.inner.fallback_wait)
            .field("queues", &self.inner.queues().len())
            .finish_non_exhaustive()
    }
}

/// Configures a [`RedisRateLimiter`]; made by [`RedisRateLimiter::builder`].
#[derive(Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct RedisRateLimiterBuilder {
    connection: ConnectionManager,
    prefix: String,
    global: Option<(u32, Duration)>,
    global_margin: Duration,
    invalid_limit: u32,
    fallback_wait: Duration,
}

impl RedisRateLimiterBuilder {
    /// The prefix of every key (default `nostrum`): every process of one bot must use the same,
    /// and each bot sharing a Redis its own.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// At most `requests` per `period` across all processes and routes but interactions and
    /// webhook tokens (default 50 per second).
    pub fn global(mut self, requests: u32, period: Duration) -> Self {
        self.global = Some((requests.max(1), period));
        self
    }

    /// No global limit (for a proxy that enforces it, or a bot with a raised limit).
    pub fn no_global(mut self) -> Self {
        self.global = None;
        self
    }

    /// How much longer than the period the global window is kept (default 50 ms), to absorb the
    /// difference in latency between requests on their way to Discord.
    pub fn global_margin(mut self, margin: Duration) -> Self {
        self.global_margin = margin;
        self
    }

    /// How many invalid requests of all processes in 10 minutes make requests wait (default
    /// 2,500).
    pub fn invalid_request_limit(mut self, limit: u32) -> Self {
        self.invalid_limit = limit.max(1);
        self
    }

    /// How long a request waits before it goes anyway when Redis fails (default 250 ms).
    pub fn fallback_wait(mut self, wait: Duration) -> Self {
        self.fallback_wait = wait;
        self
    }

    /// The limiter. It does not talk to Redis until the first request.
    pub fn build(self) -> RedisRateLimiter {
        RedisRateLimiter {
            inner: Arc::new(Inner {
                connection: self.connection,
                prefix: self.prefix,
                global: self.global,
                global_margin: self.global_margin,
                invalid_limit: self.invalid_limit,
                fallback_wait: self.fallback_wait,
                acquire: Script::new(ACQUIRE),
                apply: Script::new(APPLY),
                queues: Mutex::new(HashMap::new()),
                epoch: Instant::now(),
                last_warn: AtomicU64::new(0),
            }),
        }
    }
}

impl RedisRateLimiter {
    /// The key prefix unless [`RedisRateLimiterBuilder::prefix`] says otherwise.
    pub const DEFAULT_PREFIX: &'static str = "nostrum";

    /// A limiter with the defaults: prefix `nostrum`, 50 requests per second, a guard at 2,500
    /// invalid requests.
    pub fn new(connection: ConnectionManager) -> Self {
        Self::builder(connection).build()
    }

    /// A limiter to configure.
    pub fn builder(connection: ConnectionManager) -> RedisRateLimiterBuilder {
        RedisRateLimiterBuilder {
            connection,
            prefix: Self::DEFAULT_PREFIX.to_owned(),
            global: Some((50, Duration::from_secs(1))),
            global_margin: Duration::from_millis(50),
            invalid_limit: 2_500,
            fallback_wait: Duration::from_millis(250),
        }
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }
}

impl RateLimiter for RedisRateLimiter {
    fn acquire(&self, key: BucketKey) -> Pin<Box<dyn Future<Output = Permit> + Send>> {
        let (tx, rx) = oneshot::channel();
        {
            let mut queues = self.inner.queues();
            let unsent = match queues.get(&key) {
                Some(queue) => queue.send(tx).err().map(|back| back.0),
                None => Some(tx),
            };
            if let Some(tx) = unsent {
                let (queue, requests) = mpsc::unbounded_channel();
                let _ = queue.send(tx);
                queues.insert(key.clone(), queue);
                tokio::spawn(run_queue(self.inner.clone(), key, requests));
            }
        }
        Box::pin(async move { rx.await.unwrap_or_else(|_| Permit::unlimited()) })
    }
}

type Queue = mpsc::UnboundedSender<oneshot::Sender<Permit>>;

struct Inner {
    connection: ConnectionManager,
    prefix: String,
    global: Option<(u32, Duration)>,
    global_margin: Duration,
    invalid_limit: u32,
    fallback_wait: Duration,
    acquire: Script,
    apply: Script,
    queues: Mutex<HashMap<BucketKey, Queue>>,
    /// For `last_warn`, in ms since this.
    epoch: Instant,
    last_warn: AtomicU64,
}

/// A request waiting for its first permit, or for another after a retry.
enum Waiter {
    First(oneshot::Sender<Permit>),
    Again(Retry),
}

impl Waiter {
    fn is_closed(&self) -> bool {
        match self {
            Self::First(tx) => tx.is_closed(),
            Self::Again(retry) => retry.is_closed(),
        }
    }

    fn send(self, permit: Permit) -> Result<(), Permit> {
        match self {
            Self::First(tx) => tx.send(permit),
            Self::Again(retry) => retry.grant(permit),
        }
    }
}

/// What a grant needs to hand back with its answer.
struct Grant {
    /// The bucket window it was counted in (-1: none).
    window: i64,
    /// The key of the bucket it learns for everyone, if any.
    learn: String,
}

impl Grant {
    fn untracked() -> Self {
        Self {
            window: -1,
            learn: String::new(),
        }
    }
}

/// One queue: grants permits one at a time, in order, each once Redis says its bucket and the
/// global limit allow.
async fn run_queue(
    inner: Arc<Inner>,
    key: BucketKey,
    mut requests: mpsc::UnboundedReceiver<oneshot::Sender<Permit>>,
) {
    let queue_id = format!("{:016x}", fastrand::u64(..));
    loop {
        let mut waiter = match tokio::time::timeout(IDLE, requests.recv()).await {
            Ok(Some(waiter)) => Waiter::First(waiter),
            Ok(None) => return,
            Err(_) => {
                // Senders only send under the lock, so an empty queue stays empty once removed.
                let mut queues = inner.queues();
                if requests.is_empty() {
                    queues.remove(&key);
                    return;
                }
                continue;
            }
        };
        // A 429's pause, kept here too in case Redis did not get it.
        let mut not_before = None;
        loop {
            if waiter.is_closed() {
                break;
            }
            if let Some(until) = not_before {
                tokio::time::sleep_until(until).await;
            }
            let grant = inner.wait_turn(&key, &queue_id).await;
            let (permit, pending) = Permit::channel();
            if waiter.send(permit).is_err() {
                // Gone before its turn: release what the turn took (a probe, a lease).
                inner
                    .apply(&key, &queue_id, &grant, &Outcome::default())
                    .await;
                break;
            }
            let report = pending.await;
            inner.apply(&key, &queue_id, &grant, &report.outcome).await;
            match report.retry {
                Some(retry) => {
                    if report.outcome.status == Some(429) {
                        not_before = Some(Instant::now() + report.outcome.wait_before_retry());
                    } else if let Some(backoff) = report.outcome.backoff {
                        tokio::time::sleep(backoff).await;
                    }
                    waiter = Waiter::Again(retry);
                }
                None => break,
            }
        }
    }
}

/// Milliseconds, rounded up, as a Redis argument.
fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros().div_ceil(1000)).unwrap_or(i64::MAX)
}

impl Inner {
    fn queues(&self) -> MutexGuard<'_, HashMap<BucketKey, Queue>> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Logs a Redis failure: a warning at most once per [`WARN_EVERY`], debug otherwise.
    fn redis_failed(&self, key: &BucketKey, what: &str, error: &str) {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_warn.load(Ordering::Relaxed);
        let every = u64::try_from(WARN_EVERY.as_millis()).unwrap_or(u64::MAX);
        if (last == 0 || now.saturating_sub(last) >= every)
            && self
                .last_warn
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(route = key.route(), %error, "REST rate limiter: Redis failed to {what}; limiting in this process only until it is back");
        } else {
            tracing::debug!(route = key.route(), %error, "REST rate limiter: Redis failed to {what}");
        }
    }

    /// Waits until Redis grants the request of `key` a turn (or Redis fails: then after the
    /// fallback wait).
    async fn wait_turn(&self, key: &BucketKey, queue_id: &str) -> Grant {
        let mut reservation = String::new();
        loop {
            match self.try_acquire(key, queue_id, &reservation).await {
                Ok((0, window, learn, _)) => return Grant { window, learn },
                Ok((wait, _, _, held)) => {
                    reservation = held;
                    let wait = Duration::from_millis(u64::try_from(wait).unwrap_or(1));
                    tokio::time::sleep(wait).await;
                }
                Err(error) => {
                    self.redis_failed(key, "grant a turn", &error);
                    tokio::time::sleep(self.fallback_wait).await;
                    return Grant::untracked();
                }
            }
        }
    }

    async fn try_acquire(
        &self,
        key: &BucketKey,
        queue_id: &str,
        reservation: &str,
    ) -> Result<(i64, i64, String, String), String> {
        let (global_limit, global_period) = match self.global {
            Some((requests, period)) => (requests, millis(period + self.global_margin)),
            None => (0, 0),
        };
        let mut invocation = self.acquire.prepare_invoke();
        invocation
            .arg(&self.prefix)
            .arg(key.route())
            .arg(key.major())
            .arg(if key.exempt_from_global() { "1" } else { "0" })
            .arg(global_limit)
            .arg(global_period)
            .arg(self.invalid_limit)
            .arg(queue_id)
            .arg(format!("{queue_id}:{:016x}", fastrand::u64(..)))
            .arg(reservation)
            .arg(LEASE_MS)
            .arg(WINDOW_MARGIN_MS)
            .arg(POLL_MS);
        let mut connection = self.connection.clone();
        match tokio::time::timeout(REDIS_TIMEOUT, invocation.invoke_async(&mut connection)).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!("no answer within {REDIS_TIMEOUT:?}")),
        }
    }

    /// Hands an answer to Redis: the route's bucket and its count, a 429's pause, an invalid
    /// request, the end of a probe or of a learning request.
    async fn apply(&self, key: &BucketKey, queue_id: &str, grant: &Grant, outcome: &Outcome) {
        let opt = |value: Option<u32>| value.map_or(-1, i64::from);
        let mut invocation = self.apply.prepare_invoke();
        invocation
            .arg(&self.prefix)
            .arg(key.route())
            .arg(key.major())
            .arg(outcome.status.unwrap_or(0))
            .arg(outcome.bucket.as_deref().unwrap_or(""))
            .arg(opt(outcome.limit))
            .arg(opt(outcome.remaining))
            .arg(outcome.reset_after.map_or(-1, millis))
            .arg(outcome.retry_after.map_or(-1, millis))
            .arg(if outcome.global { "1" } else { "0" })
            .arg(if outcome.is_invalid() { "1" } else { "0" })
            .arg(queue_id)
            .arg(grant.window)
            .arg(&grant.learn)
            .arg(format!("{queue_id}:{:016x}", fastrand::u64(..)));
        let mut connection = self.connection.clone();
        let result = tokio::time::timeout(
            REDIS_TIMEOUT,
            invocation.invoke_async::<i64>(&mut connection),
        )
        .await;
        let error = match result {
            Ok(Ok(_)) => return,
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!("no answer within {REDIS_TIMEOUT:?}"),
        };
        self.redis_failed(key, "record an answer", &error);
    }
}
