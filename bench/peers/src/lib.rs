#![recursion_limit = "256"]
//! The peers benchmark's shared pieces: a deterministic corpus (start-up GUILD_CREATEs and a steady
//! stream in a large bot's proportions), its check against twilight-model, and a loopback Discord
//! (gateway over WebSocket in three compression modes, and the few HTTP routes each library asks).

use std::io::Write;
use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use nostrum_bench::{Rng, WORDS, dispatch_frame};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

pub const BOT_ID: u64 = 1_000_000_000_000_000_001;
const GUILD_BASE: u64 = 1_100_000_000_000_000_000;
const USER_BASE: u64 = 1_200_000_000_000_000_000;
const CHANNEL_BASE: u64 = 1_300_000_000_000_000_000;
const ROLE_BASE: u64 = 1_400_000_000_000_000_000;
const MESSAGE_BASE: u64 = 1_500_000_000_000_000_000;
const EMOJI_BASE: u64 = 1_600_000_000_000_000_000;

const GAMES: &[&str] = &[
    "Minecraft",
    "Valorant",
    "League of Legends",
    "Visual Studio Code",
    "Spotify",
    "Factorio",
];
const STATUSES: &[&str] = &["online", "idle", "dnd"];

/// The steady stream's kinds and their weights out of 1000 (a large bot with the presence and
/// member intents: messages and presences dominate).
pub const MIX: &[(&str, u64)] = &[
    ("MESSAGE_CREATE", 300),
    ("PRESENCE_UPDATE", 250),
    ("TYPING_START", 150),
    ("GUILD_MEMBER_UPDATE", 80),
    ("MESSAGE_REACTION_ADD", 60),
    ("MESSAGE_UPDATE", 50),
    ("VOICE_STATE_UPDATE", 40),
    ("MESSAGE_DELETE", 20),
    ("MESSAGE_REACTION_REMOVE", 15),
    ("GUILD_MEMBER_ADD", 10),
    ("GUILD_MEMBER_REMOVE", 5),
    ("CHANNEL_UPDATE", 10),
    ("GUILD_ROLE_UPDATE", 10),
];

/// A snowflake as Discord sends it: a string.
pub fn s(id: u64) -> String {
    id.to_string()
}

/// A random ISO 8601 timestamp between 2018 and 2024.
pub fn ts(rng: &mut Rng) -> String {
    format!(
        "20{:02}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}000+00:00",
        18 + rng.below(7),
        1 + rng.below(12),
        1 + rng.below(28),
        rng.below(24),
        rng.below(60),
        rng.below(60),
        rng.below(1000)
    )
}

fn user(uid: u64) -> Value {
    let n = uid;
    json!({
        "id": s(USER_BASE + uid),
        "username": format!("user{n}"),
        "global_name": format!("User {n}"),
        "discriminator": "0",
        "avatar": if n.is_multiple_of(3) { Value::Null } else { json!(format!("{:032x}", n * 2_654_435_761)) },
        "public_flags": if n.is_multiple_of(17) { 64 } else { 0 },
        "clan": null,
        "primary_guild": null,
        "avatar_decoration_data": null,
        "collectibles": null,
        "bot": n.is_multiple_of(97),
    })
}

struct GuildShape {
    id: u64,
    members: Vec<u64>,
    text: Vec<u64>,
    voice: Vec<u64>,
    roles: Vec<u64>,
}

fn member(g: &GuildShape, uid: u64, rng: &mut Rng, with_user: bool) -> Value {
    let nroles = rng.below(4) as usize;
    let roles: Vec<String> = (0..nroles)
        .map(|_| s(g.roles[1 + rng.below(g.roles.len() as u64 - 1) as usize]))
        .collect();
    let mut m = json!({
        "roles": roles,
        "nick": if rng.below(5) == 0 { json!(format!("nick{uid}")) } else { Value::Null },
        "avatar": null,
        "banner": null,
        "joined_at": ts(rng),
        "premium_since": null,
        "deaf": false,
        "mute": false,
        "pending": false,
        "flags": 0,
        "communication_disabled_until": null,
    });
    if with_user {
        m["user"] = user(uid);
    }
    m
}

fn role(id: u64, guild: u64, pos: u64) -> Value {
    let everyone = id == guild;
    json!({
        "id": s(id),
        "name": if everyone { "@everyone".to_owned() } else { format!("role {pos}") },
        "description": null,
        "color": (id % 0xFFFFFF),
        "colors": {"primary_color": (id % 0xFFFFFF), "secondary_color": null, "tertiary_color": null},
        "hoist": pos % 4 == 1,
        "icon": null,
        "unicode_emoji": null,
        "position": pos,
        "permissions": if everyone { "1071698660929" } else { "2248473465835073" },
        "managed": false,
        "mentionable": pos.is_multiple_of(3),
        "flags": 0,
    })
}

fn channel(
    id: u64,
    guild: u64,
    kind: u8,
    pos: u64,
    parent: Option<u64>,
    rng: &mut Rng,
    with_guild: bool,
) -> Value {
    let mut c = json!({
        "id": s(id),
        "type": kind,
        "name": format!("channel-{pos}"),
        "position": pos,
        "permission_overwrites": [],
        "flags": 0,
    });
    if with_guild {
        c["guild_id"] = json!(s(guild));
    }
    if let Some(parent) = parent {
        c["parent_id"] = json!(s(parent));
    }
    match kind {
        0 => {
            c["topic"] = if rng.below(2) == 0 {
                json!("talk about things here")
            } else {
                Value::Null
            };
            c["nsfw"] = json!(false);
            c["rate_limit_per_user"] = json!(0);
            c["last_message_id"] = json!(s(MESSAGE_BASE + rng.below(1_000_000)));
            c["permission_overwrites"] =
                json!([{"id": s(guild), "type": 0, "allow": "0", "deny": "2048"}]);
        }
        2 => {
            c["bitrate"] = json!(64000);
            c["user_limit"] = json!(0);
            c["rtc_region"] = Value::Null;
            c["nsfw"] = json!(false);
            c["rate_limit_per_user"] = json!(0);
            c["last_message_id"] = Value::Null;
        }
        _ => {}
    }
    c
}

/// The corpus: every text frame the gateway sends after HELLO, in order.
pub struct Corpus {
    pub hello: String,
    /// READY then the G GUILD_CREATEs.
    pub startup: Vec<String>,
    /// The steady stream; starts and ends with a MESSAGE_CREATE.
    pub steady: Vec<String>,
    pub steady_kinds: Vec<&'static str>,
    pub guilds: usize,
    pub members: usize,
    pub messages: usize,
}

impl Corpus {
    pub fn startup_bytes(&self) -> usize {
        self.startup.iter().map(String::len).sum()
    }
    pub fn steady_bytes(&self) -> usize {
        self.steady.iter().map(String::len).sum()
    }
}

/// Builds the corpus: `guilds` guilds (three of 10000+ members, ten of 1000 to 3000, the rest 5 to
/// 300), then `events` steady dispatches, all from `seed`.
pub fn corpus(seed: u64, guilds: usize, events: usize) -> Corpus {
    let mut rng = Rng::new(seed);
    let mut shapes = Vec::with_capacity(guilds);
    let mut startup = Vec::with_capacity(guilds + 1);
    let mut next_user = 1u64;
    let mut total_members = 0;
    let ready = json!({
        "v": 10,
        "user": {"id": s(BOT_ID), "username": "bench", "discriminator": "0", "avatar": null, "bot": true,
                 "global_name": null, "flags": 0, "mfa_enabled": false, "verified": true, "email": null},
        "guilds": (0..guilds).map(|i| json!({"id": s(GUILD_BASE + i as u64), "unavailable": true})).collect::<Vec<_>>(),
        "session_id": "bench-session",
        "resume_gateway_url": "ws://127.0.0.1:1",
        "session_type": "normal",
        "private_channels": [],
        "presences": [],
        "relationships": [],
        "guild_join_requests": [],
        "geo_ordered_rtc_regions": ["us-east"],
        "auth": {},
        "user_settings": {},
        "shard": [0, 1],
        "application": {"id": s(BOT_ID), "flags": 565248},
    });
    startup.push(dispatch_frame("READY", 1, &ready));
    let mut seq = 2;
    for gi in 0..guilds {
        let id = GUILD_BASE + gi as u64;
        let nmembers = if gi % (guilds / 3).max(1) == 0 && gi / (guilds / 3).max(1) < 3 {
            10_000 + rng.below(5_000)
        } else if gi % 20 == 7 {
            1_000 + rng.below(2_000)
        } else {
            // log-ish spread between 5 and 300
            let r = rng.below(1000);
            5 + r * r * 295 / 1_000_000
        };
        let nroles = 3 + rng.below(if nmembers > 1000 { 60 } else { 15 });
        let ntext = 3 + rng.below(if nmembers > 1000 { 60 } else { 20 });
        let nvoice = 1 + rng.below(if nmembers > 1000 { 15 } else { 4 });
        let nemojis = rng.below(if nmembers > 1000 { 150 } else { 30 });
        // Members: some users are shared with earlier guilds, most are new.
        let mut members = Vec::with_capacity(nmembers as usize + 1);
        members.push(0); // the bot is user 0 (id BOT_ID - USER_BASE would be negative; see below)
        for _ in 0..nmembers {
            if next_user > 100 && rng.below(10) == 0 {
                members.push(1 + rng.below(next_user - 1));
            } else {
                members.push(next_user);
                next_user += 1;
            }
        }
        members.sort_unstable();
        members.dedup();
        let roles: Vec<u64> = std::iter::once(id)
            .chain((0..nroles).map(|r| ROLE_BASE + gi as u64 * 1000 + r))
            .collect();
        let category = CHANNEL_BASE + gi as u64 * 1000;
        let text: Vec<u64> = (1..=ntext).map(|c| category + c).collect();
        let voice: Vec<u64> = (1..=nvoice).map(|c| category + 500 + c).collect();
        let shape = GuildShape {
            id,
            members,
            text,
            voice,
            roles,
        };

        let mut channels = vec![channel(category, id, 4, 0, None, &mut rng, false)];
        for (i, &c) in shape.text.iter().enumerate() {
            channels.push(channel(c, id, 0, i as u64, Some(category), &mut rng, false));
        }
        for (i, &c) in shape.voice.iter().enumerate() {
            channels.push(channel(c, id, 2, i as u64, Some(category), &mut rng, false));
        }
        let roles_json: Vec<Value> = shape
            .roles
            .iter()
            .enumerate()
            .map(|(p, &r)| role(r, id, p as u64))
            .collect();
        let mut members_json = Vec::with_capacity(shape.members.len());
        let mut presences = Vec::new();
        let mut voice_states = Vec::new();
        for &uid in &shape.members {
            let mut m = member(&shape, uid, &mut rng, true);
            if uid == 0 {
                m["user"] = json!({"id": s(BOT_ID), "username": "bench", "discriminator": "0", "avatar": null,
                                   "bot": true, "global_name": null, "public_flags": 0});
            }
            members_json.push(m);
            if uid != 0 && rng.below(100) < 25 {
                presences.push(presence(uid, None, &mut rng));
                if rng.below(100) < 5 {
                    voice_states.push(voice_state(&shape, uid, &mut rng, false));
                }
            }
        }
        total_members += members_json.len();
        let emojis: Vec<Value> = (0..nemojis)
            .map(|e| {
                json!({"id": s(EMOJI_BASE + gi as u64 * 1000 + e), "name": format!("emoji{e}"), "roles": [],
                       "require_colons": true, "managed": false, "animated": e % 5 == 0, "available": true})
            })
            .collect();
        let large = shape.members.len() > 250;
        let d = json!({
            "id": s(id),
            "name": format!("guild {gi}"),
            "icon": format!("{:032x}", id),
            "icon_hash": null,
            "splash": null,
            "discovery_splash": null,
            "banner": null,
            "description": if large { json!("a large community") } else { Value::Null },
            "owner_id": s(USER_BASE + shape.members[1]),
            "region": "deprecated",
            "afk_channel_id": null,
            "afk_timeout": 300,
            "widget_enabled": false,
            "widget_channel_id": null,
            "verification_level": 1,
            "default_message_notifications": 1,
            "explicit_content_filter": 2,
            "features": if large { json!(["COMMUNITY", "NEWS", "INVITE_SPLASH", "ANIMATED_ICON"]) } else { json!([]) },
            "mfa_level": 0,
            "application_id": null,
            "system_channel_id": s(shape.text[0]),
            "system_channel_flags": 0,
            "rules_channel_id": null,
            "public_updates_channel_id": null,
            "safety_alerts_channel_id": null,
            "vanity_url_code": null,
            "premium_tier": if large { 2 } else { 0 },
            "premium_subscription_count": if large { 9 } else { 0 },
            "premium_progress_bar_enabled": false,
            "preferred_locale": "en-US",
            "max_members": 500000,
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "nsfw": false,
            "nsfw_level": 0,
            "hub_type": null,
            "latest_onboarding_question_id": null,
            "incidents_data": null,
            "inventory_settings": null,
            "home_header": null,
            "version": 1_714_566_896_000u64,
            "joined_at": ts(&mut rng),
            "large": large,
            "unavailable": false,
            "lazy": true,
            "member_count": shape.members.len(),
            "roles": roles_json,
            "emojis": emojis,
            "stickers": [],
            "channels": channels,
            "threads": [],
            "members": members_json,
            "presences": presences,
            "voice_states": voice_states,
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "embedded_activities": [],
            "activity_instances": [],
            "application_command_counts": {},
        });
        startup.push(dispatch_frame("GUILD_CREATE", seq, &d));
        seq += 1;
        shapes.push(shape);
    }

    // Who speaks: a member picked uniformly over all memberships, so large guilds are busier.
    let weights: Vec<u64> = shapes.iter().map(|g| g.members.len() as u64).collect();
    let total_weight: u64 = weights.iter().sum();
    let pick_guild = |rng: &mut Rng| {
        let mut x = rng.below(total_weight);
        for (i, &w) in weights.iter().enumerate() {
            if x < w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    };
    let mut recent: Vec<(u64, u64, usize, u64)> = Vec::new(); // message, channel, guild, author
    let mut steady = Vec::with_capacity(events);
    let mut steady_kinds = Vec::with_capacity(events);
    let mut messages = 0;
    let mut next_message = 1u64;
    for i in 0..events {
        let mut kind = if i == 0 || i + 1 == events {
            "MESSAGE_CREATE"
        } else {
            let mut x = rng.below(1000);
            let mut k = MIX[0].0;
            for &(name, w) in MIX {
                if x < w {
                    k = name;
                    break;
                }
                x -= w;
            }
            k
        };
        let gi = pick_guild(&mut rng);
        let g = &shapes[gi];
        let uid = g.members[1 + rng.below(g.members.len() as u64 - 1) as usize];
        let needs_message = matches!(
            kind,
            "MESSAGE_REACTION_ADD"
                | "MESSAGE_UPDATE"
                | "MESSAGE_DELETE"
                | "MESSAGE_REACTION_REMOVE"
        );
        if needs_message && recent.is_empty() {
            kind = "MESSAGE_CREATE";
        }
        let d = match kind {
            "MESSAGE_CREATE" | "MESSAGE_UPDATE" => {
                let (mid, cid, gi, author) = if kind == "MESSAGE_UPDATE" {
                    recent[rng.below(recent.len() as u64) as usize]
                } else {
                    let m = (
                        MESSAGE_BASE + next_message,
                        g.text[rng.below(g.text.len() as u64) as usize],
                        gi,
                        uid,
                    );
                    next_message += 1;
                    if recent.len() < 2000 {
                        recent.push(m);
                    } else {
                        let slot = rng.below(2000) as usize;
                        recent[slot] = m;
                    }
                    m
                };
                let g = &shapes[gi];
                message(g, mid, cid, author, kind == "MESSAGE_UPDATE", &mut rng)
            }
            "PRESENCE_UPDATE" => presence(uid, Some(g.id), &mut rng),
            "TYPING_START" => {
                let mut m = member(g, uid, &mut rng, true);
                m["user"] = user(uid);
                json!({"user_id": s(USER_BASE + uid), "timestamp": 1_714_566_896 + i as u64, "member": m,
                       "channel_id": s(g.text[rng.below(g.text.len() as u64) as usize]), "guild_id": s(g.id)})
            }
            "GUILD_MEMBER_UPDATE" | "GUILD_MEMBER_ADD" => {
                let mut m = member(g, uid, &mut rng, true);
                m["guild_id"] = json!(s(g.id));
                m
            }
            "GUILD_MEMBER_REMOVE" => json!({"guild_id": s(g.id), "user": user(uid)}),
            "MESSAGE_REACTION_ADD" | "MESSAGE_REACTION_REMOVE" => {
                let (mid, cid, gi, author) = recent[rng.below(recent.len() as u64) as usize];
                let g = &shapes[gi];
                let emoji = if rng.below(3) == 0 {
                    json!({"id": s(EMOJI_BASE + gi as u64 * 1000), "name": "emoji0", "animated": false})
                } else {
                    json!({"id": null, "name": "\u{1F44D}"})
                };
                let mut d = json!({"user_id": s(USER_BASE + uid), "type": 0, "message_id": s(mid), "channel_id": s(cid),
                                   "guild_id": s(g.id), "emoji": emoji, "burst": false});
                if kind == "MESSAGE_REACTION_ADD" {
                    d["member"] = member(g, uid, &mut rng, true);
                    d["message_author_id"] = json!(s(USER_BASE + author));
                    d["burst_colors"] = json!([]);
                }
                d
            }
            "MESSAGE_DELETE" => {
                let (mid, cid, gi, _) = recent[rng.below(recent.len() as u64) as usize];
                json!({"id": s(mid), "channel_id": s(cid), "guild_id": s(shapes[gi].id)})
            }
            "VOICE_STATE_UPDATE" => voice_state(g, uid, &mut rng, true),
            "CHANNEL_UPDATE" => {
                let c = g.text[rng.below(g.text.len() as u64) as usize];
                channel(
                    c,
                    g.id,
                    0,
                    c % 1000,
                    Some(CHANNEL_BASE + gi as u64 * 1000),
                    &mut rng,
                    true,
                )
            }
            "GUILD_ROLE_UPDATE" => {
                let r = g.roles[rng.below(g.roles.len() as u64) as usize];
                json!({"guild_id": s(g.id), "role": role(r, g.id, r % 1000)})
            }
            other => unreachable!("{other}"),
        };
        if kind == "MESSAGE_CREATE" {
            messages += 1;
        }
        steady.push(dispatch_frame(kind, seq, &d));
        steady_kinds.push(kind);
        seq += 1;
    }
    Corpus {
        hello: json!({"op": 10, "d": {"heartbeat_interval": 3_600_000}, "s": null, "t": null})
            .to_string(),
        startup,
        steady,
        steady_kinds,
        guilds,
        members: total_members,
        messages,
    }
}

fn presence(uid: u64, guild: Option<u64>, rng: &mut Rng) -> Value {
    let status = STATUSES[rng.below(3) as usize];
    let activities = if rng.below(2) == 0 {
        let game = GAMES[rng.below(GAMES.len() as u64) as usize];
        json!([{"name": game, "type": 0, "id": format!("{:016x}", uid), "created_at": 1_714_566_896_000u64 + rng.below(1000),
                "timestamps": {"start": 1_714_560_000_000u64}, "application_id": s(1_700_000_000_000_000_000 + rng.below(6))}])
    } else {
        json!([])
    };
    let mut p = json!({"user": {"id": s(USER_BASE + uid)}, "status": status, "activities": activities,
                       "client_status": {"desktop": status}});
    if let Some(g) = guild {
        p["guild_id"] = json!(s(g));
    }
    p
}

fn voice_state(g: &GuildShape, uid: u64, rng: &mut Rng, event: bool) -> Value {
    let channel = if event && rng.below(4) == 0 {
        Value::Null
    } else {
        json!(s(g.voice[rng.below(g.voice.len() as u64) as usize]))
    };
    let mut v = json!({"channel_id": channel, "user_id": s(USER_BASE + uid), "session_id": format!("{:032x}", uid),
                       "deaf": false, "mute": false, "self_deaf": rng.below(3) == 0, "self_mute": rng.below(2) == 0,
                       "self_video": false, "suppress": false, "request_to_speak_timestamp": null});
    if event {
        v["guild_id"] = json!(s(g.id));
        v["member"] = member(g, uid, rng, true);
    }
    v
}

fn message(g: &GuildShape, mid: u64, cid: u64, author: u64, edited: bool, rng: &mut Rng) -> Value {
    let words = 3 + rng.below(12);
    let mut content: Vec<String> = (0..words)
        .map(|_| WORDS[rng.below(WORDS.len() as u64) as usize].to_owned())
        .collect();
    let mut mentions = Vec::new();
    if rng.below(10) == 0 {
        let other = g.members[1 + rng.below(g.members.len() as u64 - 1) as usize];
        let mut mention = user(other);
        mention["member"] = member(g, other, rng, false);
        mentions.push(mention);
        content.insert(0, format!("<@{}>", USER_BASE + other));
    }
    json!({
        "type": 0,
        "tts": false,
        "timestamp": "2024-05-01T12:34:56.789000+00:00",
        "pinned": false,
        "nonce": if edited { Value::Null } else { json!(s(mid + 7)) },
        "mentions": mentions,
        "mention_roles": [],
        "mention_everyone": false,
        "member": member(g, author, rng, false),
        "id": s(mid),
        "flags": 0,
        "embeds": [],
        "edited_timestamp": if edited { json!("2024-05-01T12:35:56.789000+00:00") } else { Value::Null },
        "content": content.join(" "),
        "components": [],
        "channel_id": s(cid),
        "author": user(author),
        "attachments": [],
        "guild_id": s(g.id),
    })
}

/// Parses every frame with twilight-model's gateway deserializer; returns the failures.
pub fn check_twilight(frames: &[String]) -> Vec<(usize, String)> {
    use serde::de::DeserializeSeed;
    use twilight_model::gateway::event::GatewayEventDeserializer;
    let mut failures = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        let Some(de) = GatewayEventDeserializer::from_json(frame) else {
            failures.push((i, "no envelope".to_owned()));
            continue;
        };
        let mut json = serde_json::Deserializer::from_str(frame);
        if let Err(err) = de.deserialize(&mut json) {
            failures.push((i, format!("{} {err}", &frame[..frame.len().min(40)])));
        }
    }
    failures
}

/// Parses every frame into a twilight-model `GatewayEvent` and drops it: the limit.
pub fn parse_twilight(frames: &[String]) -> usize {
    use serde::de::DeserializeSeed;
    use twilight_model::gateway::event::GatewayEventDeserializer;
    let mut ok = 0;
    for frame in frames {
        let de = GatewayEventDeserializer::from_json(frame).expect("envelope");
        let mut json = serde_json::Deserializer::from_str(frame);
        if let Ok(event) = de.deserialize(&mut json) {
            std::hint::black_box(&event);
            ok += 1;
        }
    }
    ok
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    None,
    Zlib,
    Zstd,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::None => "none",
            Mode::Zlib => "zlib-stream",
            Mode::Zstd => "zstd-stream",
        }
    }
    pub fn path(self) -> &'static str {
        match self {
            Mode::None => "none",
            Mode::Zlib => "zlib",
            Mode::Zstd => "zstd",
        }
    }
    pub fn from_path(path: &str) -> Self {
        match path
            .trim_start_matches('/')
            .split(['/', '?'])
            .next()
            .unwrap_or("")
        {
            "zlib" => Mode::Zlib,
            "zstd" => Mode::Zstd,
            _ => Mode::None,
        }
    }
}

/// The server side of one connection, encoded once: HELLO, then every frame after IDENTIFY.
pub struct Encoded {
    pub hello: Message,
    pub rest: Vec<Message>,
    pub wire_bytes: usize,
}

pub fn encode(corpus: &Corpus, mode: Mode) -> Encoded {
    enum C {
        Plain,
        Zlib(flate2::write::ZlibEncoder<Vec<u8>>),
        Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
    }
    let mut c = match mode {
        Mode::None => C::Plain,
        Mode::Zlib => C::Zlib(flate2::write::ZlibEncoder::new(
            Vec::new(),
            flate2::Compression::default(),
        )),
        Mode::Zstd => C::Zstd(zstd::stream::write::Encoder::new(Vec::new(), 3).expect("zstd")),
    };
    let mut enc = |text: &str| -> Message {
        match &mut c {
            C::Plain => Message::text(text.to_owned()),
            C::Zlib(e) => {
                e.write_all(text.as_bytes()).unwrap();
                e.flush().unwrap();
                Message::binary(std::mem::take(e.get_mut()))
            }
            C::Zstd(e) => {
                e.write_all(text.as_bytes()).unwrap();
                e.flush().unwrap();
                Message::binary(std::mem::take(e.get_mut()))
            }
        }
    };
    let hello = enc(&corpus.hello);
    let rest: Vec<Message> = corpus
        .startup
        .iter()
        .chain(corpus.steady.iter())
        .map(|t| enc(t))
        .collect();
    let wire_bytes = rest.iter().map(Message::len).sum();
    Encoded {
        hello,
        rest,
        wire_bytes,
    }
}

/// The loopback gateway: every connection picks its compression from the first path segment
/// (`/none`, `/zlib`, `/zstd`), gets HELLO, and after IDENTIFY the whole corpus as fast as it reads.
pub async fn serve_gateway(listener: TcpListener, streams: Arc<[Encoded; 3]>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let streams = streams.clone();
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let mut mode = Mode::None;
            // The callback's error type is tungstenite's, fixed by `accept_hdr_async_with_config`.
            #[allow(clippy::result_large_err)]
            let cb = |req: &tokio_tungstenite::tungstenite::handshake::server::Request,
                      resp: tokio_tungstenite::tungstenite::handshake::server::Response| {
                mode = Mode::from_path(req.uri().path());
                Ok(resp)
            };
            let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
                .max_message_size(None)
                .max_frame_size(None);
            let Ok(ws) =
                tokio_tungstenite::accept_hdr_async_with_config(tcp, cb, Some(config)).await
            else {
                return;
            };
            let stream = &streams[mode as usize];
            let (mut sink, mut incoming) = ws.split();
            if sink.send(stream.hello.clone()).await.is_err() {
                return;
            }
            loop {
                match incoming.next().await {
                    Some(Ok(Message::Text(text))) => {
                        let op = serde_json::from_str::<Value>(text.as_str())
                            .ok()
                            .and_then(|v| v["op"].as_u64());
                        if op == Some(2) {
                            break;
                        }
                    }
                    Some(Ok(_)) => {}
                    _ => return,
                }
            }
            let drain =
                tokio::spawn(async move { while let Some(Ok(_)) = incoming.next().await {} });
            for frame in &stream.rest {
                if sink.feed(frame.clone()).await.is_err() {
                    return;
                }
            }
            let _ = sink.flush().await;
            let _ = drain.await;
        });
    }
}

/// The loopback REST API: the routes the three libraries ask at start, anything else logged and
/// answered `{}`. One request per connection (`Connection: close`).
pub async fn serve_http(listener: TcpListener, gateway: String) {
    loop {
        let Ok((mut tcp, _)) = listener.accept().await else {
            return;
        };
        let gateway = gateway.clone();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let Ok(n) = tcp.read(&mut chunk).await else {
                    return;
                };
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
                if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            let head = String::from_utf8_lossy(&buf);
            let line = head.lines().next().unwrap_or("").to_owned();
            let path = line.split_whitespace().nth(1).unwrap_or("/");
            let path = path.split('?').next().unwrap_or(path);
            let limit =
                json!({"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1});
            let body = match path {
                "/api/v10/gateway/bot" => {
                    json!({"url": format!("{gateway}/none"), "shards": 1, "session_start_limit": limit})
                }
                "/api/v10/gateway" => json!({"url": format!("{gateway}/none")}),
                "/api/v10/users/@me" => {
                    json!({"id": s(BOT_ID), "username": "bench", "discriminator": "0", "avatar": null, "bot": true, "global_name": null})
                }
                "/api/v10/applications/@me" | "/api/v10/oauth2/applications/@me" => json!({
                    "id": s(BOT_ID), "name": "bench", "icon": null, "description": "", "bot_public": true,
                    "bot_require_code_grant": false, "verify_key": "00", "flags": 565248,
                    "owner": {"id": s(BOT_ID + 1), "username": "owner", "discriminator": "0", "avatar": null},
                    "team": null}),
                other => {
                    eprintln!("loopback http: unknown request {line} ({other}); answering {{}}");
                    json!({})
                }
            };
            let body = body.to_string();
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tcp.write_all(resp.as_bytes()).await;
            let _ = tcp.shutdown().await;
        });
    }
}
