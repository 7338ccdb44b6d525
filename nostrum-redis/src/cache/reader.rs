//! The worker process's side: a cache backend that reads the shared cache in Redis.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nostrum_core::cache::{
    CacheBackend, CacheStats, CachedChannel, CachedEmoji, CachedGuild, CachedMember, CachedMessage,
    CachedPresence, CachedRole, CachedSticker, CachedUser, CachedVoiceState,
};
use nostrum_core::event::SoundboardSound;
use nostrum_core::model::channel::StageInstance;
use nostrum_core::model::guild::Permissions;
use nostrum_core::model::guild::scheduled_event::GuildScheduledEvent;
use nostrum_core::model::id::Id;
use nostrum_core::model::id::marker::{
    ChannelMarker, GuildMarker, MessageMarker, RoleMarker, UserMarker,
};
use nostrum_core::model::user::CurrentUser;
use nostrum_core::{Event, EventSet};
use redis::RedisResult;
use redis::aio::ConnectionManager;
use tokio::runtime::{Handle, RuntimeFlavor};

use super::fetch;
use super::keys::Keys;

type G = Id<GuildMarker>;
type C = Id<ChannelMarker>;
type U = Id<UserMarker>;

/// How long a blocking query waits on Redis before it answers "nothing cached".
const BLOCKING_TIMEOUT: Duration = Duration::from_secs(5);
/// How many idle blocking connections are kept for the next queries.
const POOL: usize = 8;

/// A worker process's cache: reads what the gateway processes' [`RedisCacheWriter`]s mirror.
///
/// Made by [`RedisCache::reader`]. Its [`update`](CacheBackend::update) does nothing and it
/// [wants](CacheBackend::wants) no event: the events a worker handles already carry the old
/// values the gateway process filled.
///
/// Two ways to query:
///
/// - the [`CacheBackend`] queries (what `ctx.cache()` calls) are synchronous, so they use
///   blocking connections (a small pool): inside a multi-thread tokio runtime the call goes
///   through [`tokio::task::block_in_place`], so the worker thread's other tasks move to another
///   thread while it waits; on a current-thread runtime, or outside tokio, the call simply blocks
///   the thread (and, on a current-thread runtime, every task) for one round trip or a few;
/// - the `*_async` methods ([`guild_async`](Self::guild_async), ...) await an async multiplexed
///   connection and block nothing: prefer them in async code.
///
/// A query that fails on Redis (down, timed out after 5 s for the blocking ones, a value that does
/// not decode) logs a warning and answers "nothing cached"; it never panics. Reads are not
/// snapshots: a query that reads several keys may see a writer's transaction on one side only.
/// [`stats`](CacheBackend::stats) counts only guilds and unavailable guilds (the rest would take
/// a scan of every guild).
///
/// [`RedisCache::reader`]: super::RedisCache::reader
/// [`RedisCacheWriter`]: super::RedisCacheWriter
#[derive(Clone)]
pub struct RedisCacheReader {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    keys: Keys,
    conn: ConnectionManager,
    pool: Mutex<Vec<redis::Connection>>,
}

impl fmt::Debug for RedisCacheReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCacheReader")
            .field("prefix", &self.inner.keys.prefix())
            .finish_non_exhaustive()
    }
}

/// The answer of a query, or "nothing" with a warning when Redis failed.
fn answer<T: Default>(what: &str, result: RedisResult<T>) -> T {
    result.unwrap_or_else(|error| {
        tracing::warn!(%error, query = what, "redis cache: query failed; answering nothing cached");
        T::default()
    })
}

impl RedisCacheReader {
    pub(super) fn new(client: redis::Client, keys: Keys, conn: ConnectionManager) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                keys,
                conn,
                pool: Mutex::new(Vec::new()),
            }),
        }
    }

    fn connect(&self) -> RedisResult<redis::Connection> {
        let conn = self
            .inner
            .client
            .get_connection_with_timeout(BLOCKING_TIMEOUT)?;
        conn.set_read_timeout(Some(BLOCKING_TIMEOUT))?;
        conn.set_write_timeout(Some(BLOCKING_TIMEOUT))?;
        Ok(conn)
    }

    /// Runs a query on a blocking connection, in `block_in_place` on a multi-thread runtime.
    fn blocking<T: Default>(
        &self,
        what: &str,
        query: impl FnOnce(&mut redis::Connection, &Keys) -> RedisResult<T>,
    ) -> T {
        let run = || {
            let idle = self
                .inner
                .pool
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let mut conn = match idle.map_or_else(|| self.connect(), Ok) {
                Ok(conn) => conn,
                Err(error) => return answer(what, Err(error)),
            };
            let result = query(&mut conn, &self.inner.keys);
            if result.is_ok() {
                let mut pool = self
                    .inner
                    .pool
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if pool.len() < POOL {
                    pool.push(conn);
                }
            }
            answer(what, result)
        };
        match Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(run)
            }
            _ => run(),
        }
    }

    /// Every cached member of a guild.
    pub async fn members_async(&self, guild_id: G) -> Vec<CachedMember> {
        let mut conn = self.inner.conn.clone();
        answer(
            "members",
            fetch::members(&mut conn, &self.inner.keys, guild_id).await,
        )
    }

    /// Every guild's cached member for one user, with the guild's id.
    pub async fn memberships_async(&self, user_id: U) -> Vec<(G, CachedMember)> {
        let mut conn = self.inner.conn.clone();
        answer(
            "memberships",
            fetch::memberships(&mut conn, &self.inner.keys, user_id).await,
        )
    }
}

/// The queries, each as a synchronous [`CacheBackend`] method and an `_async` inherent method,
/// both on the same [`fetch`] function.
macro_rules! queries {
    ($(
        $(#[$doc:meta])*
        fn $name:ident / $async_name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty;
    )*) => {
        impl RedisCacheReader {
            $(
                $(#[$doc])*
                ///
                /// Awaits an async connection; on a Redis failure, logs and answers nothing.
                pub async fn $async_name(&self, $($arg: $ty),*) -> $ret {
                    let mut conn = self.inner.conn.clone();
                    answer(
                        stringify!($name),
                        fetch::$name(&mut conn, &self.inner.keys, $($arg),*).await,
                    )
                }
            )*
        }

        impl CacheBackend for RedisCacheReader {
            fn update(&self, _event: &mut Event) {}

            fn wants(&self) -> EventSet {
                EventSet::EMPTY
            }

            $(
                fn $name(&self, $($arg: $ty),*) -> $ret {
                    self.blocking(stringify!($name), |conn, keys| {
                        futures::executor::block_on(fetch::$name(conn, keys, $($arg),*))
                    })
                }
            )*

            fn for_each_member(&self, guild_id: G, f: &mut dyn FnMut(&CachedMember)) {
                let members = self.blocking("members", |conn, keys| {
                    futures::executor::block_on(fetch::members(conn, keys, guild_id))
                });
                members.iter().for_each(f);
            }

            fn for_each_membership(&self, user_id: U, f: &mut dyn FnMut(G, &CachedMember)) {
                let members = self.blocking("memberships", |conn, keys| {
                    futures::executor::block_on(fetch::memberships(conn, keys, user_id))
                });
                for (guild_id, member) in &members {
                    f(*guild_id, member);
                }
            }

            fn stats(&self) -> CacheStats {
                let (guilds, unavailable) = self.blocking("stats", |conn, keys| {
                    redis::pipe()
                        .scard(keys.guilds())
                        .scard(keys.unavailable())
                        .query::<(usize, usize)>(conn)
                });
                let mut stats = CacheStats::default();
                stats.guilds = guilds;
                stats.unavailable_guilds = unavailable;
                stats
            }
        }
    };
}

queries! {
    /// A guild, when available and cached.
    fn guild / guild_async(guild_id: G) -> Option<CachedGuild>;
    /// The ids of the available guilds cached.
    fn guild_ids / guild_ids_async() -> Vec<G>;
    /// Whether the guild is known to be unavailable.
    fn is_unavailable / is_unavailable_async(guild_id: G) -> bool;
    /// The guilds known to be unavailable.
    fn unavailable_guilds / unavailable_guilds_async() -> Vec<G>;
    /// A channel or thread.
    fn channel / channel_async(channel_id: C) -> Option<CachedChannel>;
    /// A role.
    fn role / role_async(role_id: Id<RoleMarker>) -> Option<CachedRole>;
    /// A user (of a cached member).
    fn user / user_async(user_id: U) -> Option<CachedUser>;
    /// A member, without its user.
    fn member / member_async(guild_id: G, user_id: U) -> Option<CachedMember>;
    /// A member and its user, when both are cached.
    fn member_with_user / member_with_user_async(guild_id: G, user_id: U)
        -> Option<(CachedMember, CachedUser)>;
    /// The ids of a guild's channels and threads.
    fn guild_channels / guild_channels_async(guild_id: G) -> Vec<C>;
    /// The ids of a guild's roles (with `@everyone`).
    fn guild_roles / guild_roles_async(guild_id: G) -> Vec<Id<RoleMarker>>;
    /// The user ids of a guild's cached members.
    fn guild_members / guild_members_async(guild_id: G) -> Vec<U>;
    /// A guild's custom emojis.
    fn guild_emojis / guild_emojis_async(guild_id: G) -> Vec<CachedEmoji>;
    /// A guild's stickers.
    fn guild_stickers / guild_stickers_async(guild_id: G) -> Vec<CachedSticker>;
    /// A guild's live stage instances.
    fn guild_stage_instances / guild_stage_instances_async(guild_id: G) -> Vec<StageInstance>;
    /// A guild's scheduled events.
    fn guild_scheduled_events / guild_scheduled_events_async(guild_id: G)
        -> Vec<GuildScheduledEvent>;
    /// A guild's soundboard sounds.
    fn guild_soundboard_sounds / guild_soundboard_sounds_async(guild_id: G)
        -> Vec<SoundboardSound>;
    /// A guild's voice states.
    fn guild_voice_states / guild_voice_states_async(guild_id: G) -> Vec<CachedVoiceState>;
    /// A member's presence.
    fn presence / presence_async(guild_id: G, user_id: U) -> Option<CachedPresence>;
    /// A member's voice state.
    fn voice_state / voice_state_async(guild_id: G, user_id: U) -> Option<CachedVoiceState>;
    /// A message.
    fn message / message_async(message_id: Id<MessageMarker>) -> Option<CachedMessage>;
    /// A channel's cached messages, oldest first.
    fn channel_messages / channel_messages_async(channel_id: C) -> Vec<CachedMessage>;
    /// The bot's own user.
    fn current_user / current_user_async() -> Option<CurrentUser>;
    /// A member's permissions in the guild (owner and administrators: all; timeouts applied).
    fn guild_permissions / guild_permissions_async(guild_id: G, user_id: U) -> Option<Permissions>;
    /// A member's permissions in a channel, overwrites applied in Discord's documented order.
    fn channel_permissions / channel_permissions_async(channel_id: C, user_id: U)
        -> Option<Permissions>;
}
