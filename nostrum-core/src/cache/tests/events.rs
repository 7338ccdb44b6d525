//! Each event kind's effect on the cache and the old value or deleted object it yields.

use serde_json::json;
use twilight_model::guild::Permissions;
use twilight_model::id::Id;

use super::*;
use twilight_model::id::marker::ChannelMarker;

#[test]
fn guild_create_fills_every_resource() {
    let cache = all();
    apply(&cache, "GUILD_CREATE", guild(G));
    let stats = cache.stats();
    assert_eq!(
        (
            stats.guilds,
            stats.channels,
            stats.roles,
            stats.members,
            stats.users
        ),
        (1, 3, 3, 3, 3)
    );
    assert_eq!(
        (
            stats.presences,
            stats.voice_states,
            stats.emojis,
            stats.stickers
        ),
        (1, 1, 1, 1)
    );
    let cached = cache.guild(id(G)).unwrap();
    assert_eq!(
        (&*cached.name, cached.owner_id, cached.member_count),
        ("guild", id(OWNER), Some(3))
    );
    assert_eq!(&*cached.features, [Box::from("COMMUNITY")]);
    // Channels from GUILD_CREATE carry no guild_id; the cache fills it.
    assert_eq!(cache.channel(id(TEXT)).unwrap().guild_id, Some(id(G)));
    assert_eq!(cache.channel(id(THREAD)).unwrap().parent_id, Some(id(TEXT)));
    let mut channels = cache.guild_channels(id(G));
    channels.sort();
    assert_eq!(channels, [id(TEXT), id(VOICE), id(THREAD)]);
    assert_eq!(cache.guild_roles(id(G)).len(), 3);
    assert_eq!(cache.guild_members(id(G)).len(), 3);
    let (alice, user) = cache.member_with_user(id(G), id(ALICE)).unwrap();
    assert_eq!((&*alice.roles, &*user.name), (&[id(MODS)][..], "alice"));
    assert_eq!(cache.presence(id(G), id(ALICE)).unwrap().guild_id, id(G));
    assert_eq!(
        cache.voice_state(id(G), id(ALICE)).unwrap().channel_id,
        Some(id(VOICE))
    );
    assert_eq!(&*cache.guild_emojis(id(G))[0].name, "smile");
    assert_eq!(&*cache.guild_stickers(id(G))[0].name, "wave");
}

#[test]
fn discord4j_guild_create() {
    let Some(d) = capture("GuildCreate") else {
        return;
    };
    let cache = all();
    apply(&cache, "GUILD_CREATE", d);
    let stats = cache.stats();
    assert_eq!((stats.guilds, stats.channels, stats.roles), (1, 5, 4));
    assert_eq!((stats.members, stats.users, stats.presences), (4, 4, 2));
    let guild_id = id(135_197_118_292_819_968);
    assert_eq!(&*cache.guild(guild_id).unwrap().name, "Test guild");
    // The @everyone overwrite of #test1 denies SEND_MESSAGES (2048); the "bot" role is an administrator.
    let test1 = guild_id.cast();
    let perms = cache
        .channel_permissions(test1, id(344_487_830_824_943_618))
        .unwrap();
    assert!(
        perms.contains(Permissions::VIEW_CHANNEL) && !perms.contains(Permissions::SEND_MESSAGES)
    );
    let admin = cache.channel_permissions(test1, id(136_688_960_289_112_064));
    assert_eq!(admin, Some(Permissions::all()));
}

#[test]
fn guild_update_yields_the_old_guild() {
    let cache = all();
    apply(&cache, "GUILD_CREATE", guild(G));
    let mut update = guild(G);
    update["name"] = json!("renamed");
    update.as_object_mut().unwrap().remove("member_count");
    let Event::GuildUpdate(update) = apply(&cache, "GUILD_UPDATE", update) else {
        panic!()
    };
    assert_eq!(&*update.old.unwrap().name, "guild");
    let cached = cache.guild(id(G)).unwrap();
    assert_eq!(
        (&*cached.name, cached.member_count),
        ("renamed", Some(3)),
        "the count stays"
    );
    if let Some(d) = capture("GuildUpdate") {
        let Event::GuildUpdate(update) = apply(&cache, "GUILD_UPDATE", d) else {
            panic!()
        };
        assert!(update.old.is_none(), "a guild never seen has no old value");
        assert_eq!(
            &*cache.guild(id(123_456_789_012_345_678)).unwrap().name,
            "TEST"
        );
    }
}

#[test]
fn guild_delete_unavailable_or_removed() {
    let cache = all();
    apply(&cache, "GUILD_CREATE", guild(G));
    let outage = json!({"id": G.to_string(), "unavailable": true});
    let Event::GuildDelete(delete) = apply(&cache, "GUILD_DELETE", outage) else {
        panic!()
    };
    assert_eq!(&*delete.cached.unwrap().name, "guild");
    assert!(cache.is_unavailable(id(G)));
    let stats = cache.stats();
    assert_eq!(
        (
            stats.guilds,
            stats.unavailable_guilds,
            stats.members,
            stats.users
        ),
        (0, 1, 0, 0)
    );
    assert_eq!((stats.channels, stats.roles), (0, 0));
    assert!(cache.channel(id(TEXT)).is_none() && cache.role(id(MODS)).is_none());
    // It comes back.
    apply(&cache, "GUILD_CREATE", guild(G));
    assert!(!cache.is_unavailable(id(G)));
    assert_eq!(cache.stats().members, 3);
    // The bot leaves: removed, not unavailable.
    let Event::GuildDelete(delete) = apply(&cache, "GUILD_DELETE", json!({"id": G.to_string()}))
    else {
        panic!()
    };
    assert!(delete.cached.is_some());
    assert_eq!(cache.stats(), CacheStats::default());
    // Discord4J's captures: an unavailable GUILD_CREATE and a GUILD_DELETE.
    if let Some(d) = capture("GuildCreate.Unavailable") {
        apply(&cache, "GUILD_CREATE", d);
        assert_eq!(cache.unavailable_guilds(), [id(772_862_920_081_801_217)]);
    }
    if let Some(d) = capture("GuildDelete") {
        let Event::GuildDelete(delete) = apply(&cache, "GUILD_DELETE", d) else {
            panic!()
        };
        assert!(delete.cached.is_none());
    }
}

#[test]
fn ready_sets_the_current_user_and_unavailable_guilds() {
    let cache = all();
    let ready = json!({"v": 10, "user": {"id": "9", "username": "bot", "discriminator": "0",
            "avatar": null, "bot": true, "mfa_enabled": false},
        "guilds": [{"id": G.to_string(), "unavailable": true}, {"id": "2000", "unavailable": true}],
        "session_id": "x", "resume_gateway_url": "wss://x", "shard": [0, 1],
        "application": {"id": "9", "flags": 0}});
    apply(&cache, "READY", ready);
    assert_eq!(cache.current_user().unwrap().name, "bot");
    let mut unavailable = cache.unavailable_guilds();
    unavailable.sort();
    assert_eq!(unavailable, [id(G), id(2000)]);
    let update = json!({"id": "9", "username": "renamed", "discriminator": "0", "avatar": null,
        "bot": true, "mfa_enabled": false});
    let Event::UserUpdate(update) = apply(&cache, "USER_UPDATE", update) else {
        panic!()
    };
    assert_eq!(update.old.unwrap().name, "bot");
    assert_eq!(cache.current_user().unwrap().name, "renamed");
    if let Some(d) = capture("Ready") {
        apply(&cache, "READY", d);
        assert_eq!(
            cache.current_user().unwrap().id,
            id(344_487_830_824_943_618)
        );
        assert_eq!(
            cache.stats().unavailable_guilds,
            6,
            "the new session's guilds replace the old"
        );
    }
}

#[test]
fn channels_create_update_delete() {
    let cache = all();
    let (Some(create), Some(update), Some(delete)) = (
        capture("ChannelCreate"),
        capture("ChannelUpdate"),
        capture("ChannelDelete"),
    ) else {
        return;
    };
    let channel_id = id(680_839_020_124_700_740);
    apply(&cache, "CHANNEL_CREATE", create);
    assert_eq!(
        cache.channel(channel_id).unwrap().name.as_deref(),
        Some("test-1")
    );
    let Event::ChannelUpdate(update) = apply(&cache, "CHANNEL_UPDATE", update) else {
        panic!()
    };
    assert_eq!(update.old.unwrap().name.as_deref(), Some("test-1"));
    assert_eq!(
        cache.channel(channel_id).unwrap().topic.as_deref(),
        Some("topic-1")
    );
    let Event::ChannelDelete(delete) = apply(&cache, "CHANNEL_DELETE", delete) else {
        panic!()
    };
    assert_eq!(delete.cached.unwrap().name.as_deref(), Some("test-2"));
    assert!(cache.channel(channel_id).is_none());
    assert!(cache.guild_channels(id(123_456_789_012_345_678)).is_empty());
}

#[test]
fn threads_create_update_delete_sync() {
    let cache = all();
    apply(&cache, "GUILD_CREATE", guild(G));
    apply(&cache, "THREAD_CREATE", thread(200, G, TEXT));
    let mut renamed = thread(200, G, TEXT);
    renamed["name"] = json!("renamed");
    let Event::ThreadUpdate(update) = apply(&cache, "THREAD_UPDATE", renamed) else {
        panic!()
    };
    assert_eq!(update.old.unwrap().name.as_deref(), Some("t"));
    let delete =
        json!({"id": "200", "guild_id": G.to_string(), "parent_id": TEXT.to_string(), "type": 11});
    let Event::ThreadDelete(delete) = apply(&cache, "THREAD_DELETE", delete) else {
        panic!()
    };
    assert_eq!(delete.cached.unwrap().name.as_deref(), Some("renamed"));
    // A sync for TEXT replaces its threads: THREAD goes, 201 comes.
    let sync = json!({"guild_id": G.to_string(), "channel_ids": [TEXT.to_string()],
        "threads": [thread(201, G, TEXT)], "members": []});
    apply(&cache, "THREAD_LIST_SYNC", sync);
    assert!(cache.channel(id(THREAD)).is_none());
    assert_eq!(cache.channel(id(201)).unwrap().guild_id, Some(id(G)));
    // Deleting the parent takes its threads.
    let parent = channel(TEXT, G, 0, "general", vec![]);
    apply(&cache, "CHANNEL_DELETE", parent);
    assert!(cache.channel(id(201)).is_none());
    assert_eq!(cache.guild_channels(id(G)), [id(VOICE)]);
}

#[test]
fn members_add_update_remove() {
    let cache = all();
    apply(&cache, "GUILD_CREATE", guild(G));
    let mut add = member(4, "carol", &[]);
    add["guild_id"] = json!(G.to_string());
    apply(&cache, "GUILD_MEMBER_ADD", add);
    assert_eq!(cache.guild(id(G)).unwrap().member_count, Some(4));
    let mut update = member(4, "carol2", &[MODS]);
    update["guild_id"] = json!(G.to_string());
    update["nick"] = json!("C");
    let Event::GuildMemberUpdate(update) = apply(&cache, "GUILD_MEMBER_UPDATE", update) else {
        panic!()
    };
    assert!(update.old.unwrap().roles.is_empty());
    let (carol, carol_user) = cache.member_with_user(id(G), id(4)).unwrap();
    assert_eq!(
        (carol.nick.as_deref(), &*carol_user.name),
        (Some("C"), "carol2")
    );
    let remove = json!({"guild_id": G.to_string(), "user": user(4, "carol2")});
    let Event::GuildMemberRemove(remove) = apply(&cache, "GUILD_MEMBER_REMOVE", remove) else {
        panic!()
    };
    assert_eq!(&*remove.cached.unwrap().roles, [id(MODS)]);
    assert!(cache.member(id(G), id(4)).is_none() && cache.user(id(4)).is_none());
    assert_eq!(cache.guild(id(G)).unwrap().member_count, Some(3));
    // Discord4J's captures, in a guild never created.
    let (Some(add), Some(update), Some(remove)) = (
        capture("GuildMemberAdd"),
        capture("GuildMemberUpdate"),
        capture("GuildMemberRemove"),
    ) else {
        return;
    };
    let (guild_id, user_id) = (id(123_456_789_012_345_678), id(123_456_789_012_345_678));
    apply(&cache, "GUILD_MEMBER_ADD", add);
    let Event::GuildMemberUpdate(update) = apply(&cache, "GUILD_MEMBER_UPDATE", update) else {
        panic!()
    };
    assert_eq!(update.old.unwrap().deaf, Some(false));
    assert_eq!(
        cache.member(guild_id, user_id).unwrap().deaf,
        Some(false),
        "kept when absent"
    );
    assert_eq!(&*cache.user(user_id).unwrap().name, "aaaa");
    let Event::GuildMemberRemove(remove) = apply(&cache, "GUILD_MEMBER_REMOVE", remove) else {
        panic!()
    };
    assert!(remove.cached.is_some() && cache.user(user_id).is_none());
}

#[test]
fn a_chunk_of_a_thousand_members() {
    let Some(mut d) = capture("GuildMembersChunk") else {
        return;
    };
    let cache = all();
    // The capture is anonymised: its 1000 members share one user, stored once.
    apply(&cache, "GUILD_MEMBERS_CHUNK", d.clone());
    assert_eq!((cache.stats().members, cache.stats().users), (1, 1));
    // Made distinct, they are 1000 members and 1000 users, and nothing else.
    for (n, member) in d["members"].as_array_mut().unwrap().iter_mut().enumerate() {
        member["user"]["id"] = json!((5_000_000 + n).to_string());
    }
    apply(&cache, "GUILD_MEMBERS_CHUNK", d);
    let stats = cache.stats();
    assert_eq!((stats.members, stats.users, stats.guilds), (1001, 1001, 0));
    let guild_id = id(123_456_789_012_345_678);
    assert_eq!(cache.fold_members(guild_id, 0, |n, _| n + 1), 1001);
    if let Some(d) = capture("GuildMembersChunk.Presences") {
        apply(&cache, "GUILD_MEMBERS_CHUNK", d);
        let presence = cache.presence(id(166_630_000_000_000_000), id(712_800_400_000_000_000));
        assert_eq!(presence.unwrap().activities.len(), 1);
    }
}

#[test]
fn roles_create_update_delete() {
    let cache = all();
    let create = json!({"guild_id": G.to_string(), "role": role(20, "new", Permissions::empty())});
    apply(&cache, "GUILD_ROLE_CREATE", create);
    let update =
        json!({"guild_id": G.to_string(), "role": role(20, "renamed", Permissions::empty())});
    let Event::GuildRoleUpdate(update) = apply(&cache, "GUILD_ROLE_UPDATE", update) else {
        panic!()
    };
    assert_eq!(&*update.old.unwrap().name, "new");
    assert_eq!(&*cache.role(id(20)).unwrap().name, "renamed");
    let delete = json!({"guild_id": G.to_string(), "role_id": "20"});
    let Event::GuildRoleDelete(delete) = apply(&cache, "GUILD_ROLE_DELETE", delete) else {
        panic!()
    };
    assert_eq!(&*delete.cached.unwrap().name, "renamed");
    assert!(cache.role(id(20)).is_none() && cache.guild_roles(id(G)).is_empty());
    for name in ["GuildRoleCreate", "GuildRoleUpdate", "GuildRoleDelete"] {
        let Some(d) = capture(name) else { return };
        let kind = match name {
            "GuildRoleCreate" => "GUILD_ROLE_CREATE",
            "GuildRoleUpdate" => "GUILD_ROLE_UPDATE",
            _ => "GUILD_ROLE_DELETE",
        };
        apply(&cache, kind, d);
    }
    assert_eq!(
        &*cache.role(id(680_867_167_196_938_247)).unwrap().name,
        "new role"
    );
    assert_eq!(
        cache.role(id(186_591_212_076_138_496)).unwrap().color,
        6_323_595
    );
}

#[test]
fn messages_when_the_message_cache_is_on() {
    let cache = all();
    apply(&cache, "GUILD_CREATE", guild(G));
    let channel_id: Id<ChannelMarker> = id(680_839_020_124_700_740);
    apply(
        &cache,
        "MESSAGE_CREATE",
        message(680_840_044_138_987_656, channel_id.get(), "hi"),
    );
    if let (Some(update), Some(delete)) =
        (capture("MessageUpdate.NoEmbeds"), capture("MessageDelete"))
    {
        let Event::MessageUpdate(update) = apply(&cache, "MESSAGE_UPDATE", update) else {
            panic!()
        };
        assert_eq!(&*update.old.unwrap().content, "hi");
        let Event::MessageDelete(delete) = apply(&cache, "MESSAGE_DELETE", delete) else {
            panic!()
        };
        assert_eq!(
            &*delete.cached.unwrap().content,
            "test message please ignore"
        );
    }
    // Two per channel: the oldest goes.
    for n in 1..=3 {
        apply(&cache, "MESSAGE_CREATE", message(n, TEXT, &n.to_string()));
    }
    assert!(cache.message(id(1)).is_none());
    let contents: Vec<_> = cache
        .channel_messages(id(TEXT))
        .into_iter()
        .map(|m| m.content)
        .collect();
    assert_eq!(contents, [Box::from("2"), Box::from("3")]);
    assert_eq!(
        cache.channel(id(TEXT)).unwrap().last_message_id,
        Some(id(3))
    );
    let Event::MessageUpdate(update) = apply(&cache, "MESSAGE_UPDATE", message(3, TEXT, "3!"))
    else {
        panic!()
    };
    assert_eq!(&*update.old.unwrap().content, "3");
    let bulk =
        json!({"ids": ["1", "2", "3"], "channel_id": TEXT.to_string(), "guild_id": G.to_string()});
    let Event::MessageDeleteBulk(bulk) = apply(&cache, "MESSAGE_DELETE_BULK", bulk) else {
        panic!()
    };
    let deleted: Vec<_> = bulk
        .cached
        .unwrap()
        .into_iter()
        .map(|m| m.content)
        .collect();
    assert_eq!(deleted, [Box::from("2"), Box::from("3!")]);
    assert_eq!(cache.stats().messages, 0);
}

#[test]
fn messages_when_the_message_cache_is_off() {
    let cache = Cache::in_memory(CacheConfig::new(ResourceType::ALL));
    assert!(!cache.wants().contains(EventKind::MessageCreate));
    apply(&cache, "MESSAGE_CREATE", message(1, TEXT, "hi"));
    let Event::MessageUpdate(update) = apply(&cache, "MESSAGE_UPDATE", message(1, TEXT, "ho"))
    else {
        panic!()
    };
    assert!(update.old.is_none() && cache.message(id(1)).is_none());
    let delete = json!({"id": "1", "channel_id": TEXT.to_string()});
    let Event::MessageDelete(delete) = apply(&cache, "MESSAGE_DELETE", delete) else {
        panic!()
    };
    assert!(delete.cached.is_none());
}

#[test]
fn presences_and_voice_states() {
    let cache = all();
    apply(&cache, "GUILD_CREATE", guild(G));
    let Event::PresenceUpdate(update) =
        apply(&cache, "PRESENCE_UPDATE", presence(G, ALICE, "idle"))
    else {
        panic!()
    };
    assert_eq!(
        update.old.unwrap().status,
        twilight_model::gateway::presence::Status::Online
    );
    let moved = voice_state(G, ALICE, Some(TEXT));
    let Event::VoiceStateUpdate(update) = apply(&cache, "VOICE_STATE_UPDATE", moved) else {
        panic!()
    };
    assert_eq!(update.old.unwrap().channel_id, Some(id(VOICE)));
    let left = voice_state(G, ALICE, None);
    let Event::VoiceStateUpdate(update) = apply(&cache, "VOICE_STATE_UPDATE", left) else {
        panic!()
    };
    assert_eq!(update.old.unwrap().channel_id, Some(id(TEXT)));
    assert!(
        cache.voice_state(id(G), id(ALICE)).is_none(),
        "leaving removes the state"
    );
    if let Some(d) = capture("VoiceStateUpdate") {
        apply(&cache, "VOICE_STATE_UPDATE", d);
        let guild_id = id(123_456_789_012_345_678);
        assert!(
            cache
                .voice_state(guild_id, id(123_456_789_012_345_678))
                .unwrap()
                .self_mute
        );
        assert!(
            cache
                .member(guild_id, id(123_456_789_012_345_678))
                .is_some(),
            "its member too"
        );
    }
    if let Some(d) = capture("PresenceUpdate.NoActivities") {
        apply(&cache, "PRESENCE_UPDATE", d);
        assert_eq!(cache.stats().presences, 2);
    }
}

#[test]
fn emojis_and_stickers_yield_the_old_lists() {
    let cache = all();
    apply(&cache, "GUILD_CREATE", guild(G));
    let update = json!({"guild_id": G.to_string(), "emojis": [emoji(51, "frown")]});
    let Event::GuildEmojisUpdate(update) = apply(&cache, "GUILD_EMOJIS_UPDATE", update) else {
        panic!()
    };
    assert_eq!(&*update.old.unwrap()[0].name, "smile");
    assert_eq!(&*cache.guild_emojis(id(G))[0].name, "frown");
    let update = json!({"guild_id": G.to_string(), "stickers": []});
    let Event::GuildStickersUpdate(update) = apply(&cache, "GUILD_STICKERS_UPDATE", update) else {
        panic!()
    };
    assert_eq!(&*update.old.unwrap()[0].name, "wave");
    assert!(cache.guild_stickers(id(G)).is_empty());
    if let Some(d) = capture("GuildEmojisUpdate") {
        let Event::GuildEmojisUpdate(update) = apply(&cache, "GUILD_EMOJIS_UPDATE", d) else {
            panic!()
        };
        assert!(update.old.is_none(), "a guild never seen has no old list");
        assert_eq!(cache.stats().emojis, 20);
    }
}

#[test]
fn stages_scheduled_events_and_sounds() {
    let cache = all();
    let stage = json!({"id": "70", "guild_id": G.to_string(), "channel_id": VOICE.to_string(),
        "topic": "talk", "privacy_level": 2, "guild_scheduled_event_id": null});
    apply(&cache, "STAGE_INSTANCE_CREATE", stage.clone());
    assert_eq!(cache.guild_stage_instances(id(G))[0].topic, "talk");
    apply(&cache, "STAGE_INSTANCE_DELETE", stage);
    assert!(cache.guild_stage_instances(id(G)).is_empty());
    let sound = |n: u64, name: &str| {
        json!({"name": name, "sound_id": n.to_string(), "volume": 1.0, "guild_id": G.to_string(),
            "available": true, "user": user(ALICE, "alice")})
    };
    apply(&cache, "GUILD_SOUNDBOARD_SOUND_CREATE", sound(80, "honk"));
    apply(&cache, "GUILD_SOUNDBOARD_SOUND_UPDATE", sound(80, "HONK"));
    let sounds = cache.guild_soundboard_sounds(id(G));
    assert_eq!((sounds.len(), sounds[0].name.as_str()), (1, "HONK"));
    assert!(sounds[0].user.is_none(), "users are not kept twice");
    let update =
        json!({"guild_id": G.to_string(), "soundboard_sounds": [sound(81, "a"), sound(82, "b")]});
    apply(&cache, "GUILD_SOUNDBOARD_SOUNDS_UPDATE", update);
    let delete = json!({"guild_id": G.to_string(), "sound_id": "81"});
    apply(&cache, "GUILD_SOUNDBOARD_SOUND_DELETE", delete);
    assert_eq!(cache.stats().soundboard_sounds, 1);
    let Some(mut created) = capture("GuildScheduledEventCreate") else {
        return;
    };
    created["user_count"] = json!(0);
    apply(&cache, "GUILD_SCHEDULED_EVENT_CREATE", created.clone());
    let add = json!({"guild_id": "935234113919660033", "guild_scheduled_event_id": "1120073806816489582",
        "user_id": ALICE.to_string()});
    apply(&cache, "GUILD_SCHEDULED_EVENT_USER_ADD", add);
    let events = cache.guild_scheduled_events(id(935_234_113_919_660_033));
    assert_eq!(events[0].user_count, Some(1));
    apply(&cache, "GUILD_SCHEDULED_EVENT_DELETE", created);
    assert_eq!(cache.stats().scheduled_events, 0);
}
