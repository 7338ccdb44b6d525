#![recursion_limit = "256"]
//! Cache memory: heap bytes per cached member and per guild, for nostrum-core's in-memory cache,
//! twilight-cache-inmemory 0.18 and serenity 0.12's cache, fed the same GUILD_CREATE payloads in
//! process (no gateway).
//!
//! `cd bench && cargo run --release -p peers --bin cache_memory [-- MEMBERS GUILDS RUNS]` (10000 100 5)
//!
//! Every measurement runs in a fresh child process of this binary (`cache_memory child LIB KIND ..`),
//! so allocators never mix; runs are interleaved over libraries; medians. In the child the payload
//! texts are generated first, then heap is read (requested bytes currently allocated: alloc minus
//! dealloc, by the counting global allocator below), the cache is built and fed each GUILD_CREATE
//! (parsed into the library's own type, applied, the parsed value dropped), and heap is read again:
//! the difference is the cache's heap, the empty cache included. Kinds:
//!
//! - `m0`: guild A (13 channels, 20 roles) with 0 members; `m1`: guild A with MEMBERS members
//!   (distinct users, 1 to 3 roles each, a nick on 1 in 5);
//! - `m0b`: guilds A and B with 0 members; `m2`: A with its members, then B with the same users as
//!   members (other roles and nicks);
//! - `g`: GUILDS guilds of 100 channels (10 categories, 70 text, 20 voice; 2 permission overwrites
//!   each) and 50 roles, no members.
//!
//! Per member = (m1 - m0) / MEMBERS; per extra membership = ((m2 - m1) - (m0b - m0)) / MEMBERS;
//! per guild = g / GUILDS.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use nostrum_bench::Rng;
use peers::{s, ts};
use serde_json::{Value, json};

struct Counting;
static HEAP: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = HEAP.fetch_add(layout.size(), Relaxed) + layout.size();
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            let now = HEAP.fetch_add(layout.size(), Relaxed) + layout.size();
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        HEAP.fetch_sub(layout.size(), Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size > layout.size() {
                let now =
                    HEAP.fetch_add(new_size - layout.size(), Relaxed) + new_size - layout.size();
                PEAK.fetch_max(now, Relaxed);
            } else {
                HEAP.fetch_sub(layout.size() - new_size, Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

// ---- the payloads (same field shapes as the peers corpus) ----

const GUILD_BASE: u64 = 1_100_000_000_000_000_000;
const USER_BASE: u64 = 1_200_000_000_000_000_000;
const CHANNEL_BASE: u64 = 1_300_000_000_000_000_000;
const ROLE_BASE: u64 = 1_400_000_000_000_000_000;
const MESSAGE_BASE: u64 = 1_500_000_000_000_000_000;

fn user(n: u64) -> Value {
    json!({
        "id": s(USER_BASE + n),
        "username": format!("user{n}"),
        "global_name": format!("User {n}"),
        "discriminator": "0",
        "avatar": if n % 3 == 0 { Value::Null } else { json!(format!("{:032x}", n * 2_654_435_761)) },
        "public_flags": if n % 17 == 0 { 64 } else { 0 },
        "clan": null,
        "primary_guild": null,
        "avatar_decoration_data": null,
        "collectibles": null,
        "bot": n % 97 == 0,
    })
}

fn member(uid: u64, roles: &[u64], rng: &mut Rng) -> Value {
    // 1 to 3 distinct roles, never @everyone (roles[0]).
    let nroles = 1 + rng.below(3) as usize;
    let mut picked: Vec<u64> = Vec::with_capacity(nroles);
    while picked.len() < nroles {
        let r = roles[1 + rng.below(roles.len() as u64 - 1) as usize];
        if !picked.contains(&r) {
            picked.push(r);
        }
    }
    json!({
        "user": user(uid),
        "roles": picked.iter().map(|&r| s(r)).collect::<Vec<_>>(),
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
    })
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
        "mentionable": pos % 3 == 0,
        "flags": 0,
    })
}

/// A channel with two permission overwrites: @everyone and one other role.
fn channel(
    id: u64,
    guild: u64,
    kind: u8,
    pos: u64,
    parent: Option<u64>,
    other_role: u64,
    rng: &mut Rng,
) -> Value {
    let mut c = json!({
        "id": s(id),
        "type": kind,
        "name": format!("channel-{pos}"),
        "position": pos,
        "permission_overwrites": [
            {"id": s(guild), "type": 0, "allow": "0", "deny": if kind == 2 { "1048576" } else { "2048" }},
            {"id": s(other_role), "type": 0, "allow": if kind == 2 { "1048576" } else { "3072" }, "deny": "0"},
        ],
        "flags": 0,
    });
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

/// The `d` of a GUILD_CREATE: guild number `gi`, `categories`/`text`/`voice` channels spread over
/// the categories, `nroles` roles (@everyone included), members for users `users`.
fn guild_create(
    gi: u64,
    categories: u64,
    text: u64,
    voice: u64,
    nroles: u64,
    users: &[u64],
    rng: &mut Rng,
) -> String {
    let id = GUILD_BASE + gi;
    let roles: Vec<u64> = std::iter::once(id)
        .chain((1..nroles).map(|r| ROLE_BASE + gi * 1000 + r))
        .collect();
    let base = CHANNEL_BASE + gi * 1000;
    let mut channels = Vec::new();
    let cats: Vec<u64> = (0..categories).map(|c| base + c).collect();
    let other = |rng: &mut Rng| roles[1 + rng.below(roles.len() as u64 - 1) as usize];
    for (i, &c) in cats.iter().enumerate() {
        let r = other(rng);
        channels.push(channel(c, id, 4, i as u64, None, r, rng));
    }
    for i in 0..text {
        let r = other(rng);
        let parent = cats.get((i % categories.max(1)) as usize).copied();
        channels.push(channel(base + 100 + i, id, 0, i, parent, r, rng));
    }
    for i in 0..voice {
        let r = other(rng);
        let parent = cats.get((i % categories.max(1)) as usize).copied();
        channels.push(channel(base + 500 + i, id, 2, i, parent, r, rng));
    }
    let members: Vec<Value> = users.iter().map(|&u| member(u, &roles, rng)).collect();
    let d = json!({
        "id": s(id),
        "name": format!("guild {gi}"),
        "icon": format!("{:032x}", id),
        "icon_hash": null,
        "splash": null,
        "discovery_splash": null,
        "banner": null,
        "description": "a large community",
        "owner_id": s(USER_BASE + 1),
        "region": "deprecated",
        "afk_channel_id": null,
        "afk_timeout": 300,
        "widget_enabled": false,
        "widget_channel_id": null,
        "verification_level": 1,
        "default_message_notifications": 1,
        "explicit_content_filter": 2,
        "features": ["COMMUNITY", "NEWS", "INVITE_SPLASH", "ANIMATED_ICON"],
        "mfa_level": 0,
        "application_id": null,
        "system_channel_id": s(base + 100),
        "system_channel_flags": 0,
        "rules_channel_id": null,
        "public_updates_channel_id": null,
        "safety_alerts_channel_id": null,
        "vanity_url_code": null,
        "premium_tier": 2,
        "premium_subscription_count": 9,
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
        "joined_at": ts(rng),
        "large": true,
        "unavailable": false,
        "lazy": true,
        "member_count": users.len().max(1),
        "roles": roles.iter().enumerate().map(|(p, &r)| role(r, id, p as u64)).collect::<Vec<_>>(),
        "emojis": [],
        "stickers": [],
        "channels": channels,
        "threads": [],
        "members": members,
        "presences": [],
        "voice_states": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
        "embedded_activities": [],
        "activity_instances": [],
        "application_command_counts": {},
    });
    d.to_string()
}

/// The GUILD_CREATE `d`s of one kind, in the order they are applied.
fn payloads(kind: &str, members: u64, guilds: u64) -> Vec<String> {
    let mut rng = Rng::new(42);
    let users: Vec<u64> = (1..=members).collect();
    // Guild A is 0, guild B is 1: 1 category, 10 text, 2 voice, 20 roles.
    let small = |gi: u64, users: &[u64], rng: &mut Rng| guild_create(gi, 1, 10, 2, 20, users, rng);
    match kind {
        "m0" => vec![small(0, &[], &mut rng)],
        "m1" => vec![small(0, &users, &mut rng)],
        "m0b" => vec![small(0, &[], &mut rng), small(1, &[], &mut rng)],
        "m2" => vec![small(0, &users, &mut rng), small(1, &users, &mut rng)],
        "g" => (0..guilds)
            .map(|gi| guild_create(gi, 10, 70, 20, 50, &[], &mut rng))
            .collect(),
        other => panic!("unknown kind {other}"),
    }
}

// ---- the child: one library, one kind ----

struct Measured {
    empty_cache: usize,
    cache: usize,
    peak: usize,
    counts: String,
}

/// Per guild in payload order: (guild id, nicks, role links, channel permission overwrites), read
/// from the JSON.
fn expected(texts: &[String]) -> Vec<(u64, usize, usize, usize)> {
    texts
        .iter()
        .map(|t| {
            let v: Value = serde_json::from_str(t).unwrap();
            let members = v["members"].as_array().unwrap();
            (
                v["id"].as_str().unwrap().parse().unwrap(),
                members.iter().filter(|m| m["nick"].is_string()).count(),
                members
                    .iter()
                    .map(|m| m["roles"].as_array().unwrap().len())
                    .sum(),
                v["channels"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["permission_overwrites"].as_array().unwrap().len())
                    .sum(),
            )
        })
        .collect()
}

fn check(
    lib: &str,
    want: &[(u64, usize, usize, usize)],
    got: &[(usize, usize, usize)],
    users: usize,
    named: usize,
) {
    for (w, g) in want.iter().zip(got) {
        assert_eq!(
            (w.1, w.2, w.3),
            *g,
            "{lib}: guild {} nicks/role links/overwrites differ from the payload",
            w.0
        );
    }
    assert_eq!(users, named, "{lib}: a cached user lost its username");
}

fn child(lib: &str, kind: &str, members: u64, guilds: u64) -> Measured {
    let texts = payloads(kind, members, guilds);
    // The texts stay alive until the end: they cancel out of the difference.
    let before = HEAP.load(Relaxed);
    PEAK.store(before, Relaxed);
    match lib {
        "nostrum" => {
            use nostrum_core::Event;
            use nostrum_core::cache::{Cache, CacheConfig, ResourceType};
            use serde_json::value::RawValue;
            let cache = Cache::in_memory(CacheConfig {
                resources: ResourceType::ALL,
                message_cache_size: 100,
                ..CacheConfig::default()
            });
            let empty_cache = HEAP.load(Relaxed) - before;
            for text in &texts {
                let raw: &RawValue = serde_json::from_str(text).expect("raw d");
                let mut event = Event::from_dispatch("GUILD_CREATE", raw);
                assert!(
                    !matches!(event, Event::Unknown { .. }),
                    "nostrum did not parse the GUILD_CREATE"
                );
                cache.update(&mut event);
                drop(event);
            }
            let after = HEAP.load(Relaxed);
            let peak = PEAK.load(Relaxed) - before;
            let st = cache.stats();
            let counts = format!(
                "guilds={} channels={} roles={} members={} users={}",
                st.guilds, st.channels, st.roles, st.members, st.users
            );
            let want = expected(&texts);
            let got: Vec<(usize, usize, usize)> = want
                .iter()
                .map(|w| {
                    let gid = nostrum_core::model::id::Id::new(w.0);
                    let (n, r) = cache.fold_members(gid, (0, 0), |(n, r), m| {
                        (n + usize::from(m.nick.is_some()), r + m.roles.len())
                    });
                    let o = cache
                        .guild_channels(gid)
                        .iter()
                        .map(|&c| {
                            cache
                                .channel(c)
                                .map_or(0, |c| c.permission_overwrites.len())
                        })
                        .sum();
                    (n, r, o)
                })
                .collect();
            let named = (1..=members)
                .filter(|u| {
                    cache
                        .user(nostrum_core::model::id::Id::new(USER_BASE + u))
                        .is_some_and(|c| *c.name == *format!("user{u}"))
                })
                .count();
            check(
                lib,
                &want,
                &got,
                if kind == "g" || kind.starts_with("m0") {
                    0
                } else {
                    members as usize
                },
                named,
            );
            Measured {
                empty_cache,
                cache: after - before,
                peak,
                counts,
            }
        }
        "twilight" => {
            use serde::de::DeserializeSeed;
            use twilight_cache_inmemory::{DefaultInMemoryCache, ResourceType};
            use twilight_model::gateway::event::{Event, GatewayEventDeserializer};
            let cache = DefaultInMemoryCache::builder()
                .resource_types(ResourceType::all())
                .message_cache_size(100)
                .build();
            let empty_cache = HEAP.load(Relaxed) - before;
            for (i, text) in texts.iter().enumerate() {
                // The frame as the gateway sends it: twilight parses the envelope with `d`.
                let frame = format!(r#"{{"op":0,"s":{},"t":"GUILD_CREATE","d":{text}}}"#, i + 2);
                let event: Event = {
                    let de = GatewayEventDeserializer::from_json(&frame).expect("envelope");
                    let mut json = serde_json::Deserializer::from_str(&frame);
                    de.deserialize(&mut json)
                        .expect("twilight GUILD_CREATE")
                        .into()
                };
                drop(frame);
                assert!(
                    matches!(event, Event::GuildCreate(_)),
                    "twilight: not a GUILD_CREATE"
                );
                cache.update(&event);
                drop(event);
            }
            let after = HEAP.load(Relaxed);
            let peak = PEAK.load(Relaxed) - before;
            let st = cache.stats();
            let counts = format!(
                "guilds={} channels={} roles={} members={} users={}",
                st.guilds(),
                st.channels(),
                st.roles(),
                st.members(),
                st.users()
            );
            let want = expected(&texts);
            let got: Vec<(usize, usize, usize)> = want
                .iter()
                .map(|w| {
                    let gid = twilight_model::id::Id::new(w.0);
                    let (n, r) = (1..=members).fold((0, 0), |(n, r), u| {
                        match cache.member(gid, twilight_model::id::Id::new(USER_BASE + u)) {
                            Some(m) => (n + usize::from(m.nick().is_some()), r + m.roles().len()),
                            None => (n, r),
                        }
                    });
                    let channels: Vec<_> = cache
                        .guild_channels(gid)
                        .map(|c| c.iter().copied().collect())
                        .unwrap_or_default();
                    let o = channels
                        .iter()
                        .map(|&c| {
                            cache
                                .channel(c)
                                .map_or(0, |c| c.permission_overwrites.as_ref().map_or(0, Vec::len))
                        })
                        .sum();
                    (n, r, o)
                })
                .collect();
            let named = (1..=members)
                .filter(|u| {
                    cache
                        .user(twilight_model::id::Id::new(USER_BASE + u))
                        .is_some_and(|c| c.name == format!("user{u}"))
                })
                .count();
            check(
                lib,
                &want,
                &got,
                if kind == "g" || kind.starts_with("m0") {
                    0
                } else {
                    members as usize
                },
                named,
            );
            Measured {
                empty_cache,
                cache: after - before,
                peak,
                counts,
            }
        }
        "serenity" => {
            use serenity::cache::{Cache, Settings};
            use serenity::model::event::GuildCreateEvent;
            let mut settings = Settings::default();
            settings.max_messages = 100;
            let cache = Cache::new_with_settings(settings);
            let empty_cache = HEAP.load(Relaxed) - before;
            for text in &texts {
                let mut event: GuildCreateEvent =
                    serde_json::from_str(text).expect("serenity GUILD_CREATE");
                cache.update(&mut event);
                drop(event);
            }
            let after = HEAP.load(Relaxed);
            let peak = PEAK.load(Relaxed) - before;
            let ids = cache.guilds();
            let (channels, roles, cached_members) = ids.iter().fold((0, 0, 0), |(c, r, m), id| {
                let g = cache.guild(*id).expect("cached guild");
                (c + g.channels.len(), r + g.roles.len(), m + g.members.len())
            });
            let counts = format!(
                "guilds={} channels={} roles={} members={} users={}",
                ids.len(),
                channels,
                roles,
                cached_members,
                cache.user_count()
            );
            let want = expected(&texts);
            let got: Vec<(usize, usize, usize)> = want
                .iter()
                .map(|w| {
                    let g = cache
                        .guild(serenity::model::id::GuildId::new(w.0))
                        .expect("cached guild");
                    let (n, r) = g.members.values().fold((0, 0), |(n, r), m| {
                        (n + usize::from(m.nick.is_some()), r + m.roles.len())
                    });
                    (
                        n,
                        r,
                        g.channels
                            .values()
                            .map(|c| c.permission_overwrites.len())
                            .sum(),
                    )
                })
                .collect();
            let named = (1..=members)
                .filter(|u| {
                    cache
                        .user(serenity::model::id::UserId::new(USER_BASE + u))
                        .is_some_and(|c| c.name == format!("user{u}"))
                })
                .count();
            check(
                lib,
                &want,
                &got,
                if kind == "g" || kind.starts_with("m0") {
                    0
                } else {
                    members as usize
                },
                named,
            );
            Measured {
                empty_cache,
                cache: after - before,
                peak,
                counts,
            }
        }
        other => panic!("unknown library {other}"),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

const LIBS: [&str; 3] = ["nostrum", "twilight", "serenity"];
const KINDS: [&str; 5] = ["m0", "m1", "m0b", "m2", "g"];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        let (lib, kind) = (&args[2], &args[3]);
        let members: u64 = args[4].parse().unwrap();
        let guilds: u64 = args[5].parse().unwrap();
        let m = child(lib, kind, members, guilds);
        println!("{} {} {} {}", m.cache, m.empty_cache, m.peak, m.counts);
        return;
    }
    let members: u64 = args.get(1).map_or(10_000, |a| a.parse().expect("MEMBERS"));
    let guilds: u64 = args.get(2).map_or(100, |a| a.parse().expect("GUILDS"));
    let runs: usize = args.get(3).map_or(5, |a| a.parse().expect("RUNS"));
    println!(
        "cache memory: {members} members, {guilds} guilds of 100 channels and 50 roles, {runs} runs"
    );
    println!("machine: {}", nostrum_bench::machine());
    // Payload sizes, for the report.
    for kind in KINDS {
        let texts = payloads(kind, members, guilds);
        println!(
            "payload {kind}: {} GUILD_CREATE(s), {:.2} MB of JSON",
            texts.len(),
            texts.iter().map(String::len).sum::<usize>() as f64 / 1e6
        );
    }

    let exe = std::env::current_exe().unwrap();
    // samples[lib][kind] = cache heap in bytes, one per run.
    let mut samples = vec![vec![Vec::new(); KINDS.len()]; LIBS.len()];
    let mut empty = vec![Vec::new(); LIBS.len()];
    for run in 0..runs {
        for (ki, kind) in KINDS.iter().enumerate() {
            for (li, lib) in LIBS.iter().enumerate() {
                let out = std::process::Command::new(&exe)
                    .args([
                        "child",
                        lib,
                        kind,
                        &members.to_string(),
                        &guilds.to_string(),
                    ])
                    .output()
                    .expect("spawn child");
                assert!(
                    out.status.success(),
                    "{lib} {kind} failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                let mut f = line.splitn(4, ' ');
                let cache: f64 = f.next().unwrap().parse().unwrap();
                let empty_cache: f64 = f.next().unwrap().parse().unwrap();
                let peak: f64 = f.next().unwrap().parse().unwrap();
                let counts = f.next().unwrap_or("");
                if run == 0 {
                    println!(
                        "  {lib:<8} {kind:<3} cache heap {:>10.0} B (empty cache {:>6.0} B), peak while loading {:>10.0} B; {counts}",
                        cache, empty_cache, peak
                    );
                }
                samples[li][ki].push(cache);
                empty[li].push(empty_cache);
            }
        }
    }

    // Per-run derived figures, then medians of those.
    let n = members as f64;
    let g = guilds as f64;
    let derived = |li: usize| {
        let s = &samples[li];
        let per_member: Vec<f64> = (0..runs).map(|r| (s[1][r] - s[0][r]) / n).collect();
        let per_extra: Vec<f64> = (0..runs)
            .map(|r| ((s[3][r] - s[1][r]) - (s[2][r] - s[0][r])) / n)
            .collect();
        let per_guild: Vec<f64> = (0..runs).map(|r| s[4][r] / g).collect();
        let spread = |v: &[f64]| {
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (lo, hi)
        };
        (
            median(per_member.clone()),
            median(per_extra.clone()),
            median(per_guild.clone()),
            [spread(&per_member), spread(&per_extra), spread(&per_guild)],
        )
    };
    let d: Vec<_> = (0..LIBS.len()).map(derived).collect();
    println!();
    for (li, lib) in LIBS.iter().enumerate() {
        let [a, b, c] = d[li].3;
        println!(
            "spread {lib}: per member {:.0} to {:.0} B, per extra membership {:.0} to {:.0} B, per guild {:.0} to {:.0} B; empty cache {:.0} B",
            a.0,
            a.1,
            b.0,
            b.1,
            c.0,
            c.1,
            median(empty[li].clone())
        );
    }
    println!();
    println!(
        "| metric (heap, medians of {runs} runs) | nostrum | twilight | serenity | nostrum/twilight | nostrum/serenity |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    let row = |name: &str, pick: &dyn Fn(usize) -> f64| {
        let (a, b, c) = (pick(0), pick(1), pick(2));
        println!(
            "| {name} | {:.2} KB | {:.2} KB | {:.2} KB | {:.2} | {:.2} |",
            a / 1000.0,
            b / 1000.0,
            c / 1000.0,
            a / b,
            a / c
        );
    };
    row(
        &format!("per member (1 guild, {members} distinct users)"),
        &|li| d[li].0,
    );
    row("per extra membership (2nd guild, same users)", &|li| {
        d[li].1
    });
    row(
        &format!("per guild ({guilds} guilds: 100 channels, 50 roles, 0 members)"),
        &|li| d[li].2,
    );
    println!();
    println!(
        "targets: nostrum per member <= 0.5 KB: {}; per guild <= 60 KB: {}; per member <= 0.6x twilight: {}",
        if d[0].0 <= 500.0 { "met" } else { "NOT met" },
        if d[0].2 <= 60_000.0 { "met" } else { "NOT met" },
        if d[0].0 <= 0.6 * d[1].0 {
            "met"
        } else {
            "NOT met"
        },
    );
}
