//! Tests of the cache: JSON builders and fixtures shared by the event and query tests.

mod events;
mod queries;

use serde_json::value::RawValue;
use serde_json::{Value, json};
use twilight_model::guild::Permissions;
use twilight_model::id::Id;

use super::*;
use crate::EventKind;

/// The Discord4J gateway captures and Discord's documentation examples, read at test time.
fn fixture(path: &str) -> Option<Value> {
    let full = format!("{}/../../shared/discord/{path}", env!("CARGO_MANIFEST_DIR"));
    match std::fs::read_to_string(&full) {
        Ok(text) => Some(serde_json::from_str(&text).expect("fixtures are JSON")),
        Err(_) => {
            eprintln!("skipped: {full} is absent");
            None
        }
    }
}

/// The `d` of a Discord4J gateway capture.
fn capture(name: &str) -> Option<Value> {
    let path = format!("peers/Discord4J-discord-json/src/test/resources/gateway/{name}.json");
    fixture(&path).map(|mut frame| frame["d"].take())
}

/// Parses a dispatch and checks that it typed.
fn ev(name: &str, d: &Value) -> Event {
    let raw = RawValue::from_string(d.to_string()).unwrap();
    let event = Event::from_dispatch(name, &raw);
    assert_eq!(
        event.kind(),
        EventKind::from_name(name).unwrap(),
        "{name} did not parse"
    );
    event
}

/// Parses a dispatch, applies it, and returns it with its old value or deleted object.
fn apply(cache: &Cache, name: &str, d: Value) -> Event {
    let mut event = ev(name, &d);
    cache.update(&mut event);
    event
}

fn all() -> Cache {
    Cache::in_memory(CacheConfig {
        resources: ResourceType::ALL,
        message_cache_size: 2,
        request_members_on_start: false,
    })
}

const G: u64 = 1000;
const OWNER: u64 = 1;
const ALICE: u64 = 2;
const BOB: u64 = 3;
const MODS: u64 = 10;
const MUTED: u64 = 11;
const TEXT: u64 = 100;
const VOICE: u64 = 101;
const THREAD: u64 = 102;

fn id<T>(n: u64) -> Id<T> {
    Id::new(n)
}

fn user(n: u64, name: &str) -> Value {
    json!({"id": n.to_string(), "username": name, "discriminator": "0", "avatar": null, "global_name": null})
}

fn member(n: u64, name: &str, roles: &[u64]) -> Value {
    json!({"user": user(n, name), "roles": roles.iter().map(u64::to_string).collect::<Vec<_>>(),
        "joined_at": "2021-01-01T00:00:00.000000+00:00", "deaf": false, "mute": false, "flags": 0,
        "nick": null, "pending": false})
}

fn role(n: u64, name: &str, permissions: Permissions) -> Value {
    json!({"id": n.to_string(), "name": name, "color": 0, "hoist": false, "position": 0,
        "permissions": permissions.bits().to_string(), "managed": false, "mentionable": false, "flags": 0})
}

fn overwrite(n: u64, kind: u8, allow: Permissions, deny: Permissions) -> Value {
    json!({"id": n.to_string(), "type": kind, "allow": allow.bits().to_string(), "deny": deny.bits().to_string()})
}

fn channel(n: u64, guild: u64, kind: u8, name: &str, overwrites: Vec<Value>) -> Value {
    json!({"id": n.to_string(), "guild_id": guild.to_string(), "type": kind, "name": name,
        "permission_overwrites": overwrites, "position": 0})
}

fn thread(n: u64, guild: u64, parent: u64) -> Value {
    json!({"id": n.to_string(), "guild_id": guild.to_string(), "type": 11, "name": "t",
        "parent_id": parent.to_string(), "owner_id": ALICE.to_string()})
}

fn presence(guild: u64, n: u64, status: &str) -> Value {
    json!({"user": {"id": n.to_string()}, "guild_id": guild.to_string(), "status": status,
        "client_status": {"desktop": status}, "activities": []})
}

fn voice_state(guild: u64, n: u64, channel: Option<u64>) -> Value {
    json!({"guild_id": guild.to_string(), "user_id": n.to_string(), "channel_id": channel.map(|c| c.to_string()),
        "session_id": "s", "deaf": false, "mute": false, "self_deaf": false, "self_mute": true,
        "self_stream": false, "self_video": false, "suppress": false, "request_to_speak_timestamp": null})
}

fn emoji(n: u64, name: &str) -> Value {
    json!({"id": n.to_string(), "name": name, "animated": false, "available": true, "managed": false,
        "require_colons": true, "roles": []})
}

fn sticker(n: u64, name: &str) -> Value {
    json!({"id": n.to_string(), "name": name, "description": null, "tags": "x", "type": 2,
        "format_type": 1, "available": true, "guild_id": G.to_string()})
}

/// A guild of `OWNER`, Alice (a moderator) and Bob; a text channel where @everyone cannot send, a
/// voice channel, a thread; Alice online and in voice.
fn guild(guild_id: u64) -> Value {
    let base = Permissions::VIEW_CHANNEL | Permissions::SEND_MESSAGES;
    json!({
        "id": guild_id.to_string(), "name": "guild", "owner_id": OWNER.to_string(), "icon": null,
        "splash": null, "discovery_splash": null, "banner": null, "afk_channel_id": null,
        "afk_timeout": 300, "application_id": null, "default_message_notifications": 0,
        "description": null, "explicit_content_filter": 0, "features": ["COMMUNITY"],
        "large": false, "mfa_level": 0, "nsfw_level": 0, "preferred_locale": "en-US",
        "premium_progress_bar_enabled": false, "premium_tier": 0, "public_updates_channel_id": null,
        "rules_channel_id": null, "system_channel_flags": 0, "system_channel_id": null,
        "vanity_url_code": null, "verification_level": 0, "member_count": 3,
        "joined_at": "2021-01-01T00:00:00.000000+00:00", "unavailable": false,
        "roles": [role(guild_id, "@everyone", base), role(MODS, "mods", Permissions::KICK_MEMBERS),
            role(MUTED, "muted", Permissions::empty())],
        "channels": [
            channel(TEXT, guild_id, 0, "general", vec![
                overwrite(guild_id, 0, Permissions::empty(), Permissions::SEND_MESSAGES),
                overwrite(MODS, 0, Permissions::SEND_MESSAGES, Permissions::empty()),
            ]),
            channel(VOICE, guild_id, 2, "voice", vec![]),
        ],
        "threads": [thread(THREAD, guild_id, TEXT)],
        "members": [member(OWNER, "owner", &[]), member(ALICE, "alice", &[MODS]), member(BOB, "bob", &[])],
        "presences": [presence(guild_id, ALICE, "online")],
        "voice_states": [voice_state(guild_id, ALICE, Some(VOICE))],
        "emojis": [emoji(50, "smile")],
        "stickers": [sticker(60, "wave")],
        "stage_instances": [], "guild_scheduled_events": []
    })
}

fn message(n: u64, channel: u64, content: &str) -> Value {
    json!({"id": n.to_string(), "channel_id": channel.to_string(), "guild_id": G.to_string(),
        "author": user(ALICE, "alice"), "content": content, "timestamp": "2021-01-01T00:00:00.000000+00:00",
        "edited_timestamp": null, "tts": false, "mention_everyone": false, "mentions": [],
        "mention_roles": [], "attachments": [], "embeds": [], "pinned": false, "type": 0})
}
