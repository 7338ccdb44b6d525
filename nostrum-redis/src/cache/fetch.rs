//! Reads of the shared cache, written once for both connection kinds: the blocking one of the
//! synchronous trait queries and the async one of the `_async` methods and of `warm`.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use nostrum_core::cache::permissions;
use nostrum_core::cache::{
    CachedChannel, CachedEmoji, CachedGuild, CachedMember, CachedMessage, CachedPresence,
    CachedRole, CachedSticker, CachedUser, CachedVoiceState, GuildSnapshot,
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
use redis::aio::ConnectionManager;
use redis::{FromRedisValue, RedisResult};
use serde::de::DeserializeOwned;

use super::keys::{Keys, LISTS};

type G = Id<GuildMarker>;
type C = Id<ChannelMarker>;
type U = Id<UserMarker>;

/// How many keys one `MGET` asks for at most.
const MGET_CHUNK: usize = 1000;

/// A connection that runs a pipeline: the async one awaits, the blocking one answers at once.
pub(crate) trait Exec {
    async fn run<T: FromRedisValue>(&mut self, pipe: &redis::Pipeline) -> RedisResult<T>;
}

impl Exec for ConnectionManager {
    async fn run<T: FromRedisValue>(&mut self, pipe: &redis::Pipeline) -> RedisResult<T> {
        pipe.query_async(self).await
    }
}

impl Exec for redis::Connection {
    async fn run<T: FromRedisValue>(&mut self, pipe: &redis::Pipeline) -> RedisResult<T> {
        pipe.query(self)
    }
}

/// Decodes a stored value; a value that does not decode (written by another version) is
/// logged and treated as absent.
pub(crate) fn decode<T: DeserializeOwned>(what: &str, json: &str) -> Option<T> {
    match serde_json::from_str(json) {
        Ok(value) => Some(value),
        Err(error) => {
            tracing::warn!(%error, what, "redis cache: a stored value does not decode");
            None
        }
    }
}

fn decode_all<T: DeserializeOwned>(what: &str, jsons: Vec<String>) -> Vec<T> {
    jsons.iter().filter_map(|json| decode(what, json)).collect()
}

async fn get<E: Exec, T: DeserializeOwned>(e: &mut E, key: String) -> RedisResult<Option<T>> {
    let (json,): (Option<String>,) = e.run(redis::pipe().get(key)).await?;
    Ok(json.and_then(|json| decode(std::any::type_name::<T>(), &json)))
}

/// `MGET` in chunks; one answer per key, in order.
async fn mget_raw<E: Exec>(e: &mut E, keys: Vec<String>) -> RedisResult<Vec<Option<String>>> {
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(MGET_CHUNK) {
        let (values,): (Vec<Option<String>>,) = e.run(redis::pipe().cmd("MGET").arg(chunk)).await?;
        out.extend(values);
    }
    Ok(out)
}

async fn mget<E: Exec, T: DeserializeOwned>(e: &mut E, keys: Vec<String>) -> RedisResult<Vec<T>> {
    let what = std::any::type_name::<T>();
    Ok(mget_raw(e, keys)
        .await?
        .into_iter()
        .flatten()
        .filter_map(|json| decode(what, &json))
        .collect())
}

async fn ids<E: Exec, M>(e: &mut E, key: String) -> RedisResult<Vec<Id<M>>> {
    let (ids,): (Vec<u64>,) = e.run(redis::pipe().smembers(key)).await?;
    Ok(ids.into_iter().filter_map(Id::new_checked).collect())
}

async fn hget<E: Exec, T: DeserializeOwned>(
    e: &mut E,
    key: String,
    field: u64,
) -> RedisResult<Option<T>> {
    let (json,): (Option<String>,) = e.run(redis::pipe().hget(key, field)).await?;
    Ok(json.and_then(|json| decode(std::any::type_name::<T>(), &json)))
}

async fn hvals<E: Exec, T: DeserializeOwned>(e: &mut E, key: String) -> RedisResult<Vec<T>> {
    let (jsons,): (Vec<String>,) = e.run(redis::pipe().hvals(key)).await?;
    Ok(decode_all(std::any::type_name::<T>(), jsons))
}

async fn list<E: Exec, T: DeserializeOwned>(
    e: &mut E,
    keys: &Keys,
    guild: G,
    index: usize,
) -> RedisResult<Vec<T>> {
    Ok(get(e, keys.of_guild(guild, LISTS[index]))
        .await?
        .unwrap_or_default())
}

pub(crate) async fn guild<E: Exec>(
    e: &mut E,
    keys: &Keys,
    id: G,
) -> RedisResult<Option<CachedGuild>> {
    get(e, keys.guild(id)).await
}

pub(crate) async fn guild_ids<E: Exec>(e: &mut E, keys: &Keys) -> RedisResult<Vec<G>> {
    ids(e, keys.guilds()).await
}

pub(crate) async fn is_unavailable<E: Exec>(e: &mut E, keys: &Keys, id: G) -> RedisResult<bool> {
    let (member,): (bool,) = e
        .run(redis::pipe().sismember(keys.unavailable(), id.get()))
        .await?;
    Ok(member)
}

pub(crate) async fn unavailable_guilds<E: Exec>(e: &mut E, keys: &Keys) -> RedisResult<Vec<G>> {
    ids(e, keys.unavailable()).await
}

pub(crate) async fn channel<E: Exec>(
    e: &mut E,
    keys: &Keys,
    id: C,
) -> RedisResult<Option<CachedChannel>> {
    get(e, keys.channel(id)).await
}

pub(crate) async fn role<E: Exec>(
    e: &mut E,
    keys: &Keys,
    id: Id<RoleMarker>,
) -> RedisResult<Option<CachedRole>> {
    get(e, keys.role(id)).await
}

pub(crate) async fn user<E: Exec>(
    e: &mut E,
    keys: &Keys,
    id: U,
) -> RedisResult<Option<CachedUser>> {
    get(e, keys.user(id)).await
}

pub(crate) async fn member<E: Exec>(
    e: &mut E,
    keys: &Keys,
    guild: G,
    user: U,
) -> RedisResult<Option<CachedMember>> {
    hget(e, keys.of_guild(guild, "members"), user.get()).await
}

pub(crate) async fn member_with_user<E: Exec>(
    e: &mut E,
    keys: &Keys,
    guild: G,
    user: U,
) -> RedisResult<Option<(CachedMember, CachedUser)>> {
    let (member, cached_user): (Option<String>, Option<String>) = e
        .run(
            redis::pipe()
                .hget(keys.of_guild(guild, "members"), user.get())
                .get(keys.user(user)),
        )
        .await?;
    let member = member.and_then(|json| decode("member", &json));
    let cached_user = cached_user.and_then(|json| decode("user", &json));
    Ok(member.zip(cached_user))
}

pub(crate) async fn guild_channels<E: Exec>(
    e: &mut E,
    keys: &Keys,
    guild: G,
) -> RedisResult<Vec<C>> {
    ids(e, keys.of_guild(guild, "channels")).await
}

pub(crate) async fn guild_roles<E: Exec>(
    e: &mut E,
    keys: &Keys,
    guild: G,
) -> RedisResult<Vec<Id<RoleMarker>>> {
    ids(e, keys.of_guild(guild, "roles")).await
}

pub(crate) async fn guild_members<E: Exec>(
    e: &mut E,
    keys: &Keys,
    guild: G,
) -> RedisResult<Vec<U>> {
    let (ids,): (Vec<u64>,) = e
        .run(redis::pipe().hkeys(keys.of_guild(guild, "members")))
        .await?;
    Ok(ids.into_iter().filter_map(Id::new_checked).collect())
}

pub(crate) async fn guild_emojis<E: Exec>(
    e: &mut E,
    keys: &Keys,
    guild: G,
) -> RedisResult<Vec<CachedEmoji>> {
    list(e, keys, guild, 0).await
}

pub(crate) async fn guild_stickers<E: Exec>(
    e: &mut E,
    keys: &Keys,
    guild: G,
) -> RedisResult<Vec<CachedSticker>> {
    list(e, keys, guild, 1).await
}

pub(crate) async fn guild_stage_instances<E: Exec>(
    e: &mut E,
    keys: &Keys,
    guild: G,
) -> RedisResult<Vec<StageInstance>> {
    list(e, keys, guild, 2).await
}

pub(crate) async fn guild_scheduled_events<E: Exec>(
    e: &mut E,
    keys: &Keys,
    guild: G,
) -> RedisResult<Vec<GuildScheduledEvent>> {
    list(e, keys, guild, 3).await
}

pub(crate) async fn guild_soundboard_sounds<E: Exec>(
    e: &mut E,
    keys: &Keys,
    guild: G,
) -> RedisResult<Vec<SoundboardSound>> {
    list(e, keys, guild, 4).await
}

pub(crate) async fn guild_voice_states<E: Exec>(
    e: &mut E,
    keys: &Keys,
    guild: G,
) -> RedisResult<Vec<CachedVoiceState>> {
    hvals(e, keys.of_guild(guild, "voice_states")).await
}

pub(crate) async fn presence<E: Exec>(
    e: &mut E,
    keys: &Keys,
    guild: G,
    user: U,
) -> RedisResult<Option<CachedPresence>> {
    hget(e, keys.of_guild(guild, "presences"), user.get()).await
}

pub(crate) async fn voice_state<E: Exec>(
    e: &mut E,
    keys: &Keys,
    guild: G,
    user: U,
) -> RedisResult<Option<CachedVoiceState>> {
    hget(e, keys.of_guild(guild, "voice_states"), user.get()).await
}

pub(crate) async fn message<E: Exec>(
    e: &mut E,
    keys: &Keys,
    id: Id<MessageMarker>,
) -> RedisResult<Option<CachedMessage>> {
    get(e, keys.message(id)).await
}

pub(crate) async fn channel_messages<E: Exec>(
    e: &mut E,
    keys: &Keys,
    channel: C,
) -> RedisResult<Vec<CachedMessage>> {
    let (ids,): (Vec<u64>,) = e
        .run(redis::pipe().lrange(keys.channel_messages(channel), 0, -1))
        .await?;
    mget(e, ids.into_iter().map(|id| keys.message(id)).collect()).await
}

pub(crate) async fn current_user<E: Exec>(
    e: &mut E,
    keys: &Keys,
) -> RedisResult<Option<CurrentUser>> {
    get(e, keys.current_user()).await
}

/// Every cached member of a guild.
pub(crate) async fn members<E: Exec>(
    e: &mut E,
    keys: &Keys,
    guild: G,
) -> RedisResult<Vec<CachedMember>> {
    hvals(e, keys.of_guild(guild, "members")).await
}

/// Every guild's member for one user.
pub(crate) async fn memberships<E: Exec>(
    e: &mut E,
    keys: &Keys,
    user: U,
) -> RedisResult<Vec<(G, CachedMember)>> {
    let guilds: Vec<G> = ids(e, keys.user_guilds(user)).await?;
    if guilds.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for guild in &guilds {
        pipe.hget(keys.of_guild(guild, "members"), user.get());
    }
    let members: Vec<Option<String>> = e.run(&pipe).await?;
    Ok(guilds
        .into_iter()
        .zip(members)
        .filter_map(|(guild, json)| Some((guild, decode("member", &json?)?)))
        .collect())
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
        })
}

/// A member's base permissions, roles and whether timed out; `None` without the guild,
/// `@everyone` or the member (the owner needs neither).
async fn base<E: Exec>(
    e: &mut E,
    keys: &Keys,
    guild_id: G,
    user_id: U,
) -> RedisResult<Option<(Permissions, Vec<Id<RoleMarker>>, bool)>> {
    let (guild, everyone, member): (Option<String>, Option<String>, Option<String>) = e
        .run(
            redis::pipe()
                .get(keys.guild(guild_id))
                .get(keys.role(guild_id))
                .hget(keys.of_guild(guild_id, "members"), user_id.get()),
        )
        .await?;
    let Some(guild) = guild.and_then(|json| decode::<CachedGuild>("guild", &json)) else {
        return Ok(None);
    };
    if guild.owner_id == user_id {
        return Ok(Some((Permissions::all(), Vec::new(), false)));
    }
    let everyone = everyone.and_then(|json| decode::<CachedRole>("role", &json));
    let member = member.and_then(|json| decode::<CachedMember>("member", &json));
    let (Some(everyone), Some(member)) = (everyone, member) else {
        return Ok(None);
    };
    let roles: Vec<CachedRole> =
        mget(e, member.roles.iter().map(|id| keys.role(id)).collect()).await?;
    let by_id: HashMap<_, _> = roles
        .iter()
        .map(|role| (role.id, role.permissions))
        .collect();
    let perms = member.roles.iter().filter_map(|id| by_id.get(id).copied());
    let base = permissions::base_permissions(user_id, guild.owner_id, everyone.permissions, perms);
    Ok(Some((
        base,
        member.roles.to_vec(),
        member.timed_out_at(now_micros()),
    )))
}

pub(crate) async fn guild_permissions<E: Exec>(
    e: &mut E,
    keys: &Keys,
    guild_id: G,
    user_id: U,
) -> RedisResult<Option<Permissions>> {
    Ok(base(e, keys, guild_id, user_id)
        .await?
        .map(|(base, _, timed_out)| permissions::apply_timeout(base, timed_out)))
}

pub(crate) async fn channel_permissions<E: Exec>(
    e: &mut E,
    keys: &Keys,
    channel_id: C,
    user_id: U,
) -> RedisResult<Option<Permissions>> {
    let Some(channel) = channel(e, keys, channel_id).await? else {
        return Ok(None);
    };
    let Some(guild_id) = channel.guild_id else {
        return Ok(None);
    };
    let thread = channel.kind.is_thread();
    let overwrites = if thread {
        let Some(parent) = channel.parent_id else {
            return Ok(None);
        };
        match self::channel(e, keys, parent).await? {
            Some(parent) => parent.permission_overwrites,
            None => return Ok(None),
        }
    } else {
        channel.permission_overwrites
    };
    let Some((base, roles, timed_out)) = base(e, keys, guild_id, user_id).await? else {
        return Ok(None);
    };
    let perms =
        permissions::channel_permissions(base, guild_id, user_id, &roles, &overwrites, timed_out);
    Ok(Some(permissions::apply_implicit(perms, thread)))
}

/// Everything stored of a guild, for [`RedisCacheWriter::warm`](super::RedisCacheWriter::warm).
pub(crate) async fn guild_snapshot<E: Exec>(
    e: &mut E,
    keys: &Keys,
    guild_id: G,
) -> RedisResult<GuildSnapshot> {
    let list_keys: Vec<String> = LISTS.iter().map(|l| keys.of_guild(guild_id, l)).collect();
    #[allow(clippy::type_complexity)]
    let (guild, channel_ids, role_ids, members, presences, voice_states, lists): (
        Option<String>,
        Vec<u64>,
        Vec<u64>,
        Vec<String>,
        Vec<String>,
        Vec<String>,
        Vec<Option<String>>,
    ) = e
        .run(
            redis::pipe()
                .get(keys.guild(guild_id))
                .smembers(keys.of_guild(guild_id, "channels"))
                .smembers(keys.of_guild(guild_id, "roles"))
                .hvals(keys.of_guild(guild_id, "members"))
                .hvals(keys.of_guild(guild_id, "presences"))
                .hvals(keys.of_guild(guild_id, "voice_states"))
                .cmd("MGET")
                .arg(&list_keys),
        )
        .await?;
    let channels: Vec<CachedChannel> =
        mget(e, channel_ids.iter().map(|id| keys.channel(id)).collect()).await?;
    let roles = mget(e, role_ids.iter().map(|id| keys.role(id)).collect()).await?;
    let members: Vec<CachedMember> = decode_all("member", members);
    let users = mget_raw(e, members.iter().map(|m| keys.user(m.user_id)).collect()).await?;
    let members = members
        .into_iter()
        .zip(users)
        .map(|(member, user)| (member, user.and_then(|json| decode("user", &json))))
        .collect();
    let mut messages = Vec::new();
    if !channels.is_empty() {
        let mut pipe = redis::pipe();
        for channel in &channels {
            pipe.lrange(keys.channel_messages(channel.id), 0, -1);
        }
        let lists: Vec<Vec<u64>> = e.run(&pipe).await?;
        let ids = lists
            .into_iter()
            .flatten()
            .map(|id| keys.message(id))
            .collect();
        messages = mget(e, ids).await?;
    }
    let mut lists = lists.into_iter();
    let mut next_list = || lists.next().flatten().unwrap_or_else(|| "[]".to_owned());
    Ok(GuildSnapshot {
        guild: guild.and_then(|json| decode("guild", &json)),
        channels,
        roles,
        members,
        presences: decode_all("presence", presences),
        voice_states: decode_all("voice state", voice_states),
        emojis: decode("emojis", &next_list()).unwrap_or_default(),
        stickers: decode("stickers", &next_list()).unwrap_or_default(),
        stage_instances: decode("stage instances", &next_list()).unwrap_or_default(),
        scheduled_events: decode("scheduled events", &next_list()).unwrap_or_default(),
        soundboard_sounds: decode("soundboard sounds", &next_list()).unwrap_or_default(),
        messages,
    })
}
