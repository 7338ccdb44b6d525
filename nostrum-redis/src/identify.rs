//! One identify queue for every gateway process of a bot: bucket spacing and session starts in Redis.

use std::{fmt, future::Future, pin::Pin, time::Duration};

use nostrum_core::gateway::{IDENTIFY_INTERVAL, IdentifyLimiter};
use redis::{RedisError, Script, aio::ConnectionManager};
use tokio::sync::Mutex;
use twilight_model::gateway::SessionStartLimit;

/// Length of the session start window once the first one resets (Discord's 24 hours).
const DAY: Duration = Duration::from_secs(24 * 60 * 60);
/// How long one Redis call may take before it counts as failed.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
/// First and longest pause before trying Redis again after an error.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Upper bound of the random delay added to each wait, so that processes racing for the same
/// turn do not always wake in the same order.
const JITTER_MS: u64 = 25;

/// One attempt: `KEYS[1]` the bucket's last IDENTIFY (ms, Redis time), `KEYS[2]` the session
/// starts left (expires at the reset), `KEYS[3]` the total per window. `ARGV[1]` the interval in
/// ms, `ARGV[2]` this process's total (when `KEYS[3]` is missing), `ARGV[3]` the window in ms.
/// Returns 0 after spending a start and recording now, else the ms to wait.
const ATTEMPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local last = redis.call('GET', KEYS[1])
if last then
  local since = now - tonumber(last)
  if since >= 0 and since < interval then
    return interval - since
  end
end
local remaining = redis.call('GET', KEYS[2])
if remaining then
  remaining = tonumber(remaining)
else
  -- Never initialised, or the window reset: a fresh budget for a day.
  remaining = tonumber(redis.call('GET', KEYS[3]) or ARGV[2])
  redis.call('SET', KEYS[2], remaining, 'PX', ARGV[3])
end
if remaining <= 0 then
  local ttl = redis.call('PTTL', KEYS[2])
  if ttl < 0 then
    redis.call('PEXPIRE', KEYS[2], ARGV[3])
    ttl = tonumber(ARGV[3])
  end
  return math.max(ttl, 1)
end
redis.call('DECR', KEYS[2])
redis.call('SET', KEYS[1], now, 'PX', interval)
return 0
";

/// The identify queue of a bot whose shards run in several processes, kept in Redis.
///
/// Every gateway process of the bot (each running a range of the same shard total) builds one
/// from the same `GET /gateway/bot` answer and the same Redis; together they send at most one
/// IDENTIFY per 5 s ([`IDENTIFY_INTERVAL`]) per bucket (`shard_id % max_concurrency`), and never
/// more than the session start limit allows.
///
/// - **Spacing**: each attempt runs one Lua script that compares the bucket's last IDENTIFY with
///   Redis's `TIME` (so the processes' clocks do not matter) and, if 5 s have passed and a session
///   start remains, records now and spends one, atomically. Otherwise it answers how long to wait;
///   the shard sleeps that long and tries again.
/// - **Session starts**: the first process to start stores `remaining`, expiring after
///   `reset_after` (`SET NX PX`), and the `total`; later processes keep what is there. Each
///   IDENTIFY spends one; when none remain, shards wait until the key expires, after which the
///   budget is `total` again for 24 hours.
/// - **Fairness** is approximate: within a process the shards of a bucket go one at a time, in
///   the order they asked (a local lock). Between processes, whichever process's attempt reaches
///   Redis first after the 5 s wins the turn (with a little random jitter on every wait), so no
///   order across processes is promised, only the spacing and the budget.
/// - **Cancel-safe**: dropping the future gives up the turn. It spends nothing unless it is dropped
///   while an attempt that succeeds is in flight to Redis (a window of one round trip), in
///   which case one session start and one 5 s slot are lost: the safe direction.
/// - **Redis errors** are logged as warnings and the attempt is retried with backoff (100 ms up
///   to 5 s); the future never panics and never lets a shard through without Redis's consent.
///
/// Keys (prefix [`DEFAULT_PREFIX`](Self::DEFAULT_PREFIX), `nostrum`, unless
/// [`RedisIdentifyQueueBuilder::prefix`] says otherwise):
/// `{prefix}:identify:bucket:{n}` (last IDENTIFY of bucket `n`, ms of Redis time, expires after
/// 5 s), `{prefix}:identify:remaining` (session starts left, expires at the reset) and
/// `{prefix}:identify:total`.
///
/// ```no_run
/// use std::{sync::Arc, time::Duration};
/// use nostrum_redis::RedisIdentifyQueue;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = redis::Client::open("redis://127.0.0.1/")?;
/// let connection = redis::aio::ConnectionManager::new(client).await?;
/// // From GET /gateway/bot's session_start_limit:
/// let queue = RedisIdentifyQueue::new(connection, 1, 1000, 998, Duration::from_secs(3600)).await?;
/// // Every process of the bot, each running its own range of shards:
/// let client = nostrum_core::Client::builder("token").identify_queue(Arc::new(queue));
/// # Ok(()) }
/// ```
pub struct RedisIdentifyQueue {
    connection: ConnectionManager,
    script: Script,
    prefix: String,
    total: u32,
    /// One lock per bucket: the shards of this process go in turn.
    local: Box<[Mutex<()>]>,
}

impl fmt::Debug for RedisIdentifyQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisIdentifyQueue")
            .field("prefix", &self.prefix)
            .field("max_concurrency", &self.local.len())
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

/// Configures a [`RedisIdentifyQueue`]; made by [`RedisIdentifyQueue::builder`].
#[derive(Debug)]
#[must_use = "a builder does nothing until `build` is awaited"]
pub struct RedisIdentifyQueueBuilder {
    connection: ConnectionManager,
    max_concurrency: u32,
    total: u32,
    remaining: u32,
    reset_after: Duration,
    prefix: String,
}

impl RedisIdentifyQueueBuilder {
    /// The prefix of every key (default `nostrum`): give each bot sharing a Redis its own. For
    /// Redis Cluster, put it in braces (`{mybot}`) so all keys land in one slot.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Connects the queue to the shared state: stores the session start budget unless another
    /// process already did (`SET NX`), and the total.
    ///
    /// # Errors
    /// When Redis does not answer or refuses the commands.
    pub async fn build(self) -> Result<RedisIdentifyQueue, RedisError> {
        let mut connection = self.connection;
        let keys = Keys::new(&self.prefix);
        let reset_ms = u64::try_from(self.reset_after.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let total = self.total.max(1);
        redis::pipe()
            .cmd("SET")
            .arg(&keys.remaining)
            .arg(self.remaining)
            .arg("PX")
            .arg(reset_ms)
            .arg("NX")
            .ignore()
            .cmd("SET")
            .arg(&keys.total)
            .arg(total)
            .ignore()
            .query_async::<()>(&mut connection)
            .await?;
        Ok(RedisIdentifyQueue {
            connection,
            script: Script::new(ATTEMPT),
            prefix: self.prefix,
            total,
            local: (0..self.max_concurrency.max(1))
                .map(|_| Mutex::new(()))
                .collect(),
        })
    }
}

/// The key names of one prefix.
struct Keys {
    bucket: String,
    remaining: String,
    total: String,
}

impl Keys {
    fn new(prefix: &str) -> Self {
        Self {
            bucket: format!("{prefix}:identify:bucket:"),
            remaining: format!("{prefix}:identify:remaining"),
            total: format!("{prefix}:identify:total"),
        }
    }
}

impl RedisIdentifyQueue {
    /// The key prefix unless [`RedisIdentifyQueueBuilder::prefix`] says otherwise.
    pub const DEFAULT_PREFIX: &'static str = "nostrum";

    /// A queue for `max_concurrency` buckets with `remaining` of `total` session starts left
    /// until `reset_after` (from `GET /gateway/bot`), with the default prefix `nostrum`.
    ///
    /// # Errors
    /// When Redis does not answer or refuses the commands.
    pub async fn new(
        connection: ConnectionManager,
        max_concurrency: u32,
        total: u32,
        remaining: u32,
        reset_after: Duration,
    ) -> Result<Self, RedisError> {
        Self::builder(connection, max_concurrency, total, remaining, reset_after)
            .build()
            .await
    }

    /// Like [`new`](Self::new), from `GET /gateway/bot`'s `session_start_limit`.
    ///
    /// # Errors
    /// When Redis does not answer or refuses the commands.
    pub async fn from_session_start_limit(
        connection: ConnectionManager,
        limit: &SessionStartLimit,
    ) -> Result<Self, RedisError> {
        Self::builder(
            connection,
            u32::from(limit.max_concurrency),
            limit.total,
            limit.remaining,
            Duration::from_millis(limit.reset_after),
        )
        .build()
        .await
    }

    /// A queue to configure (the key prefix) before [`build`](RedisIdentifyQueueBuilder::build).
    pub fn builder(
        connection: ConnectionManager,
        max_concurrency: u32,
        total: u32,
        remaining: u32,
        reset_after: Duration,
    ) -> RedisIdentifyQueueBuilder {
        RedisIdentifyQueueBuilder {
            connection,
            max_concurrency,
            total,
            remaining,
            reset_after,
            prefix: Self::DEFAULT_PREFIX.to_owned(),
        }
    }

    /// The number of buckets (`max_concurrency`).
    pub fn max_concurrency(&self) -> u32 {
        u32::try_from(self.local.len()).unwrap_or(u32::MAX)
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Waits for this shard's turn to IDENTIFY across all processes, and spends one session start.
    ///
    /// Cancel-safe (see the type's documentation for the one round trip where it is not free).
    pub async fn wait(&self, shard_id: u32) {
        let bucket = shard_id % self.max_concurrency();
        let index = usize::try_from(bucket).unwrap_or(0);
        let _turn = self.local[index].lock().await;
        let keys = Keys::new(&self.prefix);
        let bucket_key = format!("{}{bucket}", keys.bucket);
        let mut backoff = BACKOFF_MIN;
        let mut told_exhausted = false;
        loop {
            match self.attempt(&bucket_key, &keys).await {
                Ok(0) => return,
                Ok(wait_ms) => {
                    backoff = BACKOFF_MIN;
                    let wait = Duration::from_millis(wait_ms);
                    if wait > IDENTIFY_INTERVAL && !told_exhausted {
                        told_exhausted = true;
                        tracing::warn!(
                            shard_id,
                            ?wait,
                            "session start limit exhausted, waiting for the reset"
                        );
                    }
                    let jitter = Duration::from_millis(fastrand::u64(0..=JITTER_MS));
                    tokio::time::sleep(wait + jitter).await;
                }
                Err(error) => {
                    tracing::warn!(
                        shard_id,
                        %error,
                        retry_in = ?backoff,
                        "identify queue: Redis failed, retrying"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    /// One run of the script: 0 when the shard may identify, else the ms to wait.
    async fn attempt(&self, bucket_key: &str, keys: &Keys) -> Result<u64, String> {
        let mut connection = self.connection.clone();
        let interval = u64::try_from(IDENTIFY_INTERVAL.as_millis()).unwrap_or(5_000);
        let day = u64::try_from(DAY.as_millis()).unwrap_or(86_400_000);
        let call = async {
            self.script
                .key(bucket_key)
                .key(&keys.remaining)
                .key(&keys.total)
                .arg(interval)
                .arg(self.total)
                .arg(day)
                .invoke_async::<i64>(&mut connection)
                .await
        };
        match tokio::time::timeout(REDIS_TIMEOUT, call).await {
            Ok(Ok(wait)) => Ok(u64::try_from(wait).unwrap_or(0)),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!("no answer within {REDIS_TIMEOUT:?}")),
        }
    }
}

impl IdentifyLimiter for RedisIdentifyQueue {
    fn wait(&self, shard_id: u32) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(RedisIdentifyQueue::wait(self, shard_id))
    }
}
