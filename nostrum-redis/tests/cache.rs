//! The shared cache end to end: a gateway process's writer mirrors its events to Redis, a worker's
//! reader (on its own connections, as another process) sees the same, and a process that takes over
//! a shard warms up from Redis.

#![recursion_limit = "256"]

use nostrum_core::cache::{CacheBackend, CacheConfig, ResourceType};
use nostrum_core::gateway::ShardId;
use nostrum_core::model::guild::Permissions;
use nostrum_core::model::id::Id;
use nostrum_core::{Event, EventKind};
use nostrum_redis::testing::RedisServer;
use nostrum_redis::{RedisCache, RedisCacheReader, RedisCacheWriter};
use serde_json::value::RawValue;
use serde_json::{Value, json};

const G: u64 = 1000 << 22; // shard 0 of 2
const G2: u64 = 1001 << 22; // shard 1 of 2
const OWNER: u64 = 1;
const ALICE: u64 = 2;
const BOB: u64 = 3;
const MODS: u64 = 10;
const MUTED: u64 = 11;
const TEXT: u64 = 100;
const VOICE: u64 = 101;
const THREAD: u64 = 102;
const OTHER: u64 = 200;

fn id<T>(n: u64) -> Id<T> {
    Id::new(n)
}

fn ev(name: &str, d: &Value) -> Event {
    let raw = RawValue::from_string(d.to_string()).expect("JSON");
    let event = Event::from_dispatch(name, &raw);
    assert_eq!(
        event.kind(),
        EventKind::from_name(name).expect("a known event"),
        "{name} did not parse"
    );
    event
}

fn apply(cache: &dyn CacheBackend, name: &str, d: Value) -> Event {
    let mut event = ev(name, &d);
    cache.update(&mut event);
    event
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

fn channel(n: u64, guild: u64, kind: u8, name: &str, overwrites: Vec<Value>) -> Value {
    json!({"id": n.to_string(), "guild_id": guild.to_string(), "type": kind, "name": name,
        "permission_overwrites": overwrites, "position": 0})
}

fn overwrite(n: u64, allow: Permissions, deny: Permissions) -> Value {
    json!({"id": n.to_string(), "type": 0, "allow": allow.bits().to_string(), "deny": deny.bits().to_string()})
}

fn guild(guild_id: u64, channels: Vec<Value>, threads: Vec<Value>, members: Vec<Value>) -> Value {
    let base = Permissions::VIEW_CHANNEL | Permissions::SEND_MESSAGES;
    json!({
        "id": guild_id.to_string(), "name": format!("guild {guild_id}"), "owner_id": OWNER.to_string(),
        "icon": null, "splash": null, "discovery_splash": null, "banner": null, "afk_channel_id": null,
        "afk_timeout": 300, "application_id": null, "default_message_notifications": 0,
        "description": null, "explicit_content_filter": 0, "features": ["COMMUNITY"],
        "large": false, "mfa_level": 0, "nsfw_level": 0, "preferred_locale": "en-US",
        "premium_progress_bar_enabled": false, "premium_tier": 0, "public_updates_channel_id": null,
        "rules_channel_id": null, "system_channel_flags": 0, "system_channel_id": null,
        "vanity_url_code": null, "verification_level": 0, "member_count": members.len(),
        "joined_at": "2021-01-01T00:00:00.000000+00:00", "unavailable": false,
        "roles": [role(guild_id, "@everyone", base), role(MODS + guild_id, "mods", Permissions::KICK_MEMBERS),
            role(MUTED + guild_id, "muted", Permissions::empty())],
        "channels": channels,
        "threads": threads,
        "members": members,
        "presences": [{"user": {"id": ALICE.to_string()}, "guild_id": guild_id.to_string(),
            "status": "online", "client_status": {"desktop": "online"}, "activities": []}],
        "voice_states": [{"guild_id": guild_id.to_string(), "user_id": ALICE.to_string(),
            "channel_id": VOICE.to_string(), "session_id": "s", "deaf": false, "mute": false,
            "self_deaf": false, "self_mute": true, "self_stream": false, "self_video": false,
            "suppress": false, "request_to_speak_timestamp": null}],
        "emojis": [{"id": "50", "name": "smile", "animated": false, "available": true, "managed": false,
            "require_colons": true, "roles": []}],
        "stickers": [], "stage_instances": [], "guild_scheduled_events": []
    })
}

/// Guild `G`: a text channel where `@everyone` cannot send but mods can, a voice channel, a thread
/// of the text channel; the owner, Alice (a moderator) and Bob.
fn guild_g() -> Value {
    guild(
        G,
        vec![
            channel(
                TEXT,
                G,
                0,
                "general",
                vec![
                    overwrite(G, Permissions::empty(), Permissions::SEND_MESSAGES),
                    overwrite(MODS + G, Permissions::SEND_MESSAGES, Permissions::empty()),
                ],
            ),
            channel(VOICE, G, 2, "voice", vec![]),
        ],
        vec![
            json!({"id": THREAD.to_string(), "guild_id": G.to_string(), "type": 11, "name": "t",
            "parent_id": TEXT.to_string(), "owner_id": ALICE.to_string()}),
        ],
        vec![
            member(OWNER, "owner", &[]),
            member(ALICE, "alice", &[MODS + G]),
            member(BOB, "bob", &[MUTED + G]),
        ],
    )
}

/// Guild `G2` (another shard): Alice is a member there too.
fn guild_g2() -> Value {
    guild(
        G2,
        vec![channel(OTHER, G2, 0, "other", vec![])],
        vec![],
        vec![member(OWNER, "owner", &[]), member(ALICE, "alice", &[])],
    )
}

fn config() -> CacheConfig {
    CacheConfig {
        resources: ResourceType::ALL,
        message_cache_size: 2,
        request_members_on_start: false,
    }
}

async fn writer(redis: &RedisCache) -> RedisCacheWriter {
    redis.writer(config()).await.expect("a writer")
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// Everything a handler could ask of guild `guild_id`, through the synchronous trait queries.
fn view(cache: &dyn CacheBackend, guild_id: u64) -> Value {
    let g = id(guild_id);
    let channels = sorted(cache.guild_channels(g));
    let roles = sorted(cache.guild_roles(g));
    let members = sorted(cache.guild_members(g));
    let mut member_count = 0;
    cache.for_each_member(g, &mut |_| member_count += 1);
    json!({
        "guild": cache.guild(g),
        "unavailable": cache.is_unavailable(g),
        "channels": channels.iter().map(|c| cache.channel(*c)).collect::<Vec<_>>(),
        "roles": roles.iter().map(|r| cache.role(*r)).collect::<Vec<_>>(),
        "members": members.iter().map(|u| cache.member_with_user(g, *u)).collect::<Vec<_>>(),
        "for_each_member": member_count,
        "presences": members.iter().map(|u| cache.presence(g, *u)).collect::<Vec<_>>(),
        "voice_states": cache.guild_voice_states(g),
        "emojis": cache.guild_emojis(g),
        "guild_permissions": members.iter()
            .map(|u| cache.guild_permissions(g, *u).map(|p| p.bits())).collect::<Vec<_>>(),
        "channel_permissions": channels.iter()
            .flat_map(|c| members.iter().map(move |u| (*c, *u)))
            .map(|(c, u)| cache.channel_permissions(c, u).map(|p| p.bits())).collect::<Vec<_>>(),
    })
}

/// The reader sees exactly the writer's view (after a flush).
async fn assert_same(writer: &RedisCacheWriter, reader: &RedisCacheReader, guilds: &[u64]) {
    writer.flush().await.expect("flushed");
    assert_eq!(sorted(reader.guild_ids()), sorted(writer.guild_ids()));
    assert_eq!(
        sorted(reader.unavailable_guilds()),
        sorted(writer.unavailable_guilds())
    );
    for user in [OWNER, ALICE, BOB] {
        assert_eq!(reader.user(id(user)), writer.user(id(user)), "user {user}");
        let mut of_reader = Vec::new();
        reader.for_each_membership(id(user), &mut |g, m| of_reader.push((g, m.clone())));
        let mut of_writer = Vec::new();
        writer.for_each_membership(id(user), &mut |g, m| of_writer.push((g, m.clone())));
        of_reader.sort_by_key(|(g, _)| *g);
        of_writer.sort_by_key(|(g, _)| *g);
        assert_eq!(of_reader, of_writer, "memberships of {user}");
    }
    for &g in guilds {
        assert_eq!(view(reader, g), view(writer, g), "guild {g}");
    }
}

/// Events in a writer; after each step a reader on its own connections sees exactly the writer's
/// view, deletions included; on a multi-thread runtime, where the synchronous queries go through
/// `block_in_place`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_sees_what_the_writer_applied() {
    let Some(server) = RedisServer::start_or_skip("a_reader_sees_what_the_writer_applied") else {
        return;
    };
    let redis = RedisCache::new(&server.url())
        .expect("url")
        .with_prefix("t1");
    let writer = writer(&redis).await;
    let reader = redis.reader().await.expect("a reader");

    apply(&writer, "GUILD_CREATE", guild_g());
    apply(&writer, "GUILD_CREATE", guild_g2());
    assert_same(&writer, &reader, &[G, G2]).await;
    let guild = reader.guild(id(G)).expect("guild G in Redis");
    assert_eq!(
        (&*guild.name, guild.member_count),
        (&*format!("guild {G}"), Some(3))
    );
    assert_eq!(
        sorted(reader.guild_channels(id(G))),
        [id(TEXT), id(VOICE), id(THREAD)]
    );
    let (alice, alice_user) = reader
        .member_with_user(id(G), id(ALICE))
        .expect("Alice in Redis");
    assert_eq!(
        (&*alice.roles, &*alice_user.name),
        (&[id(MODS + G)][..], "alice")
    );
    assert_eq!(
        reader.channel_permissions(id(TEXT), id(ALICE)),
        writer.channel_permissions(id(TEXT), id(ALICE)),
    );
    assert!(
        reader
            .channel_permissions(id(TEXT), id(ALICE))
            .expect("Alice's permissions")
            .contains(Permissions::SEND_MESSAGES)
    );
    assert!(
        !reader
            .channel_permissions(id(TEXT), id(BOB))
            .expect("Bob's permissions")
            .contains(Permissions::SEND_MESSAGES)
    );
    // The async queries, from a spawned task (their futures are `Send`).
    let spawned = reader.clone();
    let async_view = tokio::spawn(async move {
        (
            spawned.guild_async(id(G)).await,
            spawned.member_async(id(G), id(ALICE)).await,
            sorted(spawned.guild_roles_async(id(G)).await),
        )
    })
    .await
    .expect("the task");
    assert_eq!(async_view.0, writer.guild(id(G)));
    assert_eq!(async_view.1, writer.member(id(G), id(ALICE)));
    assert_eq!(async_view.2, sorted(writer.guild_roles(id(G))));

    // GUILD_MEMBER_UPDATE: the writer fills the old member; Redis gets the new one.
    let mut update = member(BOB, "bobby", &[MODS + G]);
    update["guild_id"] = json!(G.to_string());
    update["nick"] = json!("B");
    let Event::GuildMemberUpdate(update) = apply(&writer, "GUILD_MEMBER_UPDATE", update) else {
        panic!("not a member update")
    };
    let old = update.old.expect("the old member");
    assert_eq!(&*old.roles, [id(MUTED + G)]);
    assert_same(&writer, &reader, &[G, G2]).await;
    let (bob, bob_user) = reader.member_with_user(id(G), id(BOB)).expect("Bob");
    assert_eq!((bob.nick.as_deref(), &*bob_user.name), (Some("B"), "bobby"));

    // CHANNEL_DELETE: the channel and its thread go.
    let Event::ChannelDelete(delete) = apply(
        &writer,
        "CHANNEL_DELETE",
        channel(TEXT, G, 0, "general", vec![]),
    ) else {
        panic!("not a channel delete")
    };
    assert_eq!(
        delete.cached.expect("the deleted channel").name.as_deref(),
        Some("general")
    );
    assert_same(&writer, &reader, &[G, G2]).await;
    assert!(reader.channel(id(TEXT)).is_none() && reader.channel(id(THREAD)).is_none());
    assert_eq!(reader.guild_channels(id(G)), [id(VOICE)]);

    // GUILD_ROLE_DELETE.
    let delete = json!({"guild_id": G.to_string(), "role_id": (MUTED + G).to_string()});
    let Event::GuildRoleDelete(delete) = apply(&writer, "GUILD_ROLE_DELETE", delete) else {
        panic!("not a role delete")
    };
    assert_eq!(&*delete.cached.expect("the deleted role").name, "muted");
    assert_same(&writer, &reader, &[G, G2]).await;
    assert!(reader.role(id(MUTED + G)).is_none());
    assert_eq!(reader.guild_roles(id(G)).len(), 2);

    // A presence changes; Alice leaves voice.
    apply(
        &writer,
        "PRESENCE_UPDATE",
        json!({"user": {"id": ALICE.to_string()}, "guild_id": G.to_string(),
        "status": "idle", "client_status": {"desktop": "idle"}, "activities": []}),
    );
    apply(
        &writer,
        "VOICE_STATE_UPDATE",
        json!({"guild_id": G.to_string(), "user_id": ALICE.to_string(),
        "channel_id": null, "session_id": "s", "deaf": false, "mute": false, "self_deaf": false,
        "self_mute": false, "self_stream": false, "self_video": false, "suppress": false,
        "request_to_speak_timestamp": null}),
    );
    assert_same(&writer, &reader, &[G, G2]).await;
    let presence = reader.presence(id(G), id(ALICE)).expect("Alice's presence");
    assert_eq!(
        serde_json::to_value(presence.status).expect("JSON"),
        json!("idle")
    );
    assert!(
        reader.voice_state(id(G), id(ALICE)).is_none()
            && reader.guild_voice_states(id(G)).is_empty()
    );

    // Messages: the channel keeps the last two.
    for n in 1..=3 {
        apply(
            &writer,
            "MESSAGE_CREATE",
            json!({"id": (500 + n).to_string(), "channel_id": VOICE.to_string(),
            "guild_id": G.to_string(), "author": user(ALICE, "alice"), "content": format!("m{n}"),
            "timestamp": "2021-01-01T00:00:00.000000+00:00", "edited_timestamp": null, "tts": false,
            "mention_everyone": false, "mentions": [], "mention_roles": [], "attachments": [],
            "embeds": [], "pinned": false, "type": 0}),
        );
    }
    writer.flush().await.expect("flushed");
    assert_eq!(
        reader.channel_messages(id(VOICE)),
        writer.channel_messages(id(VOICE))
    );
    assert_eq!(reader.channel_messages(id(VOICE)).len(), 2);
    assert!(reader.message(id(501)).is_none() && reader.message(id(503)).is_some());

    // GUILD_MEMBER_REMOVE: Bob, only in G, goes with his user.
    let remove = json!({"guild_id": G.to_string(), "user": user(BOB, "bobby")});
    let Event::GuildMemberRemove(remove) = apply(&writer, "GUILD_MEMBER_REMOVE", remove) else {
        panic!("not a member remove")
    };
    assert_eq!(
        remove.cached.expect("the removed member").nick.as_deref(),
        Some("B")
    );
    assert_same(&writer, &reader, &[G, G2]).await;
    assert!(reader.member(id(G), id(BOB)).is_none() && reader.user(id(BOB)).is_none());
    assert_eq!(reader.guild(id(G)).expect("G").member_count, Some(2));

    // GUILD_DELETE: everything of G goes; Alice stays, a member of G2.
    let Event::GuildDelete(delete) = apply(&writer, "GUILD_DELETE", json!({"id": G.to_string()}))
    else {
        panic!("not a guild delete")
    };
    assert!(delete.cached.is_some());
    assert_same(&writer, &reader, &[G, G2]).await;
    assert!(reader.guild(id(G)).is_none() && reader.guild_channels(id(G)).is_empty());
    assert!(reader.member(id(G), id(ALICE)).is_none() && reader.user(id(ALICE)).is_some());
    assert_eq!(reader.guild_ids(), [id(G2)]);
    assert!(reader.channel(id(VOICE)).is_none() && reader.message(id(503)).is_none());
    let client = redis::Client::open(server.url()).expect("url");
    let mut conn = client.get_connection().expect("a connection");
    let left: Vec<String> = redis::cmd("KEYS")
        .arg(format!("t1:guild:{G}*"))
        .query(&mut conn)
        .expect("KEYS");
    assert!(left.is_empty(), "keys of the deleted guild left: {left:?}");
    let messages: Vec<String> = redis::cmd("KEYS")
        .arg("t1:message:*")
        .query(&mut conn)
        .expect("KEYS");
    assert!(
        messages.is_empty(),
        "messages of the deleted guild left: {messages:?}"
    );

    // A GUILD_CREATE again replaces the guild whole.
    apply(&writer, "GUILD_CREATE", guild_g());
    assert_same(&writer, &reader, &[G, G2]).await;
    assert_eq!(reader.guild_members(id(G)).len(), 3);
}

/// A process that takes over shard 0 from another, and never saw its `GUILD_CREATE`, fills the
/// right old member after `warm`; without `warm` it could not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_loads_a_shard_for_the_process_that_takes_it_over() {
    let Some(server) = RedisServer::start_or_skip("warm_loads_a_shard") else {
        return;
    };
    let redis = RedisCache::new(&server.url())
        .expect("url")
        .with_prefix("t2");
    let first = writer(&redis).await;
    apply(&first, "GUILD_CREATE", guild_g());
    apply(&first, "GUILD_CREATE", guild_g2());
    apply(
        &first,
        "MESSAGE_CREATE",
        json!({"id": "600", "channel_id": TEXT.to_string(),
        "guild_id": G.to_string(), "author": user(ALICE, "alice"), "content": "hi",
        "timestamp": "2021-01-01T00:00:00.000000+00:00", "edited_timestamp": null, "tts": false,
        "mention_everyone": false, "mentions": [], "mention_roles": [], "attachments": [],
        "embeds": [], "pinned": false, "type": 0}),
    );
    first.flush().await.expect("flushed");

    let update = || {
        let mut update = member(ALICE, "alice", &[]);
        update["guild_id"] = json!(G.to_string());
        update
    };
    let second = writer(&redis).await;
    assert_eq!(
        second.warm(ShardId::new(0, 2)).await.expect("warmed"),
        1,
        "only G is of shard 0"
    );
    assert!(second.guild(id(G2)).is_none());
    assert_eq!(view(&second, G), view(&first, G));
    assert_eq!(second.message(id(600)), first.message(id(600)));
    let Event::GuildMemberUpdate(event) = apply(&second, "GUILD_MEMBER_UPDATE", update()) else {
        panic!("not a member update")
    };
    assert_eq!(
        &*event.old.expect("the old member, from Redis").roles,
        [id(MODS + G)]
    );
    second.flush().await.expect("flushed");
    let reader = redis.reader().await.expect("a reader");
    assert!(
        reader
            .member_async(id(G), id(ALICE))
            .await
            .expect("Alice")
            .roles
            .is_empty()
    );
    assert_eq!(view(&reader, G), view(&second, G));

    // Without warm, a process that took the shard over would have no old value.
    let cold = writer(&redis).await;
    let Event::GuildMemberUpdate(event) = apply(&cold, "GUILD_MEMBER_UPDATE", update()) else {
        panic!("not a member update")
    };
    assert!(event.old.is_none());
}

/// The synchronous queries also work outside tokio and on a current-thread runtime (where they
/// simply block).
#[test]
fn sync_queries_work_outside_tokio_and_on_a_current_thread_runtime() {
    let Some(server) = RedisServer::start_or_skip("sync_queries") else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let redis = RedisCache::new(&server.url())
        .expect("url")
        .with_prefix("t3");
    let (writer, reader) = runtime.block_on(async {
        let writer = writer(&redis).await;
        apply(&writer, "GUILD_CREATE", guild_g());
        writer.flush().await.expect("flushed");
        (writer, redis.reader().await.expect("a reader"))
    });
    assert_eq!(view(&reader, G), view(&writer, G));
    runtime.block_on(async {
        assert_eq!(view(&reader, G), view(&writer, G));
        assert_eq!(reader.guild_async(id(G)).await, writer.guild(id(G)));
    });
    // Redis gone: nothing cached, no panic.
    drop(server);
    assert!(reader.guild(id(G)).is_none());
    assert!(runtime.block_on(reader.guild_async(id(G))).is_none());
}

/// `READY` of a new session for shard 0 of 2: the reader sees the bot's user and the listed guilds
/// unavailable; a guild of shard 0 that Redis still held from an earlier session and `READY` does
/// not list is purged (even though this process never had it); shard 1's guild stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_purges_the_shards_guilds_it_does_not_list() {
    let Some(server) = RedisServer::start_or_skip("ready_purges") else {
        return;
    };
    let redis = RedisCache::new(&server.url())
        .expect("url")
        .with_prefix("t4");
    let earlier = writer(&redis).await;
    apply(&earlier, "GUILD_CREATE", guild_g());
    apply(&earlier, "GUILD_CREATE", guild_g2());
    earlier.flush().await.expect("flushed");
    drop(earlier);

    let writer = writer(&redis).await;
    let listed = 1002u64 << 22; // shard 0 of 2
    let ready = json!({"v": 10, "user": {"id": "9", "username": "bot", "discriminator": "0",
            "avatar": null, "bot": true, "mfa_enabled": false},
        "guilds": [{"id": listed.to_string(), "unavailable": true}],
        "session_id": "x", "resume_gateway_url": "wss://x", "shard": [0, 2],
        "application": {"id": "9", "flags": 0}});
    apply(&writer, "READY", ready);
    writer.flush().await.expect("flushed");
    let reader = redis.reader().await.expect("a reader");
    assert_eq!(
        reader.current_user().map(|u| u.name),
        Some("bot".to_owned())
    );
    assert_eq!(reader.unavailable_guilds(), [id(listed)]);
    assert!(reader.is_unavailable(id(listed)));
    assert!(reader.guild(id(G)).is_none() && reader.channel(id(TEXT)).is_none());
    assert!(reader.member(id(G), id(BOB)).is_none() && reader.user(id(BOB)).is_none());
    assert_eq!(reader.guild_ids(), [id(G2)]);
    assert_eq!(reader.guild_members(id(G2)).len(), 2);
    assert!(
        reader.user(id(ALICE)).is_some(),
        "Alice is still a member of G2"
    );
}
