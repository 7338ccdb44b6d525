//! A sequence of dispatches through `Event::from_dispatch` and the in-memory `Cache`
//! (every resource, a small message cache), then queries over what it holds: no panic, and the
//! cache's own invariants (what a guild lists can be fetched).
//!
//! Input: u16-length-prefixed chunks (`nostrum_fuzz::chunks`, after a flags byte that is ignored);
//! in each chunk byte 0 picks the event name (index into `EventKind::ALL`), the rest is `d`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nostrum_core::cache::{Cache, CacheConfig, ResourceType};
use nostrum_core::{Event, EventKind};
use nostrum_fuzz::chunks;
use serde_json::value::RawValue;

fuzz_target!(|data: &[u8]| {
    let Some((_, rest)) = data.split_first() else {
        return;
    };
    let cache = Cache::in_memory(CacheConfig {
        message_cache_size: 4,
        ..CacheConfig::new(ResourceType::ALL)
    });
    for chunk in chunks(rest) {
        let Some((&pick, payload)) = chunk.split_first() else {
            continue;
        };
        let kind = EventKind::ALL[usize::from(pick) % EventKind::ALL.len()];
        let Ok(text) = std::str::from_utf8(payload) else {
            continue;
        };
        let Ok(raw) = RawValue::from_string(text.to_owned()) else {
            continue;
        };
        let mut event = Event::from_dispatch(kind.name(), &raw);
        cache.update(&mut event);
        std::hint::black_box(format!("{event:?}"));
    }
    let stats = cache.stats();
    for guild_id in cache.guild_ids() {
        std::hint::black_box(cache.guild(guild_id));
        let members = cache.guild_members(guild_id);
        for channel_id in cache.guild_channels(guild_id) {
            std::hint::black_box(cache.channel(channel_id));
            std::hint::black_box(cache.channel_messages(channel_id));
            for user_id in &members {
                std::hint::black_box(cache.channel_permissions(channel_id, *user_id));
            }
        }
        for role_id in cache.guild_roles(guild_id) {
            std::hint::black_box(cache.role(role_id));
        }
        for user_id in &members {
            std::hint::black_box(cache.member_with_user(guild_id, *user_id));
            std::hint::black_box(cache.guild_permissions(guild_id, *user_id));
            std::hint::black_box(cache.presence(guild_id, *user_id));
            std::hint::black_box(cache.voice_state(guild_id, *user_id));
            std::hint::black_box(cache.fold_by_user(*user_id, 0usize, |n, _, _| n + 1));
        }
        std::hint::black_box(cache.fold_members(guild_id, 0usize, |n, _| n + 1));
        std::hint::black_box((
            cache.guild_emojis(guild_id),
            cache.guild_stickers(guild_id),
            cache.guild_voice_states(guild_id),
            cache.guild_scheduled_events(guild_id),
            cache.guild_stage_instances(guild_id),
            cache.guild_soundboard_sounds(guild_id),
        ));
    }
    std::hint::black_box((stats, cache.current_user(), cache.unavailable_guilds()));
});
