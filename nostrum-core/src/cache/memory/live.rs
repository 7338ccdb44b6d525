//! Messages, presences, voice states, the current user, stage instances, scheduled events and
//! soundboard sounds: how their events change the in-memory store.

use std::sync::PoisonError;

use twilight_model::channel::{Message, StageInstance};
use twilight_model::gateway::presence::{Presence, UserOrId};
use twilight_model::guild::scheduled_event::GuildScheduledEvent;
use twilight_model::id::Id;
use twilight_model::id::marker::{ChannelMarker, GuildMarker, MessageMarker, ScheduledEventMarker};
use twilight_model::user::CurrentUser;
use twilight_model::voice::VoiceState;

use super::InMemoryCache;
use crate::cache::config::ResourceType as R;
use crate::cache::model::{
    CachedMember, CachedMessage, CachedPresence, CachedUser, CachedVoiceState,
};
use crate::event::{SoundboardSound, SoundboardSounds};

impl InMemoryCache {
    pub(super) fn message_create(&self, message: &Message) {
        let size = self.config.message_cache_size;
        if self.keeps(R::MESSAGE) {
            let mut messages = self.messages.entry(message.channel_id).or_default();
            if messages.len() >= size
                && let Some(oldest) = messages.pop_front()
            {
                self.message_channel.remove(&oldest.id);
            }
            messages.push_back(CachedMessage::from(message));
            self.message_channel.insert(message.id, message.channel_id);
        }
        self.touch_user(&message.author);
        let Some(guild_id) = message.guild_id else {
            return;
        };
        let member = message
            .member
            .as_ref()
            .filter(|_| self.keeps_member(message.author.id));
        let channel = self.keeps(R::CHANNEL);
        if member.is_none() && !channel {
            return;
        }
        self.write(guild_id, |entry| {
            if let Some(partial) = member
                && let Some(cached) = entry.members.get_mut(&message.author.id)
            {
                *cached = CachedMember {
                    pending: cached.pending,
                    ..CachedMember::from_partial(guild_id, message.author.id, partial)
                };
            }
            if let Some(cached) = entry.channels.get_mut(&message.channel_id) {
                cached.last_message_id = Some(message.id.cast());
            }
        });
    }

    pub(super) fn message_update(&self, message: &Message) -> Option<CachedMessage> {
        if !self.keeps(R::MESSAGE) {
            return None;
        }
        let mut messages = self.messages.get_mut(&message.channel_id)?;
        let cached = messages.iter_mut().find(|m| m.id == message.id)?;
        Some(std::mem::replace(cached, CachedMessage::from(message)))
    }

    pub(super) fn message_remove(
        &self,
        channel_id: Id<ChannelMarker>,
        message_id: Id<MessageMarker>,
    ) -> Option<CachedMessage> {
        if !self.keeps(R::MESSAGE) {
            return None;
        }
        self.message_channel.remove(&message_id);
        let mut messages = self.messages.get_mut(&channel_id)?;
        let index = messages.iter().position(|m| m.id == message_id)?;
        messages.remove(index)
    }

    pub(super) fn presence_upsert(&self, presence: &Presence) -> Option<CachedPresence> {
        if let UserOrId::User(user) = &presence.user {
            self.touch_user(user);
        }
        if !self.keeps(R::PRESENCE) {
            return None;
        }
        let cached = CachedPresence::from(presence);
        self.write_or_insert(presence.guild_id, |entry| {
            entry.presences.insert(cached.user_id, cached)
        })
    }

    pub(super) fn voice_state_update(&self, state: &VoiceState) -> Option<CachedVoiceState> {
        let guild_id = state.guild_id?;
        if let Some(member) = &state.member {
            self.member_upsert(guild_id, member);
        }
        if !self.keeps(R::VOICE_STATE) {
            return None;
        }
        if state.channel_id.is_none() {
            return self
                .write(guild_id, |e| e.voice_states.remove(&state.user_id))
                .flatten();
        }
        let cached = CachedVoiceState::from(state);
        self.write_or_insert(guild_id, |entry| {
            entry.voice_states.insert(state.user_id, cached)
        })
    }

    pub(super) fn user_update(&self, user: &CurrentUser) -> Option<CurrentUser> {
        if let Some(mut entry) = self.users.get_mut(&user.id) {
            entry.user = CachedUser::from(user);
        }
        if !self.keeps(R::USER_CURRENT) {
            return None;
        }
        let mut current = self
            .current_user
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        current.replace(user.clone())
    }

    pub(super) fn stage_upsert(&self, stage: &StageInstance, delete: bool) {
        if !self.keeps(R::STAGE_INSTANCE) {
            return;
        }
        self.write_or_insert(stage.guild_id, |entry| {
            entry.stage_instances.retain(|s| s.id != stage.id);
            if !delete {
                entry.stage_instances.push(stage.clone());
            }
        });
    }

    pub(super) fn scheduled_event_upsert(&self, scheduled: &GuildScheduledEvent, delete: bool) {
        if !self.keeps(R::SCHEDULED_EVENT) {
            return;
        }
        self.write_or_insert(scheduled.guild_id, |entry| {
            entry.scheduled_events.retain(|s| s.id != scheduled.id);
            if !delete {
                entry.scheduled_events.push(strip_creator(scheduled));
            }
        });
    }

    pub(super) fn scheduled_event_users(
        &self,
        guild_id: Id<GuildMarker>,
        event_id: Id<ScheduledEventMarker>,
        by: i64,
    ) {
        if !self.keeps(R::SCHEDULED_EVENT) {
            return;
        }
        self.write(guild_id, |entry| {
            let event = entry.scheduled_events.iter_mut().find(|s| s.id == event_id);
            if let Some(count) = event.and_then(|s| s.user_count.as_mut()) {
                *count = count.saturating_add_signed(by);
            }
        });
    }

    pub(super) fn sound_upsert(&self, sound: &SoundboardSound) {
        let Some(guild_id) = sound.guild_id.filter(|_| self.keeps(R::SOUNDBOARD)) else {
            return;
        };
        self.write_or_insert(guild_id, |entry| {
            entry
                .soundboard_sounds
                .retain(|s| s.sound_id != sound.sound_id);
            entry.soundboard_sounds.push(strip_sound_user(sound));
        });
    }

    pub(super) fn sounds_replace(&self, sounds: &SoundboardSounds) {
        if self.keeps(R::SOUNDBOARD) {
            let list = sounds
                .soundboard_sounds
                .iter()
                .map(strip_sound_user)
                .collect();
            self.write_or_insert(sounds.guild_id, |entry| entry.soundboard_sounds = list);
        }
    }
}

/// A scheduled event without its creator's user object (the creator's id stays).
pub(super) fn strip_creator(event: &GuildScheduledEvent) -> GuildScheduledEvent {
    GuildScheduledEvent {
        creator: None,
        ..event.clone()
    }
}

/// A sound without its creator's user object.
fn strip_sound_user(sound: &SoundboardSound) -> SoundboardSound {
    SoundboardSound {
        user: None,
        ..sound.clone()
    }
}
