//! The scripted world (bot, users, guilds, channels) and the JSON payloads Discord would send about it.

use serde_json::{Value, json};

use super::ConversationLine;
use super::state::{DISCORD_EPOCH_MS, Shared, State};

/// GUILD_MESSAGES intent.
pub(super) const INTENT_GUILD_MESSAGES: u64 = 1 << 9;
/// MESSAGE_CONTENT intent (privileged).
pub(super) const INTENT_MESSAGE_CONTENT: u64 = 1 << 15;
/// The privileged intents: GUILD_MEMBERS, GUILD_PRESENCES, MESSAGE_CONTENT.
pub(super) const PRIVILEGED_INTENTS: u64 = (1 << 1) | (1 << 8) | INTENT_MESSAGE_CONTENT;
/// Every documented intent bit (0..=16, 20, 21, 24, 25).
pub(super) const KNOWN_INTENTS: u64 =
    ((1 << 17) - 1) | (1 << 20) | (1 << 21) | (1 << 24) | (1 << 25);

/// When the scripted guilds were joined.
const JOINED_AT: &str = "2024-01-01T00:00:00.000000+00:00";
/// Permissions of @everyone: view, send, embed, attach, history, reactions, voice, commands, threads.
const EVERYONE_PERMISSIONS: u64 = (1 << 0)
    | (1 << 6)
    | (1 << 10)
    | (1 << 11)
    | (1 << 14)
    | (1 << 15)
    | (1 << 16)
    | (1 << 18)
    | (1 << 20)
    | (1 << 21)
    | (1 << 25)
    | (1 << 26)
    | (1 << 31)
    | (1 << 38);

/// A scripted user (or the bot).
#[derive(Clone, Debug)]
pub(super) struct ScriptUser {
    pub(super) id: u64,
    pub(super) name: String,
    pub(super) bot: bool,
}

/// A scripted guild with one text channel; every scripted user is a member.
#[derive(Clone, Debug)]
pub(super) struct ScriptGuild {
    pub(super) id: u64,
    pub(super) name: String,
    pub(super) channel_ids: Vec<u64>,
    pub(super) owner_id: u64,
}

/// The fixed world: the bot, the scripted users and the guilds.
#[derive(Debug)]
pub(super) struct World {
    pub(super) bot: ScriptUser,
    pub(super) users: Vec<ScriptUser>,
    pub(super) guilds: Vec<ScriptGuild>,
}

/// The id of the n-th scripted user (a snowflake from 2022).
pub(super) fn user_id(n: u64) -> u64 {
    ((210_000_000_000 + n) << 22) | (1 << 17)
}

/// The shard that owns a guild: `(guild_id >> 22) % total`.
pub(super) fn guild_shard(guild_id: u64, total: u32) -> u32 {
    ((guild_id >> 22) % u64::from(total.max(1))) as u32
}

impl World {
    pub(super) fn new(guilds: u32) -> Self {
        let bot = ScriptUser {
            id: (200_000_000_000 << 22) | (1 << 17),
            name: "LocalBot".into(),
            bot: true,
        };
        let users: Vec<ScriptUser> = ["alice", "bob", "carol"]
            .iter()
            .zip(0..)
            .map(|(name, n)| ScriptUser {
                id: user_id(n),
                name: (*name).to_owned(),
                bot: false,
            })
            .collect();
        let guilds = (0..u64::from(guilds))
            .map(|i| {
                // Consecutive timestamps, so `(id >> 22) % shards` spreads the guilds over the shards.
                let id = ((240_000_000_000 + i) << 22) | (1 << 17);
                ScriptGuild {
                    id,
                    name: format!("Local Guild {i}"),
                    channel_ids: vec![id + 1],
                    owner_id: users[0].id,
                }
            })
            .collect();
        Self { bot, users, guilds }
    }

    pub(super) fn guild(&self, id: u64) -> Option<&ScriptGuild> {
        self.guilds.iter().find(|g| g.id == id)
    }

    pub(super) fn guild_of_channel(&self, channel_id: u64) -> Option<&ScriptGuild> {
        self.guilds
            .iter()
            .find(|g| g.channel_ids.contains(&channel_id))
    }

    pub(super) fn user(&self, id: u64) -> Option<&ScriptUser> {
        std::iter::once(&self.bot)
            .chain(&self.users)
            .find(|u| u.id == id)
    }

    /// The bot and the scripted users: the members of every guild.
    pub(super) fn members(&self) -> impl Iterator<Item = &ScriptUser> {
        std::iter::once(&self.bot).chain(&self.users)
    }

    pub(super) fn guilds_of_shard(&self, shard: [u32; 2]) -> impl Iterator<Item = &ScriptGuild> {
        self.guilds
            .iter()
            .filter(move |g| guild_shard(g.id, shard[1]) == shard[0])
    }
}

/// A user object.
pub(super) fn user_json(u: &ScriptUser) -> Value {
    json!({
        "id": u.id.to_string(), "username": u.name, "discriminator": "0", "global_name": null,
        "avatar": null, "bot": u.bot, "system": false, "banner": null, "accent_color": null,
        "avatar_decoration_data": null, "public_flags": 0, "flags": 0
    })
}

/// The bot as `GET /users/@me` and READY describe it.
pub(super) fn current_user_json(bot: &ScriptUser) -> Value {
    let mut user = user_json(bot);
    if let Some(obj) = user.as_object_mut() {
        obj.insert("mfa_enabled".into(), json!(false));
        obj.insert("verified".into(), json!(true));
        obj.insert("email".into(), Value::Null);
        obj.insert("locale".into(), json!("en-US"));
        obj.insert("premium_type".into(), json!(0));
    }
    user
}

/// A guild member object; `with_user` false gives the partial member of MESSAGE_CREATE.
pub(super) fn member_json(u: &ScriptUser, with_user: bool) -> Value {
    let mut member = json!({
        "nick": null, "avatar": null, "banner": null, "roles": [], "joined_at": JOINED_AT,
        "premium_since": null, "deaf": false, "mute": false, "flags": 0, "pending": false,
        "communication_disabled_until": null
    });
    if let (true, Some(obj)) = (with_user, member.as_object_mut()) {
        obj.insert("user".into(), user_json(u));
    }
    member
}

/// A guild text channel (GUILD_CREATE omits `guild_id`, as Discord does).
pub(super) fn channel_json(guild: &ScriptGuild, channel_id: u64, with_guild_id: bool) -> Value {
    let mut channel = json!({
        "id": channel_id.to_string(), "type": 0, "name": "general", "position": 0,
        "permission_overwrites": [], "parent_id": null, "topic": null, "nsfw": false,
        "last_message_id": null, "rate_limit_per_user": 0, "flags": 0
    });
    if let (true, Some(obj)) = (with_guild_id, channel.as_object_mut()) {
        obj.insert("guild_id".into(), json!(guild.id.to_string()));
    }
    channel
}

/// The READY payload of a new session.
pub(super) fn ready_json(
    world: &World,
    session_id: &str,
    shard: [u32; 2],
    resume_url: &str,
    privileged: bool,
) -> Value {
    // GATEWAY_PRESENCE, GATEWAY_GUILD_MEMBERS, GATEWAY_MESSAGE_CONTENT.
    let app_flags: u64 = if privileged {
        (1 << 12) | (1 << 14) | (1 << 18)
    } else {
        0
    };
    let guilds: Vec<Value> = world
        .guilds_of_shard(shard)
        .map(|g| json!({"id": g.id.to_string(), "unavailable": true}))
        .collect();
    json!({
        "v": 10, "user": current_user_json(&world.bot), "guilds": guilds, "session_id": session_id,
        "resume_gateway_url": resume_url, "shard": shard, "session_type": "normal",
        "application": {"id": world.bot.id.to_string(), "flags": app_flags},
        "private_channels": [], "presences": [], "relationships": [], "guild_join_requests": [],
        "user_settings": {}, "geo_ordered_rtc_regions": ["local"], "_trace": ["[\"local-discord\"]"]
    })
}

/// The full guild object of GUILD_CREATE.
pub(super) fn guild_create_json(world: &World, g: &ScriptGuild) -> Value {
    let everyone = json!({
        "id": g.id.to_string(), "name": "@everyone", "color": 0,
        "colors": {"primary_color": 0, "secondary_color": null, "tertiary_color": null},
        "hoist": false, "icon": null, "unicode_emoji": null, "position": 0,
        "permissions": EVERYONE_PERMISSIONS.to_string(), "managed": false, "mentionable": false, "flags": 0
    });
    let channels: Vec<Value> = g
        .channel_ids
        .iter()
        .map(|&c| channel_json(g, c, false))
        .collect();
    let members: Vec<Value> = world.members().map(|u| member_json(u, true)).collect();
    let mut guild = json!({
        "id": g.id.to_string(), "name": g.name, "icon": null, "icon_hash": null, "splash": null,
        "discovery_splash": null, "owner_id": g.owner_id.to_string(), "region": null,
        "afk_channel_id": null, "afk_timeout": 300, "widget_enabled": false, "widget_channel_id": null,
        "verification_level": 0, "default_message_notifications": 0, "explicit_content_filter": 0,
        "roles": [everyone], "emojis": [], "features": [], "mfa_level": 0, "application_id": null,
        "system_channel_id": g.channel_ids.first().map(u64::to_string), "system_channel_flags": 0,
        "rules_channel_id": null, "max_presences": null, "max_members": 500_000, "vanity_url_code": null,
        "description": null, "banner": null, "premium_tier": 0, "premium_subscription_count": 0,
        "preferred_locale": "en-US", "public_updates_channel_id": null, "max_video_channel_users": 25,
        "max_stage_video_channel_users": 50, "nsfw_level": 0, "stickers": [],
        "premium_progress_bar_enabled": false, "safety_alerts_channel_id": null, "incidents_data": null
    });
    // Split in two: one `json!` this large exceeds the macro recursion limit.
    let gateway_only = json!({
        "joined_at": JOINED_AT, "large": false, "unavailable": false, "member_count": members.len(),
        "voice_states": [], "members": members, "channels": channels, "threads": [], "presences": [],
        "stage_instances": [], "guild_scheduled_events": [], "soundboard_sounds": []
    });
    if let (Some(obj), Value::Object(extra)) = (guild.as_object_mut(), gateway_only) {
        obj.extend(extra);
    }
    guild
}

/// A new message; `guild_id` is set for gateway payloads (which also carry the author's member).
#[derive(Debug)]
pub(super) struct NewMessage<'a> {
    pub(super) id: u64,
    pub(super) channel_id: u64,
    pub(super) guild_id: Option<u64>,
    pub(super) author: &'a ScriptUser,
    pub(super) content: &'a str,
    pub(super) mentions: &'a [ScriptUser],
    /// The REST request body, whose embeds, components, tts, nonce and reference are echoed.
    pub(super) body: Option<&'a Value>,
}

/// A message object.
pub(super) fn message_json(m: &NewMessage<'_>) -> Value {
    let ms = (m.id >> 22) + DISCORD_EPOCH_MS;
    let with_member = m.guild_id.is_some();
    let mentions: Vec<Value> = m
        .mentions
        .iter()
        .map(|u| {
            let mut v = user_json(u);
            if let (true, Some(obj)) = (with_member, v.as_object_mut()) {
                obj.insert("member".into(), member_json(u, false));
            }
            v
        })
        .collect();
    let mut msg = json!({
        "id": m.id.to_string(), "channel_id": m.channel_id.to_string(), "author": user_json(m.author),
        "content": m.content, "timestamp": iso8601(ms), "edited_timestamp": null, "tts": false,
        "mention_everyone": false, "mentions": mentions, "mention_roles": [], "attachments": [],
        "embeds": [], "reactions": [], "pinned": false, "type": 0, "flags": 0, "components": []
    });
    let Some(obj) = msg.as_object_mut() else {
        return msg;
    };
    if let Some(guild_id) = m.guild_id {
        obj.insert("guild_id".into(), json!(guild_id.to_string()));
        obj.insert("member".into(), member_json(m.author, false));
    }
    if let Some(body) = m.body {
        for key in ["tts", "nonce", "components", "flags"] {
            if let Some(v) = body.get(key).filter(|v| !v.is_null()) {
                obj.insert(key.into(), v.clone());
            }
        }
        if let Some(embeds) = body.get("embeds").and_then(Value::as_array) {
            let embeds: Vec<Value> = embeds.iter().map(normalize_embed).collect();
            obj.insert("embeds".into(), Value::Array(embeds));
        }
        if let Some(reference) = body.get("message_reference").filter(|v| v.is_object()) {
            let mut reference = reference.clone();
            if let Some(r) = reference.as_object_mut() {
                r.entry("type").or_insert(json!(0));
                r.entry("channel_id")
                    .or_insert(json!(m.channel_id.to_string()));
            }
            obj.insert("message_reference".into(), reference);
            obj.insert("type".into(), json!(19));
        }
    }
    msg
}

/// Discord fills in `type: "rich"` on embeds it receives.
fn normalize_embed(embed: &Value) -> Value {
    let mut embed = embed.clone();
    if let Some(obj) = embed.as_object_mut() {
        obj.entry("type").or_insert(json!("rich"));
    }
    embed
}

/// The ids of `<@id>` and `<@!id>` user mentions in `content`, in order, without duplicates.
pub(super) fn mentioned_ids(content: &str) -> Vec<u64> {
    let mut ids = Vec::new();
    for part in content.split("<@").skip(1) {
        let part = part.strip_prefix('!').unwrap_or(part);
        let Some((digits, _)) = part.split_once('>') else {
            continue;
        };
        if let Ok(id) = digits.parse::<u64>()
            && !ids.contains(&id)
        {
            ids.push(id);
        }
    }
    ids
}

/// Builds and routes a message: a scripted user's (`body` None) or the bot's from REST (`body` Some).
/// Sends MESSAGE_CREATE to the owning shard's session (obeying intents if configured) and returns the
/// REST view of the message with the conversation line.
pub(super) fn post_message(
    shared: &Shared,
    state: &mut State,
    guild: &ScriptGuild,
    channel_id: u64,
    author: &ScriptUser,
    content: &str,
    body: Option<&Value>,
) -> (Value, ConversationLine) {
    let id = state.next_id();
    let mentions: Vec<ScriptUser> = mentioned_ids(content)
        .into_iter()
        .filter_map(|id| state.user_by_id(&shared.world, id).cloned())
        .collect();
    let mut message = NewMessage {
        id,
        channel_id,
        guild_id: None,
        author,
        content,
        mentions: &mentions,
        body,
    };
    let rest = message_json(&message);

    let shard = guild_shard(guild.id, state.total_shards(&shared.config));
    if let Some(intents) = state.shard_intents(shard) {
        let enforce = shared.config.enforce_intents;
        if !enforce || intents & INTENT_GUILD_MESSAGES != 0 {
            let bot = shared.world.bot.id;
            let readable = author.id == bot || mentions.iter().any(|u| u.id == bot);
            if enforce && !readable && intents & INTENT_MESSAGE_CONTENT == 0 {
                message.content = "";
            }
            message.guild_id = Some(guild.id);
            state.push_to_shard(shard, "MESSAGE_CREATE", &message_json(&message));
        }
    }
    let line = ConversationLine {
        channel_id,
        author: author.name.clone(),
        from_bot: author.id == shared.world.bot.id,
        content: content.to_owned(),
        message_id: id,
    };
    (rest, line)
}

/// A scripted user posts in a channel; an unknown channel records the line but dispatches nothing.
pub(super) fn post_user_message(
    shared: &Shared,
    state: &mut State,
    channel_id: u64,
    author_name: &str,
    content: &str,
) -> ConversationLine {
    let author = state.user_by_name(&shared.world, author_name);
    match shared.world.guild_of_channel(channel_id) {
        Some(guild) => post_message(shared, state, guild, channel_id, &author, content, None).1,
        None => {
            tracing::warn!(
                channel_id,
                "local discord: user_message in an unknown channel is not dispatched"
            );
            let message_id = state.next_id();
            ConversationLine {
                channel_id,
                author: author.name,
                from_bot: false,
                content: content.to_owned(),
                message_id,
            }
        }
    }
}

/// GUILD_MEMBERS_CHUNK payloads answering op 8 for a guild (at most 2 members per chunk).
pub(super) fn member_chunks(world: &World, guild: &ScriptGuild, request: &Value) -> Vec<Value> {
    let query = request
        .get("query")
        .and_then(Value::as_str)
        .map(str::to_lowercase);
    let limit = request.get("limit").and_then(Value::as_u64).unwrap_or(0);
    let user_ids: Option<Vec<u64>> = request.get("user_ids").map(|v| match v {
        Value::Array(items) => items.iter().filter_map(snowflake).collect(),
        other => snowflake(other).into_iter().collect(),
    });
    let mut found: Vec<&ScriptUser> = world
        .members()
        .filter(|u| match (&user_ids, &query) {
            (Some(ids), _) => ids.contains(&u.id),
            (None, Some(q)) => u.name.to_lowercase().starts_with(q.as_str()),
            (None, None) => true,
        })
        .collect();
    if limit > 0 && user_ids.is_none() {
        found.truncate(limit as usize);
    }
    let not_found: Vec<String> = user_ids
        .iter()
        .flatten()
        .filter(|id| !found.iter().any(|u| u.id == **id))
        .map(u64::to_string)
        .collect();
    let chunks: Vec<&[&ScriptUser]> = if found.is_empty() {
        vec![&[]]
    } else {
        found.chunks(2).collect()
    };
    let count = chunks.len();
    chunks
        .iter()
        .enumerate()
        .map(|(index, members)| {
            let mut chunk = json!({
                "guild_id": guild.id.to_string(),
                "members": members.iter().map(|u| member_json(u, true)).collect::<Vec<_>>(),
                "chunk_index": index, "chunk_count": count,
            });
            if let Some(obj) = chunk.as_object_mut() {
                if let Some(nonce) = request.get("nonce").filter(|n| n.is_string()) {
                    obj.insert("nonce".into(), nonce.clone());
                }
                if index == 0 && user_ids.is_some() {
                    obj.insert("not_found".into(), json!(not_found));
                }
                if request.get("presences").and_then(Value::as_bool) == Some(true) {
                    obj.insert("presences".into(), json!([]));
                }
            }
            chunk
        })
        .collect()
}

/// A snowflake sent as a string or a number.
pub(super) fn snowflake(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => s.parse().ok(),
        other => other.as_u64(),
    }
}

/// ISO 8601 with microseconds and `+00:00`, as Discord writes timestamps.
pub(super) fn iso8601(unix_ms: u64) -> String {
    let days = unix_ms / 86_400_000;
    let ms_of_day = unix_ms % 86_400_000;
    // Howard Hinnant's civil_from_days, for days >= 0.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    let (h, m, s, milli) = (
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
        ms_of_day % 1000,
    );
    format!(
        "{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{:06}+00:00",
        milli * 1000
    )
}
