//! The gateway process's side: an in-memory cache whose every change is mirrored to Redis.

use std::fmt;
use std::sync::Arc;

use nostrum_core::cache::{
    CacheBackend, CacheConfig, CacheStats, CachedChannel, CachedEmoji, CachedGuild, CachedMember,
    CachedMessage, CachedPresence, CachedRole, CachedSticker, CachedUser, CachedVoiceState,
    InMemoryCache, ResourceType as R,
};
use nostrum_core::event::SoundboardSound;
use nostrum_core::gateway::ShardId;
use nostrum_core::model::channel::StageInstance;
use nostrum_core::model::gateway::Intents;
use nostrum_core::model::guild::Permissions;
use nostrum_core::model::guild::scheduled_event::GuildScheduledEvent;
use nostrum_core::model::id::Id;
use nostrum_core::model::id::marker::{
    ChannelMarker, GuildMarker, MessageMarker, RoleMarker, UserMarker,
};
use nostrum_core::model::user::CurrentUser;
use nostrum_core::{Event, EventSet};
use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, oneshot};

mod touch;

use touch::Writes;

use super::RedisCacheError;
use super::fetch;
use super::keys::Keys;
use super::mirror::{self, Op};

type G = Id<GuildMarker>;
type C = Id<ChannelMarker>;
type U = Id<UserMarker>;

/// The gateway process's cache: an [`InMemoryCache`] that fills old values and answers queries,
/// and mirrors every entity an event touched to Redis for the workers' [`RedisCacheReader`]s.
///
/// Made by [`RedisCache::writer`]. [`update`](CacheBackend::update) applies the event in memory,
/// then queues the resulting writes to one background task that applies them in order, in
/// pipelined `MULTI` transactions: a shard's task never waits on Redis. [`flush`](Self::flush)
/// waits until everything queued so far is in Redis. Clones share the store and the queue: keep
/// one to call [`flush`](Self::flush) and [`warm`](Self::warm) after giving another to
/// [`Cache::new`](nostrum_core::cache::Cache::new).
///
/// A failed write is tried again while the connection fails (for a few seconds), then dropped
/// with an error log; Redis then differs from the process until the guild is sent again
/// (`GUILD_CREATE`), and [`flush`](Self::flush) reports it. The queue is unbounded (a shard never
/// waits): while Redis is slow, it grows in memory.
///
/// [`RedisCache::writer`]: super::RedisCache::writer
/// [`RedisCacheReader`]: super::RedisCacheReader
#[derive(Clone)]
pub struct RedisCacheWriter {
    inner: Arc<Inner>,
}

struct Inner {
    local: InMemoryCache,
    resources: R,
    message_cap: usize,
    keys: Keys,
    conn: ConnectionManager,
    tx: mpsc::UnboundedSender<Vec<Op>>,
}

impl fmt::Debug for RedisCacheWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCacheWriter")
            .field("prefix", &self.inner.keys.prefix())
            .field("config", self.inner.local.config())
            .finish_non_exhaustive()
    }
}

impl RedisCacheWriter {
    pub(super) fn start(config: CacheConfig, keys: Keys, conn: ConnectionManager) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(mirror::run(conn.clone(), rx, keys.clone()));
        Self {
            inner: Arc::new(Inner {
                local: InMemoryCache::new(config),
                resources: config.effective_resources(),
                message_cap: config.message_cache_size,
                keys,
                conn,
                tx,
            }),
        }
    }

    /// The in-memory part, which fills old values and answers this process's queries.
    pub fn local(&self) -> &InMemoryCache {
        &self.inner.local
    }

    /// Waits until every write queued so far is in Redis (before a shard handover, or in tests).
    ///
    /// # Errors
    /// [`RedisCacheErrorKind::WritesDropped`](super::RedisCacheErrorKind::WritesDropped) when a
    /// write queued since the previous flush was dropped after Redis kept failing, or when the
    /// background task is gone.
    pub async fn flush(&self) -> Result<(), RedisCacheError> {
        let (tx, rx) = oneshot::channel();
        if self.inner.tx.send(vec![Op::Flush(tx)]).is_err() {
            return Err(RedisCacheError::writes_dropped());
        }
        match rx.await {
            Ok(true) => Ok(()),
            Ok(false) | Err(_) => Err(RedisCacheError::writes_dropped()),
        }
    }

    /// Loads from Redis into memory every guild of `shard` (`(guild_id >> 22) % total == number`)
    /// with its channels, roles, members and their users, presences, voice states, expressions
    /// and messages, the guilds the shard knows unavailable, and the bot's own user; returns how
    /// many guilds it loaded.
    ///
    /// Call it when this process takes over a shard whose session another process started (a
    /// resumed session sends no `GUILD_CREATE`), after that process [flushed](Self::flush) and
    /// before the shard resumes, so that the old values of the events that follow are right.
    ///
    /// # Errors
    /// [`RedisCacheErrorKind::Redis`](super::RedisCacheErrorKind::Redis) when Redis fails; the
    /// guilds loaded before stay loaded.
    pub async fn warm(&self, shard: ShardId) -> Result<usize, RedisCacheError> {
        let inner = &self.inner;
        let mut conn = inner.conn.clone();
        let (entries, unavailable, current): (Vec<u64>, Vec<u64>, Option<String>) = redis::pipe()
            .smembers(inner.keys.entries())
            .smembers(inner.keys.unavailable())
            .get(inner.keys.current_user())
            .query_async(&mut conn)
            .await
            .map_err(RedisCacheError::redis)?;
        if let Some(user) =
            current.and_then(|json| fetch::decode::<CurrentUser>("current user", &json))
        {
            inner.local.load_current_user(user);
        }
        let (number, total) = (shard.number, shard.total);
        let mut loaded = 0;
        for id in entries
            .into_iter()
            .filter(|id| mirror::of_shard(*id, number, total))
        {
            let Some(guild_id) = Id::new_checked(id) else {
                continue;
            };
            let snapshot = fetch::guild_snapshot(&mut conn, &inner.keys, guild_id)
                .await
                .map_err(RedisCacheError::redis)?;
            inner.local.load_guild(guild_id, snapshot);
            loaded += 1;
        }
        for id in unavailable
            .into_iter()
            .filter(|id| mirror::of_shard(*id, number, total))
        {
            if let Some(guild_id) = Id::new_checked(id) {
                inner.local.mark_unavailable(guild_id);
            }
        }
        Ok(loaded)
    }
}

impl CacheBackend for RedisCacheWriter {
    fn update(&self, event: &mut Event) {
        let touches = self.plan(event);
        self.inner.local.update(event);
        let mut writes = Writes::new(&self.inner.keys);
        for touch in touches {
            self.emit(touch, &mut writes);
        }
        let ops = writes.into_ops();
        if !ops.is_empty() && self.inner.tx.send(ops).is_err() {
            tracing::error!("redis cache: the writer's background task is gone; writes dropped");
        }
    }

    fn wants(&self) -> EventSet {
        self.inner.local.wants()
    }

    fn intents(&self) -> Intents {
        self.inner.local.intents()
    }

    fn request_members_on_start(&self) -> bool {
        self.inner.local.request_members_on_start()
    }

    fn guild(&self, guild_id: G) -> Option<CachedGuild> {
        self.inner.local.guild(guild_id)
    }

    fn guild_ids(&self) -> Vec<G> {
        self.inner.local.guild_ids()
    }

    fn is_unavailable(&self, guild_id: G) -> bool {
        self.inner.local.is_unavailable(guild_id)
    }

    fn unavailable_guilds(&self) -> Vec<G> {
        self.inner.local.unavailable_guilds()
    }

    fn channel(&self, channel_id: C) -> Option<CachedChannel> {
        self.inner.local.channel(channel_id)
    }

    fn role(&self, role_id: Id<RoleMarker>) -> Option<CachedRole> {
        self.inner.local.role(role_id)
    }

    fn user(&self, user_id: U) -> Option<CachedUser> {
        self.inner.local.user(user_id)
    }

    fn member(&self, guild_id: G, user_id: U) -> Option<CachedMember> {
        self.inner.local.member(guild_id, user_id)
    }

    fn member_with_user(&self, guild_id: G, user_id: U) -> Option<(CachedMember, CachedUser)> {
        self.inner.local.member_with_user(guild_id, user_id)
    }

    fn guild_channels(&self, guild_id: G) -> Vec<C> {
        self.inner.local.guild_channels(guild_id)
    }

    fn guild_roles(&self, guild_id: G) -> Vec<Id<RoleMarker>> {
        self.inner.local.guild_roles(guild_id)
    }

    fn guild_members(&self, guild_id: G) -> Vec<U> {
        self.inner.local.guild_members(guild_id)
    }

    fn guild_emojis(&self, guild_id: G) -> Vec<CachedEmoji> {
        self.inner.local.guild_emojis(guild_id)
    }

    fn guild_stickers(&self, guild_id: G) -> Vec<CachedSticker> {
        self.inner.local.guild_stickers(guild_id)
    }

    fn guild_stage_instances(&self, guild_id: G) -> Vec<StageInstance> {
        self.inner.local.guild_stage_instances(guild_id)
    }

    fn guild_scheduled_events(&self, guild_id: G) -> Vec<GuildScheduledEvent> {
        self.inner.local.guild_scheduled_events(guild_id)
    }

    fn guild_soundboard_sounds(&self, guild_id: G) -> Vec<SoundboardSound> {
        self.inner.local.guild_soundboard_sounds(guild_id)
    }

    fn guild_voice_states(&self, guild_id: G) -> Vec<CachedVoiceState> {
        self.inner.local.guild_voice_states(guild_id)
    }

    fn presence(&self, guild_id: G, user_id: U) -> Option<CachedPresence> {
        self.inner.local.presence(guild_id, user_id)
    }

    fn voice_state(&self, guild_id: G, user_id: U) -> Option<CachedVoiceState> {
        self.inner.local.voice_state(guild_id, user_id)
    }

    fn message(&self, message_id: Id<MessageMarker>) -> Option<CachedMessage> {
        self.inner.local.message(message_id)
    }

    fn channel_messages(&self, channel_id: C) -> Vec<CachedMessage> {
        self.inner.local.channel_messages(channel_id)
    }

    fn current_user(&self) -> Option<CurrentUser> {
        self.inner.local.current_user()
    }

    fn for_each_member(&self, guild_id: G, f: &mut dyn FnMut(&CachedMember)) {
        self.inner.local.for_each_member(guild_id, f);
    }

    fn for_each_membership(&self, user_id: U, f: &mut dyn FnMut(G, &CachedMember)) {
        self.inner.local.for_each_membership(user_id, f);
    }

    fn stats(&self) -> CacheStats {
        self.inner.local.stats()
    }

    fn guild_permissions(&self, guild_id: G, user_id: U) -> Option<Permissions> {
        self.inner.local.guild_permissions(guild_id, user_id)
    }

    fn channel_permissions(&self, channel_id: C, user_id: U) -> Option<Permissions> {
        self.inner.local.channel_permissions(channel_id, user_id)
    }
}
