//! The shared cache: where it is, the key layout, the error type.

mod fetch;
mod keys;
mod mirror;
mod reader;
mod writer;

use std::error::Error;
use std::fmt;
use std::time::Duration;

use nostrum_core::cache::CacheConfig;

use keys::Keys;

/// How long the writer waits for an answer of Redis (a large guild is one large transaction).
const WRITER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a reader's async query waits for an answer of Redis.
const READER_TIMEOUT: Duration = Duration::from_secs(5);
pub use reader::RedisCacheReader;
pub use writer::RedisCacheWriter;

/// A shared cache in Redis (where it is, under which prefix), which makes the gateway process's
/// [`RedisCacheWriter`] and the workers' [`RedisCacheReader`].
///
/// A gateway process (the one that runs shards) uses a [`RedisCacheWriter`]: an
/// [`InMemoryCache`](nostrum_core::cache::InMemoryCache) that fills each event's old value as
/// usual, and mirrors every entity the event touched to Redis from a background task, in order.
/// Worker processes (consumers of the event streams) use a [`RedisCacheReader`], whose queries
/// read Redis; the events they handle already carry the old values the gateway process filled.
/// When a process takes over a shard from another (shard handover: the session resumes, no
/// `GUILD_CREATE` is sent again), [`RedisCacheWriter::warm`] loads that shard's guilds from Redis
/// first, so that the old values stay right.
///
/// ```no_run
/// use nostrum_core::cache::{Cache, CacheConfig, ResourceType};
/// use nostrum_redis::RedisCache;
///
/// # async fn run() -> Result<(), nostrum_redis::RedisCacheError> {
/// let redis = RedisCache::new("redis://127.0.0.1/")?.with_prefix("mybot:cache");
///
/// // In the gateway process:
/// let writer = redis.writer(CacheConfig::new(ResourceType::ALL)).await?;
/// let cache = Cache::new(writer.clone()); // give it to the client
/// // ... before handing a shard over to another process:
/// writer.flush().await?;
///
/// // In a worker process:
/// let reader = redis.reader().await?;
/// let guild = reader.guild_async(nostrum_core::model::id::Id::new(1)).await;
/// let cache = Cache::new(reader); // `ctx.cache()` queries Redis
/// # Ok(()) }
/// ```
///
/// # Key layout
///
/// Every key starts with the prefix ([`RedisCache::DEFAULT_PREFIX`] unless
/// [`RedisCache::with_prefix`]); values are the JSON of the [cached models](nostrum_core::cache::model); ids are decimal.
///
/// | key | type | holds |
/// |---|---|---|
/// | `{p}:guilds` | set | ids of the available guilds whose own fields are cached |
/// | `{p}:entries` | set | ids of every guild with anything cached (what `warm` loads) |
/// | `{p}:unavailable` | set | ids of the guilds known to be unavailable |
/// | `{p}:guild:{g}` | string | `CachedGuild` |
/// | `{p}:guild:{g}:channels`, `:roles` | set | ids of the guild's channels and threads, roles |
/// | `{p}:guild:{g}:members`, `:presences`, `:voice_states` | hash | user id → `CachedMember`, `CachedPresence`, `CachedVoiceState` |
/// | `{p}:guild:{g}:emojis`, `:stickers`, `:stage_instances`, `:scheduled_events`, `:soundboard_sounds` | string | JSON array |
/// | `{p}:channel:{c}` | string | `CachedChannel` (guild or private) |
/// | `{p}:channel:{c}:messages` | list | message ids, oldest first, at most the message cache size |
/// | `{p}:message:{m}` | string | `CachedMessage` |
/// | `{p}:role:{r}` | string | `CachedRole` |
/// | `{p}:user:{u}` | string | `CachedUser`, kept while a member of any guild points at it |
/// | `{p}:user:{u}:guilds` | set | ids of the guilds where the user is a cached member |
/// | `{p}:current_user` | string | the bot's `CurrentUser` |
///
/// Members, presences and voice states are hashes per guild rather than a key each: a guild's
/// removal is then a few `DEL`s, a member listing one `HVALS`. The writer's Lua scripts build
/// keys from the prefix, so the layout is for one Redis server (or a primary with replicas), not
/// Redis Cluster.
///
/// # Consistency
///
/// Each process applies its writes in the order of its events, one transaction (`MULTI`) per
/// batch, so a reader never sees half of a `GUILD_CREATE`. Two gateway processes must not run the
/// same shard: a guild has one writer. A `GUILD_CREATE` (and `GUILD_DELETE`) purges what Redis
/// held of the guild before writing it again, and `READY` purges the shard's guilds it does not
/// list, so a stale guild heals on the next session.
#[derive(Clone, Debug)]
pub struct RedisCache {
    client: redis::Client,
    keys: Keys,
}

impl RedisCache {
    /// The prefix of every key unless [`with_prefix`](Self::with_prefix) sets another.
    pub const DEFAULT_PREFIX: &'static str = "nostrum:cache";

    /// A shared cache on the Redis server at `url` (`redis://host:port/db`, `rediss://...`,
    /// `unix:///path/to/socket`); connects only when a writer or reader is made.
    ///
    /// # Errors
    /// [`RedisCacheErrorKind::Url`] when `url` is not a Redis URL.
    pub fn new(url: &str) -> Result<Self, RedisCacheError> {
        let client = redis::Client::open(url).map_err(|error| RedisCacheError {
            kind: RedisCacheErrorKind::Url,
            source: Some(Box::new(error)),
        })?;
        Ok(Self {
            client,
            keys: Keys::new(Self::DEFAULT_PREFIX),
        })
    }

    /// Puts every key under `prefix` (one per bot sharing a server).
    ///
    /// ```
    /// let redis = nostrum_redis::RedisCache::new("redis://127.0.0.1/")
    ///     .unwrap()
    ///     .with_prefix("bot-a");
    /// assert_eq!(redis.prefix(), "bot-a");
    /// ```
    #[must_use]
    pub fn with_prefix(self, prefix: &str) -> Self {
        Self {
            keys: Keys::new(prefix),
            ..self
        }
    }

    /// The prefix of every key.
    pub fn prefix(&self) -> &str {
        self.keys.prefix()
    }

    /// The gateway process's backend: an in-memory cache with `config`, mirrored to Redis by a
    /// background task spawned on the current tokio runtime.
    ///
    /// # Errors
    /// [`RedisCacheErrorKind::Redis`] when Redis cannot be reached.
    pub async fn writer(&self, config: CacheConfig) -> Result<RedisCacheWriter, RedisCacheError> {
        // A large guild's transaction, or its load in `warm`, takes longer than the default 0.5 s.
        let conn = self.connect(WRITER_TIMEOUT).await?;
        Ok(RedisCacheWriter::start(config, self.keys.clone(), conn))
    }

    async fn connect(
        &self,
        timeout: Duration,
    ) -> Result<redis::aio::ConnectionManager, RedisCacheError> {
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Some(timeout))
            .set_connection_timeout(Some(Duration::from_secs(5)));
        self.client
            .get_connection_manager_with_config(config)
            .await
            .map_err(RedisCacheError::redis)
    }

    /// A worker process's backend: queries read Redis.
    ///
    /// # Errors
    /// [`RedisCacheErrorKind::Redis`] when Redis cannot be reached.
    pub async fn reader(&self) -> Result<RedisCacheReader, RedisCacheError> {
        let conn = self.connect(READER_TIMEOUT).await?;
        Ok(RedisCacheReader::new(
            self.client.clone(),
            self.keys.clone(),
            conn,
        ))
    }
}

/// What failed in the shared cache.
#[derive(Debug, thiserror::Error)]
#[error("{kind}")]
pub struct RedisCacheError {
    kind: RedisCacheErrorKind,
    #[source]
    source: Option<Box<dyn Error + Send + Sync>>,
}

impl RedisCacheError {
    fn redis(error: redis::RedisError) -> Self {
        Self {
            kind: RedisCacheErrorKind::Redis,
            source: Some(Box::new(error)),
        }
    }

    fn writes_dropped() -> Self {
        Self {
            kind: RedisCacheErrorKind::WritesDropped,
            source: None,
        }
    }

    /// What failed.
    pub fn kind(&self) -> RedisCacheErrorKind {
        self.kind
    }

    /// What failed, and the underlying error.
    pub fn into_parts(self) -> (RedisCacheErrorKind, Option<Box<dyn Error + Send + Sync>>) {
        (self.kind, self.source)
    }
}

/// The kinds of [`RedisCacheError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedisCacheErrorKind {
    /// The URL is not a Redis URL.
    Url,
    /// Redis could not be reached, or failed a command.
    Redis,
    /// Writes were dropped after Redis kept failing: Redis differs from the writer until the
    /// guilds concerned are sent again.
    WritesDropped,
}

impl fmt::Display for RedisCacheErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Url => "not a Redis URL",
            Self::Redis => "Redis failed",
            Self::WritesDropped => "writes to the shared cache were dropped",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_survive_into_parts() {
        let error = RedisCache::new("not a url").err();
        let (kind, source) = error.map(RedisCacheError::into_parts).unzip();
        assert_eq!(kind, Some(RedisCacheErrorKind::Url));
        assert!(source.flatten().is_some());
    }

    #[test]
    fn shards_own_guilds_by_the_documented_formula() {
        // (id >> 22) % total
        let id = (5u64 << 22) | 12345;
        assert!(mirror::of_shard(id, 1, 4));
        assert!(!mirror::of_shard(id, 0, 4));
        assert!(!mirror::of_shard(id, 0, 0));
    }
}
