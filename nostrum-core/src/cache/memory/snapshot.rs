//! Whole guilds out of and into the in-memory store: what a shared backend mirrors, and loads back
//! when a process takes over a shard it never saw the `GUILD_CREATE` of.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError, RwLock};

use twilight_model::channel::StageInstance;
use twilight_model::guild::scheduled_event::GuildScheduledEvent;
use twilight_model::id::Id;
use twilight_model::id::marker::GuildMarker;
use twilight_model::user::CurrentUser;

use super::{GuildEntry, InMemoryCache, UserEntry};
use crate::cache::config::ResourceType as R;
use crate::cache::model::{
    CachedChannel, CachedEmoji, CachedGuild, CachedMember, CachedMessage, CachedPresence,
    CachedRole, CachedSticker, CachedUser, CachedVoiceState,
};
use crate::event::SoundboardSound;

/// Everything the in-memory store holds of one guild, as plain values: read with
/// [`InMemoryCache::guild_snapshot`], loaded with [`InMemoryCache::load_guild`].
///
/// ```
/// use nostrum_core::cache::{CacheBackend, CacheConfig, GuildSnapshot, InMemoryCache, ResourceType};
/// use nostrum_core::model::id::Id;
///
/// let store = InMemoryCache::new(CacheConfig::new(ResourceType::ALL));
/// store.load_guild(Id::new(1), GuildSnapshot::default());
/// assert!(store.guild_snapshot(Id::new(1)).is_some());
/// assert!(store.guild(Id::new(1)).is_none(), "no guild fields were loaded");
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GuildSnapshot {
    /// The guild's own fields, when cached.
    pub guild: Option<CachedGuild>,
    /// Channels and threads.
    pub channels: Vec<CachedChannel>,
    /// Roles, `@everyone` included.
    pub roles: Vec<CachedRole>,
    /// Members, each with its user when cached.
    pub members: Vec<(CachedMember, Option<CachedUser>)>,
    /// Presences.
    pub presences: Vec<CachedPresence>,
    /// Voice states.
    pub voice_states: Vec<CachedVoiceState>,
    /// Custom emojis.
    pub emojis: Vec<CachedEmoji>,
    /// Stickers.
    pub stickers: Vec<CachedSticker>,
    /// Live stage instances.
    pub stage_instances: Vec<StageInstance>,
    /// Scheduled events.
    pub scheduled_events: Vec<GuildScheduledEvent>,
    /// Soundboard sounds.
    pub soundboard_sounds: Vec<SoundboardSound>,
    /// The cached messages of the guild's channels, oldest first within each channel.
    pub messages: Vec<CachedMessage>,
}

impl InMemoryCache {
    /// Everything cached of a guild; `None` when nothing of it is.
    pub fn guild_snapshot(&self, guild_id: Id<GuildMarker>) -> Option<GuildSnapshot> {
        let mut snapshot = self.read(guild_id, |entry| GuildSnapshot {
            guild: entry.guild.clone(),
            channels: entry.channels.values().cloned().collect(),
            roles: entry.roles.values().cloned().collect(),
            members: (entry.members.values())
                .map(|member| {
                    let user = self.users.get(&member.user_id).map(|u| u.user.clone());
                    (member.clone(), user)
                })
                .collect(),
            presences: entry.presences.values().cloned().collect(),
            voice_states: entry.voice_states.values().cloned().collect(),
            emojis: entry.emojis.clone(),
            stickers: entry.stickers.clone(),
            stage_instances: entry.stage_instances.clone(),
            scheduled_events: entry.scheduled_events.clone(),
            soundboard_sounds: entry.soundboard_sounds.clone(),
            messages: Vec::new(),
        })?;
        for channel in &snapshot.channels {
            if let Some(messages) = self.messages.get(&channel.id) {
                snapshot.messages.extend(messages.iter().cloned());
            }
        }
        Some(snapshot)
    }

    /// Loads a guild, replacing whatever was cached of it, as a `GUILD_CREATE` would (the guild is
    /// no longer unavailable). Keeps only the resources of the configuration; messages beyond the
    /// message cache size of a channel drop the oldest.
    pub fn load_guild(&self, guild_id: Id<GuildMarker>, snapshot: GuildSnapshot) {
        self.unavailable.remove(&guild_id);
        self.remove_guild(guild_id);
        let mut entry = GuildEntry {
            guild: snapshot.guild.filter(|_| self.keeps(R::GUILD)),
            ..GuildEntry::default()
        };
        if self.keeps(R::CHANNEL) {
            for channel in snapshot.channels {
                self.channel_guild.insert(channel.id, guild_id);
                entry.channels.insert(channel.id, channel);
            }
        }
        if self.keeps(R::ROLE) {
            for role in snapshot.roles {
                self.role_guild.insert(role.id, guild_id);
                entry.roles.insert(role.id, role);
            }
        }
        for (member, user) in snapshot.members {
            let user_id = member.user_id;
            if !self.keeps_member(user_id) {
                continue;
            }
            let new = entry.members.insert(user_id, member).is_none();
            if let Some(user) = user.filter(|_| self.keeps(R::USER)) {
                self.load_user(user, new);
            }
        }
        if self.keeps(R::PRESENCE) {
            for presence in snapshot.presences {
                entry.presences.insert(presence.user_id, presence);
            }
        }
        if self.keeps(R::VOICE_STATE) {
            for state in snapshot.voice_states {
                entry.voice_states.insert(state.user_id, state);
            }
        }
        if self.keeps(R::EMOJI) {
            entry.emojis = snapshot.emojis;
        }
        if self.keeps(R::STICKER) {
            entry.stickers = snapshot.stickers;
        }
        if self.keeps(R::STAGE_INSTANCE) {
            entry.stage_instances = snapshot.stage_instances;
        }
        if self.keeps(R::SCHEDULED_EVENT) {
            entry.scheduled_events = snapshot.scheduled_events;
        }
        if self.keeps(R::SOUNDBOARD) {
            entry.soundboard_sounds = snapshot.soundboard_sounds;
        }
        if self.keeps(R::MESSAGE) {
            let size = self.config.message_cache_size;
            for message in snapshot.messages {
                let mut messages = self.messages.entry(message.channel_id).or_default();
                if messages.len() >= size
                    && let Some(oldest) = messages.pop_front()
                {
                    self.message_channel.remove(&oldest.id);
                }
                self.message_channel.insert(message.id, message.channel_id);
                messages.push_back(message);
            }
        }
        self.guilds.insert(guild_id, Arc::new(RwLock::new(entry)));
    }

    /// Marks a guild unavailable (an outage, or not yet received after `READY`), keeping whatever is
    /// cached of it, as `READY` does for the guilds it lists.
    pub fn mark_unavailable(&self, guild_id: Id<GuildMarker>) {
        if self.resources.intersects(R::GUILD_SCOPED) {
            self.unavailable.insert(guild_id);
        }
    }

    /// Loads the bot's own user, as `READY` would (without touching any guild): the store then
    /// knows which member is the bot's.
    pub fn load_current_user(&self, user: CurrentUser) {
        self.me.store(user.id.get(), Ordering::Relaxed);
        if self.keeps(R::USER_CURRENT) {
            *self
                .current_user
                .write()
                .unwrap_or_else(PoisonError::into_inner) = Some(user);
        }
    }

    fn load_user(&self, user: CachedUser, new_member: bool) {
        match self.users.entry(user.id) {
            dashmap::Entry::Occupied(mut occupied) => {
                let entry = occupied.get_mut();
                entry.members += u32::from(new_member);
                entry.user = user;
            }
            dashmap::Entry::Vacant(vacant) => {
                vacant.insert(UserEntry { user, members: 1 });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{CacheBackend, CacheConfig};

    #[test]
    fn a_snapshot_loads_back_into_another_store() {
        let store = InMemoryCache::new(CacheConfig::new(R::ALL));
        let guild_id = Id::new(7);
        let member: CachedMember = serde_json::from_value(serde_json::json!({
            "user_id": "5", "guild_id": "7", "nick": "n", "roles": [], "joined_at": null,
            "premium_since": null, "communication_disabled_until": null, "avatar": null,
            "flags": 0, "pending": false, "deaf": false, "mute": false
        }))
        .expect("member JSON");
        let user: CachedUser = serde_json::from_value(serde_json::json!({
            "id": "5", "name": "u", "global_name": null, "avatar": null, "discriminator": 0,
            "bot": false
        }))
        .expect("user JSON");
        store.load_guild(
            guild_id,
            GuildSnapshot {
                members: vec![(member.clone(), Some(user.clone()))],
                ..GuildSnapshot::default()
            },
        );
        assert_eq!(store.member(guild_id, Id::new(5)), Some(member));
        assert_eq!(store.user(Id::new(5)), Some(user));
        let snapshot = store.guild_snapshot(guild_id).unwrap_or_default();
        let other = InMemoryCache::new(CacheConfig::new(R::ALL));
        other.load_guild(guild_id, snapshot.clone());
        assert_eq!(other.guild_snapshot(guild_id), Some(snapshot));
    }
}
