//! How each event changes the in-memory store, and the old value or deleted object it yields: the
//! dispatch of every event, and guilds, channels, threads, roles and members.

use std::collections::HashSet;
use std::sync::PoisonError;
use std::sync::atomic::Ordering;

use twilight_model::channel::Channel;
use twilight_model::gateway::payload::incoming::{
    GuildCreate, MemberChunk, MemberUpdate, Ready, ThreadListSync,
};
use twilight_model::guild::{Guild, Member, PartialGuild, Role};
use twilight_model::id::Id;
use twilight_model::id::marker::{ChannelMarker, GuildMarker, RoleMarker, UserMarker};

use super::live::strip_creator;
use super::{GuildEntry, InMemoryCache};
use crate::Event;
use crate::cache::config::ResourceType as R;
use crate::cache::model::{
    CachedChannel, CachedEmoji, CachedGuild, CachedMember, CachedPresence, CachedRole,
    CachedSticker, CachedVoiceState,
};

impl InMemoryCache {
    /// Applies one event; fills its old value or deleted object.
    pub(super) fn apply(&self, event: &mut Event) {
        match event {
            Event::Ready(ready) => self.ready(ready),
            Event::GuildCreate(create) => match &**create {
                GuildCreate::Available(guild) => self.guild_create(guild),
                GuildCreate::Unavailable(guild) => self.guild_unavailable(guild.id),
            },
            Event::GuildUpdate(update) => update.old = self.guild_update(&update.new),
            Event::GuildDelete(delete) => {
                let unavailable = delete.event.unavailable.unwrap_or(false);
                delete.cached = self.guild_delete(delete.event.id, unavailable);
            }
            Event::ChannelCreate(channel) | Event::ThreadCreate(channel) => {
                self.channel_upsert(channel);
            }
            Event::ChannelUpdate(update) | Event::ThreadUpdate(update) => {
                update.old = self.channel_upsert(&update.new);
            }
            Event::ChannelDelete(delete) => {
                delete.cached = self.channel_delete(delete.event.guild_id, delete.event.id);
            }
            Event::ThreadDelete(delete) => {
                delete.cached = self.channel_delete(Some(delete.event.guild_id), delete.event.id);
            }
            Event::ThreadListSync(sync) => self.thread_list_sync(sync),
            Event::GuildEmojisUpdate(update) if self.keeps(R::EMOJI) => {
                let emojis = update.new.emojis.iter().map(CachedEmoji::from).collect();
                update.old = self.replace_list(update.new.guild_id, emojis, |e| &mut e.emojis);
            }
            Event::GuildStickersUpdate(update) if self.keeps(R::STICKER) => {
                let stickers = update
                    .new
                    .stickers
                    .iter()
                    .map(CachedSticker::from)
                    .collect();
                update.old = self.replace_list(update.new.guild_id, stickers, |e| &mut e.stickers);
            }
            Event::GuildMemberAdd(add) => {
                self.member_upsert(add.guild_id, &add.member);
                self.adjust_member_count(add.guild_id, 1);
            }
            Event::GuildMemberUpdate(update) => update.old = self.member_update(&update.new),
            Event::GuildMemberRemove(remove) => {
                let (guild_id, user_id) = (remove.event.guild_id, remove.event.user.id);
                remove.cached = self.member_remove(guild_id, user_id);
                self.adjust_member_count(guild_id, -1);
            }
            Event::GuildMembersChunk(chunk) => self.members_chunk(chunk),
            Event::GuildRoleCreate(create) => {
                self.role_upsert(create.guild_id, &create.role);
            }
            Event::GuildRoleUpdate(update) => {
                update.old = self.role_upsert(update.new.guild_id, &update.new.role);
            }
            Event::GuildRoleDelete(delete) => {
                delete.cached = self.role_delete(delete.event.guild_id, delete.event.role_id);
            }
            Event::MessageCreate(message) => self.message_create(message),
            Event::MessageUpdate(update) => update.old = self.message_update(&update.new),
            Event::MessageDelete(delete) => {
                delete.cached = self.message_remove(delete.event.channel_id, delete.event.id);
            }
            Event::MessageDeleteBulk(delete) => {
                let channel_id = delete.event.channel_id;
                let removed: Vec<_> = (delete.event.ids.iter())
                    .filter_map(|id| self.message_remove(channel_id, *id))
                    .collect();
                delete.cached = (!removed.is_empty()).then_some(removed);
            }
            Event::PresenceUpdate(update) => update.old = self.presence_upsert(&update.new),
            Event::VoiceStateUpdate(update) => update.old = self.voice_state_update(&update.new),
            Event::UserUpdate(update) => update.old = self.user_update(&update.new),
            Event::StageInstanceCreate(stage) | Event::StageInstanceUpdate(stage) => {
                self.stage_upsert(stage, false);
            }
            Event::StageInstanceDelete(stage) => self.stage_upsert(stage, true),
            Event::GuildScheduledEventCreate(scheduled)
            | Event::GuildScheduledEventUpdate(scheduled) => {
                self.scheduled_event_upsert(scheduled, false);
            }
            Event::GuildScheduledEventDelete(scheduled) => {
                self.scheduled_event_upsert(scheduled, true);
            }
            Event::GuildScheduledEventUserAdd(add) => {
                self.scheduled_event_users(add.guild_id, add.guild_scheduled_event_id.cast(), 1);
            }
            Event::GuildScheduledEventUserRemove(remove) => {
                let event_id = remove.guild_scheduled_event_id.cast();
                self.scheduled_event_users(remove.guild_id, event_id, -1);
            }
            Event::GuildSoundboardSoundCreate(sound) | Event::GuildSoundboardSoundUpdate(sound) => {
                self.sound_upsert(sound);
            }
            Event::GuildSoundboardSoundDelete(delete) if self.keeps(R::SOUNDBOARD) => {
                self.write(delete.guild_id, |e| {
                    e.soundboard_sounds
                        .retain(|s| s.sound_id != delete.sound_id);
                });
            }
            Event::GuildSoundboardSoundsUpdate(sounds) | Event::SoundboardSounds(sounds) => {
                self.sounds_replace(sounds);
            }
            _ => {}
        }
    }

    fn ready(&self, ready: &Ready) {
        self.me.store(ready.user.id.get(), Ordering::Relaxed);
        if self.keeps(R::USER_CURRENT) {
            *self
                .current_user
                .write()
                .unwrap_or_else(PoisonError::into_inner) = Some(ready.user.clone());
        }
        if !self.resources.intersects(R::GUILD_SCOPED) {
            return;
        }
        // A new session: the shard's guilds are those READY lists; any other cached guild of the
        // shard was left while the bot was away.
        if let Some(shard) = ready.shard.filter(|shard| shard.total() > 0) {
            let listed: HashSet<_> = ready.guilds.iter().map(|guild| guild.id).collect();
            let of_shard = |id: Id<GuildMarker>| {
                (id.get() >> 22) % u64::from(shard.total()) == u64::from(shard.number())
            };
            let gone: Vec<_> = (self.guilds.iter().map(|entry| *entry.key()))
                .chain(self.unavailable.iter().map(|id| *id))
                .filter(|id| of_shard(*id) && !listed.contains(id))
                .collect();
            for id in gone {
                self.remove_guild(id);
                self.unavailable.remove(&id);
            }
        }
        for guild in &ready.guilds {
            self.unavailable.insert(guild.id);
        }
    }

    fn guild_create(&self, guild: &Guild) {
        if !self.resources.intersects(R::GUILD_SCOPED) {
            return;
        }
        let guild_id = guild.id;
        self.unavailable.remove(&guild_id);
        // A GUILD_CREATE for a cached guild (after an outage or a new session) replaces it whole.
        self.remove_guild(guild_id);
        let mut entry = GuildEntry::default();
        if self.keeps(R::GUILD) {
            entry.guild = Some(CachedGuild {
                unavailable: false,
                ..CachedGuild::from(guild)
            });
        }
        if self.keeps(R::CHANNEL) {
            for channel in guild.channels.iter().chain(&guild.threads) {
                let mut cached = CachedChannel::from(channel);
                cached.guild_id = Some(guild_id);
                self.channel_guild.insert(channel.id, guild_id);
                entry.channels.insert(channel.id, cached);
            }
        }
        if self.keeps(R::ROLE) {
            for role in &guild.roles {
                self.role_guild.insert(role.id, guild_id);
                entry.roles.insert(role.id, CachedRole::from(role));
            }
        }
        for member in &guild.members {
            if self.keeps_member(member.user.id) {
                let cached = CachedMember::from_member(guild_id, member);
                self.put_member(&mut entry, cached, &member.user);
            }
        }
        if self.keeps(R::PRESENCE) {
            for presence in &guild.presences {
                let cached = CachedPresence {
                    guild_id,
                    ..CachedPresence::from(presence)
                };
                entry.presences.insert(cached.user_id, cached);
            }
        }
        if self.keeps(R::VOICE_STATE) {
            for state in guild.voice_states.iter().filter(|s| s.channel_id.is_some()) {
                let cached = CachedVoiceState {
                    guild_id: Some(guild_id),
                    ..CachedVoiceState::from(state)
                };
                entry.voice_states.insert(cached.user_id, cached);
            }
        }
        if self.keeps(R::EMOJI) {
            entry.emojis = guild.emojis.iter().map(CachedEmoji::from).collect();
        }
        if self.keeps(R::STICKER) {
            entry.stickers = guild.stickers.iter().map(CachedSticker::from).collect();
        }
        if self.keeps(R::STAGE_INSTANCE) {
            entry.stage_instances.clone_from(&guild.stage_instances);
        }
        if self.keeps(R::SCHEDULED_EVENT) {
            entry.scheduled_events = guild
                .guild_scheduled_events
                .iter()
                .map(strip_creator)
                .collect();
        }
        self.guilds
            .insert(guild_id, std::sync::Arc::new(std::sync::RwLock::new(entry)));
    }

    fn guild_unavailable(&self, guild_id: Id<GuildMarker>) {
        if self.resources.intersects(R::GUILD_SCOPED) {
            self.remove_guild(guild_id);
            self.unavailable.insert(guild_id);
        }
    }

    fn guild_update(&self, guild: &PartialGuild) -> Option<CachedGuild> {
        if !self.keeps(R::GUILD) {
            return None;
        }
        self.write_or_insert(guild.id, |entry| match &mut entry.guild {
            Some(cached) => {
                let old = cached.clone();
                cached.update(guild);
                Some(old)
            }
            None => {
                entry.guild = Some(CachedGuild::from(guild));
                None
            }
        })
    }

    fn guild_delete(&self, guild_id: Id<GuildMarker>, unavailable: bool) -> Option<CachedGuild> {
        let removed = self.remove_guild(guild_id);
        if unavailable && self.resources.intersects(R::GUILD_SCOPED) {
            self.unavailable.insert(guild_id);
        } else {
            self.unavailable.remove(&guild_id);
        }
        removed.and_then(|entry| entry.guild)
    }

    fn adjust_member_count(&self, guild_id: Id<GuildMarker>, by: i64) {
        if self.keeps(R::GUILD) {
            self.write(guild_id, |entry| {
                if let Some(count) = entry.guild.as_mut().and_then(|g| g.member_count.as_mut()) {
                    *count = count.saturating_add_signed(by);
                }
            });
        }
    }

    fn channel_upsert(&self, channel: &Channel) -> Option<CachedChannel> {
        if !self.keeps(R::CHANNEL) {
            return None;
        }
        let cached = CachedChannel::from(channel);
        match channel.guild_id {
            Some(guild_id) => {
                self.channel_guild.insert(channel.id, guild_id);
                self.write_or_insert(guild_id, |entry| entry.channels.insert(channel.id, cached))
            }
            None => self.private_channels.insert(channel.id, cached),
        }
    }

    fn channel_delete(
        &self,
        guild_id: Option<Id<GuildMarker>>,
        channel_id: Id<ChannelMarker>,
    ) -> Option<CachedChannel> {
        self.drop_messages(channel_id);
        if !self.keeps(R::CHANNEL) {
            return None;
        }
        self.channel_guild.remove(&channel_id);
        let Some(guild_id) = guild_id else {
            return self.private_channels.remove(&channel_id).map(|(_, c)| c);
        };
        self.write(guild_id, |entry| {
            let removed = entry.channels.remove(&channel_id)?;
            // Its threads go with it.
            entry.channels.retain(|id, c| {
                let orphan = c.kind.is_thread() && c.parent_id == Some(channel_id);
                if orphan {
                    self.channel_guild.remove(id);
                }
                !orphan
            });
            Some(removed)
        })
        .flatten()
    }

    fn thread_list_sync(&self, sync: &ThreadListSync) {
        if !self.keeps(R::CHANNEL) {
            return;
        }
        let guild_id = sync.guild_id;
        self.write_or_insert(guild_id, |entry| {
            // The sync lists every active thread of the given parents (of every parent when none is
            // given): the cached threads of those parents are replaced.
            entry.channels.retain(|id, c| {
                let synced = c.kind.is_thread()
                    && (sync.channel_ids.is_empty()
                        || c.parent_id.is_some_and(|p| sync.channel_ids.contains(&p)));
                if synced {
                    self.channel_guild.remove(id);
                }
                !synced
            });
            for thread in &sync.threads {
                let mut cached = CachedChannel::from(thread);
                cached.guild_id = Some(guild_id);
                self.channel_guild.insert(thread.id, guild_id);
                entry.channels.insert(thread.id, cached);
            }
        });
    }

    fn replace_list<T>(
        &self,
        guild_id: Id<GuildMarker>,
        new: Vec<T>,
        list: impl FnOnce(&mut GuildEntry) -> &mut Vec<T>,
    ) -> Option<Vec<T>> {
        let known = self.guilds.contains_key(&guild_id);
        let old = self.write_or_insert(guild_id, |entry| std::mem::replace(list(entry), new));
        known.then_some(old)
    }

    pub(super) fn member_upsert(
        &self,
        guild_id: Id<GuildMarker>,
        member: &Member,
    ) -> Option<CachedMember> {
        if !self.keeps_member(member.user.id) {
            return None;
        }
        let cached = CachedMember::from_member(guild_id, member);
        self.write_or_insert(guild_id, |entry| {
            let old = entry.members.get(&member.user.id).cloned();
            self.put_member(entry, cached, &member.user);
            old
        })
    }

    fn member_update(&self, update: &MemberUpdate) -> Option<CachedMember> {
        if !self.keeps_member(update.user.id) {
            self.touch_user(&update.user);
            return None;
        }
        self.write_or_insert(update.guild_id, |entry| {
            match entry.members.get_mut(&update.user.id) {
                Some(member) => {
                    let old = member.clone();
                    member.update(update);
                    self.put_user(&update.user, false);
                    Some(old)
                }
                None => {
                    let cached = CachedMember::from_update(update);
                    self.put_member(entry, cached, &update.user);
                    None
                }
            }
        })
    }

    fn member_remove(
        &self,
        guild_id: Id<GuildMarker>,
        user_id: Id<UserMarker>,
    ) -> Option<CachedMember> {
        self.write(guild_id, |entry| {
            entry.presences.remove(&user_id);
            entry.voice_states.remove(&user_id);
            let removed = entry.members.remove(&user_id)?;
            self.release_user(user_id);
            Some(removed)
        })
        .flatten()
    }

    fn members_chunk(&self, chunk: &MemberChunk) {
        let keep_presences = self.keeps(R::PRESENCE) && !chunk.presences.is_empty();
        let keep_members = chunk.members.iter().any(|m| self.keeps_member(m.user.id));
        if !keep_presences && !keep_members {
            return;
        }
        self.write_or_insert(chunk.guild_id, |entry| {
            for member in &chunk.members {
                if self.keeps_member(member.user.id) {
                    let cached = CachedMember::from_member(chunk.guild_id, member);
                    self.put_member(entry, cached, &member.user);
                }
            }
            if keep_presences {
                for presence in &chunk.presences {
                    let cached = CachedPresence {
                        guild_id: chunk.guild_id,
                        ..CachedPresence::from(presence)
                    };
                    entry.presences.insert(cached.user_id, cached);
                }
            }
        });
    }

    fn role_upsert(&self, guild_id: Id<GuildMarker>, role: &Role) -> Option<CachedRole> {
        if !self.keeps(R::ROLE) {
            return None;
        }
        self.role_guild.insert(role.id, guild_id);
        self.write_or_insert(guild_id, |entry| {
            entry.roles.insert(role.id, CachedRole::from(role))
        })
    }

    fn role_delete(
        &self,
        guild_id: Id<GuildMarker>,
        role_id: Id<RoleMarker>,
    ) -> Option<CachedRole> {
        if !self.keeps(R::ROLE) {
            return None;
        }
        self.role_guild.remove(&role_id);
        self.write(guild_id, |entry| entry.roles.remove(&role_id))
            .flatten()
    }
}
