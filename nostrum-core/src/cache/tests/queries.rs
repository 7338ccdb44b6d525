//! Queries, shared users, permissions through the cache, configuration and `NoCache`.

use serde_json::json;
use twilight_model::guild::Permissions;
use twilight_model::id::Id;

use super::*;
use twilight_model::id::marker::UserMarker;

#[test]
fn a_user_in_two_guilds_is_stored_once() {
    let cache = all();
    apply(&cache, "GUILD_CREATE", guild(G));
    apply(&cache, "GUILD_CREATE", guild(G + 1));
    let stats = cache.stats();
    assert_eq!((stats.guilds, stats.members, stats.users), (2, 6, 3));
    let guilds = cache.fold_by_user(id(ALICE), Vec::new(), |mut acc, guild_id, member| {
        assert_eq!(member.guild_id, guild_id);
        acc.push(guild_id);
        acc
    });
    assert_eq!(guilds.len(), 2);
    // A rename seen in one guild is seen in both.
    let mut update = member(ALICE, "alicia", &[]);
    update["guild_id"] = json!(G.to_string());
    apply(&cache, "GUILD_MEMBER_UPDATE", update);
    assert_eq!(
        &*cache.member_with_user(id(G + 1), id(ALICE)).unwrap().1.name,
        "alicia"
    );
    // The user stays while one member is left.
    let remove = json!({"guild_id": G.to_string(), "user": user(ALICE, "alicia")});
    apply(&cache, "GUILD_MEMBER_REMOVE", remove);
    assert!(cache.user(id(ALICE)).is_some());
    apply(&cache, "GUILD_DELETE", json!({"id": (G + 1).to_string()}));
    assert!(cache.user(id(ALICE)).is_none());
    assert_eq!(
        cache.stats().users,
        2,
        "the owner and Bob, still members of G"
    );
}

#[test]
fn permissions_through_the_cache() {
    let cache = all();
    apply(&cache, "GUILD_CREATE", guild(G));
    let base = Permissions::VIEW_CHANNEL | Permissions::SEND_MESSAGES;
    assert_eq!(cache.guild_permissions(id(G), id(BOB)), Some(base));
    assert_eq!(
        cache.guild_permissions(id(G), id(ALICE)),
        Some(base | Permissions::KICK_MEMBERS)
    );
    assert_eq!(
        cache.guild_permissions(id(G), id(OWNER)),
        Some(Permissions::all())
    );
    // #general: @everyone cannot send, mods can.
    assert_eq!(
        cache.channel_permissions(id(TEXT), id(BOB)),
        Some(Permissions::VIEW_CHANNEL)
    );
    assert_eq!(
        cache.channel_permissions(id(TEXT), id(ALICE)),
        Some(base | Permissions::KICK_MEMBERS)
    );
    // The thread takes its parent's overwrites.
    assert_eq!(
        cache.channel_permissions(id(THREAD), id(BOB)),
        Some(Permissions::VIEW_CHANNEL)
    );
    // Timed out until 2999: VIEW_CHANNEL only (READ_MESSAGE_HISTORY is not in the base).
    let mut update = member(BOB, "bob", &[]);
    update["guild_id"] = json!(G.to_string());
    update["communication_disabled_until"] = json!("2999-01-01T00:00:00.000000+00:00");
    apply(&cache, "GUILD_MEMBER_UPDATE", update);
    assert_eq!(
        cache.guild_permissions(id(G), id(BOB)),
        Some(Permissions::VIEW_CHANNEL)
    );
    assert_eq!(
        cache.channel_permissions(id(VOICE), id(BOB)),
        Some(Permissions::VIEW_CHANNEL)
    );
    assert_eq!(
        cache.channel_permissions(id(TEXT), id(4)),
        None,
        "unknown member"
    );
    assert_eq!(
        cache.channel_permissions(id(999), id(BOB)),
        None,
        "unknown channel"
    );
}

#[test]
fn the_bots_own_member_is_kept_without_the_member_cache() {
    let cache = Cache::in_memory(CacheConfig::default());
    assert!(!cache.intents().contains(Intents::GUILD_MEMBERS));
    assert!(!cache.intents().contains(Intents::GUILD_PRESENCES));
    let ready = json!({"v": 10, "user": {"id": BOB.to_string(), "username": "bob", "discriminator": "0",
            "avatar": null, "bot": true, "mfa_enabled": false},
        "guilds": [], "session_id": "x", "resume_gateway_url": "wss://x",
        "application": {"id": "9", "flags": 0}});
    apply(&cache, "READY", ready);
    apply(&cache, "GUILD_CREATE", guild(G));
    assert_eq!(cache.guild_members(id(G)), [id(BOB)]);
    assert_eq!(cache.stats().presences, 0);
    assert_eq!(
        cache.channel_permissions(id(TEXT), id(BOB)),
        Some(Permissions::VIEW_CHANNEL)
    );
}

#[test]
fn configuration_sets_events_and_intents() {
    let none = Cache::in_memory(CacheConfig::new(ResourceType::EMPTY));
    assert!(none.wants().is_empty() && none.intents().is_empty());
    apply(&none, "GUILD_CREATE", guild(G));
    assert_eq!(none.stats(), CacheStats::default());
    let messages = CacheConfig {
        resources: ResourceType::MESSAGE,
        message_cache_size: 10,
        ..CacheConfig::default()
    };
    let wants = Cache::in_memory(messages).wants();
    assert!(
        wants.contains(EventKind::MessageDelete) && !wants.contains(EventKind::GuildRoleCreate)
    );
    assert_eq!(
        (ResourceType::EMOJI | ResourceType::VOICE_STATE).intents(),
        Intents::GUILDS | Intents::GUILD_EMOJIS_AND_STICKERS | Intents::GUILD_VOICE_STATES
    );
    assert_eq!(ResourceType::USER_CURRENT.intents(), Intents::empty());
    assert_eq!(
        format!("{:?}", ResourceType::ROLE | ResourceType::USER),
        "{\"ROLE\", \"USER\"}"
    );
}

#[test]
fn no_cache_leaves_events_untouched() {
    let cache = Cache::none();
    assert!(cache.wants().is_empty());
    apply(&cache, "GUILD_CREATE", guild(G));
    let mut update = member(ALICE, "alice", &[]);
    update["guild_id"] = json!(G.to_string());
    let Event::GuildMemberUpdate(update) = apply(&cache, "GUILD_MEMBER_UPDATE", update) else {
        panic!()
    };
    assert!(update.old.is_none());
    assert!(cache.guild(id(G)).is_none() && cache.member(id(G), id(ALICE)).is_none());
    assert!(cache.guild_members(id(G)).is_empty() && cache.current_user().is_none());
    assert_eq!(cache.fold_members(id(G), 7, |n, _| n + 1), 7);
    assert_eq!(cache.stats(), CacheStats::default());
    assert_eq!(cache.channel_permissions(id(TEXT), id(ALICE)), None);
}

#[test]
fn sizes_of_the_cached_models() {
    use std::mem::size_of;
    // Per member: the map slot (key + value + a control byte) and the roles' heap slice.
    let member_slot = size_of::<(Id<UserMarker>, CachedMember)>() + 1;
    let user_slot = size_of::<(Id<UserMarker>, CachedUser, u32)>() + 1;
    eprintln!(
        "member slot {member_slot} B, user slot {user_slot} B, guild {} B",
        size_of::<CachedGuild>()
    );
    assert!(member_slot <= 160, "a member grew to {member_slot} bytes");
    assert!(user_slot <= 96, "a user grew to {user_slot} bytes");
}
