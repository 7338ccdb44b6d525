//! The cache: a backend trait, the in-memory store, the no-op store, and the handle `ctx.cache()` gives.
//!
//! Each shard hands every event to [`Cache::update`] in gateway order before dispatch; the backend
//! applies it and fills the event's old value ([`Update::old`](crate::Update)) or deleted object
//! ([`Deleted::cached`](crate::Deleted)). Queries return clones of the compact models in [`model`]:
//! nothing holds a lock once a query has returned.
//!
//! ```
//! use nostrum_core::cache::{Cache, CacheConfig, ResourceType};
//! use nostrum_core::Event;
//! use serde_json::value::RawValue;
//!
//! let cache = Cache::in_memory(CacheConfig::new(ResourceType::ALL));
//! let raw = RawValue::from_string(
//!     r#"{"guild_id":"1","role":{"id":"2","name":"mods","color":0,"hoist":false,"position":1,
//!        "permissions":"8","managed":false,"mentionable":false}}"#.to_owned(),
//! ).unwrap();
//! let mut event = Event::from_dispatch("GUILD_ROLE_CREATE", &raw);
//! cache.update(&mut event);
//! assert_eq!(&*cache.role(nostrum_core::model::id::Id::new(2)).unwrap().name, "mods");
//! ```

mod config;
mod memory;
pub mod model;
pub mod permissions;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;

use twilight_model::channel::StageInstance;
use twilight_model::gateway::Intents;
use twilight_model::guild::Permissions;
use twilight_model::guild::scheduled_event::GuildScheduledEvent;
use twilight_model::id::Id;
use twilight_model::id::marker::{
    ChannelMarker, GuildMarker, MessageMarker, RoleMarker, UserMarker,
};
use twilight_model::user::CurrentUser;

use crate::event::SoundboardSound;
use crate::{Event, EventSet};

pub use config::{CacheConfig, ResourceType};
pub use memory::{GuildSnapshot, InMemoryCache};
pub use model::*;

/// A cache store. The client calls [`update`](CacheBackend::update) for every event it parses, in
/// gateway order per shard; handlers query through [`Cache`].
///
/// Every query has a default that answers "nothing cached", so a store implements what it keeps.
/// Callbacks of [`for_each_member`](CacheBackend::for_each_member) and
/// [`for_each_membership`](CacheBackend::for_each_membership) may run under a read lock: they must
/// not call the cache.
pub trait CacheBackend: Send + Sync + 'static {
    /// Applies `event` to the store and fills its old value ([`Update::old`](crate::Update)) or
    /// deleted object ([`Deleted::cached`](crate::Deleted)).
    fn update(&self, event: &mut Event);

    /// The event kinds it needs to see (parsed even when no consumer handles them).
    fn wants(&self) -> EventSet;

    /// The gateway intents the store needs to fill itself.
    fn intents(&self) -> Intents {
        Intents::empty()
    }

    /// Whether the client should request every member of each large guild once it arrives.
    fn request_members_on_start(&self) -> bool {
        false
    }

    /// A guild, when available and cached.
    fn guild(&self, _guild_id: Id<GuildMarker>) -> Option<CachedGuild> {
        None
    }

    /// The ids of the available guilds cached.
    fn guild_ids(&self) -> Vec<Id<GuildMarker>> {
        Vec::new()
    }

    /// Whether the guild is known to be unavailable (an outage, or not yet received after `READY`).
    fn is_unavailable(&self, _guild_id: Id<GuildMarker>) -> bool {
        false
    }

    /// The guilds known to be unavailable.
    fn unavailable_guilds(&self) -> Vec<Id<GuildMarker>> {
        Vec::new()
    }

    /// A channel or thread (guild or private).
    fn channel(&self, _channel_id: Id<ChannelMarker>) -> Option<CachedChannel> {
        None
    }

    /// A role.
    fn role(&self, _role_id: Id<RoleMarker>) -> Option<CachedRole> {
        None
    }

    /// A user (of a cached member).
    fn user(&self, _user_id: Id<UserMarker>) -> Option<CachedUser> {
        None
    }

    /// A member, without its user.
    fn member(&self, _guild_id: Id<GuildMarker>, _user_id: Id<UserMarker>) -> Option<CachedMember> {
        None
    }

    /// A member and its user, when both are cached.
    fn member_with_user(
        &self,
        guild_id: Id<GuildMarker>,
        user_id: Id<UserMarker>,
    ) -> Option<(CachedMember, CachedUser)> {
        let member = self.member(guild_id, user_id)?;
        Some((member, self.user(user_id)?))
    }

    /// The ids of a guild's channels and threads.
    fn guild_channels(&self, _guild_id: Id<GuildMarker>) -> Vec<Id<ChannelMarker>> {
        Vec::new()
    }

    /// The ids of a guild's roles (with `@everyone`, whose id is the guild's).
    fn guild_roles(&self, _guild_id: Id<GuildMarker>) -> Vec<Id<RoleMarker>> {
        Vec::new()
    }

    /// The user ids of a guild's cached members.
    fn guild_members(&self, _guild_id: Id<GuildMarker>) -> Vec<Id<UserMarker>> {
        Vec::new()
    }

    /// A guild's custom emojis.
    fn guild_emojis(&self, _guild_id: Id<GuildMarker>) -> Vec<CachedEmoji> {
        Vec::new()
    }

    /// A guild's stickers.
    fn guild_stickers(&self, _guild_id: Id<GuildMarker>) -> Vec<CachedSticker> {
        Vec::new()
    }

    /// A guild's live stage instances.
    fn guild_stage_instances(&self, _guild_id: Id<GuildMarker>) -> Vec<StageInstance> {
        Vec::new()
    }

    /// A guild's scheduled events (without their creator's user).
    fn guild_scheduled_events(&self, _guild_id: Id<GuildMarker>) -> Vec<GuildScheduledEvent> {
        Vec::new()
    }

    /// A guild's soundboard sounds (without their creator's user).
    fn guild_soundboard_sounds(&self, _guild_id: Id<GuildMarker>) -> Vec<SoundboardSound> {
        Vec::new()
    }

    /// A guild's voice states: who is in which voice channel.
    fn guild_voice_states(&self, _guild_id: Id<GuildMarker>) -> Vec<CachedVoiceState> {
        Vec::new()
    }

    /// A member's presence.
    fn presence(
        &self,
        _guild_id: Id<GuildMarker>,
        _user_id: Id<UserMarker>,
    ) -> Option<CachedPresence> {
        None
    }

    /// A member's voice state, while they are in a voice channel.
    fn voice_state(
        &self,
        _guild_id: Id<GuildMarker>,
        _user_id: Id<UserMarker>,
    ) -> Option<CachedVoiceState> {
        None
    }

    /// A message.
    fn message(&self, _message_id: Id<MessageMarker>) -> Option<CachedMessage> {
        None
    }

    /// A channel's cached messages, oldest first.
    fn channel_messages(&self, _channel_id: Id<ChannelMarker>) -> Vec<CachedMessage> {
        Vec::new()
    }

    /// The bot's own user.
    fn current_user(&self) -> Option<CurrentUser> {
        None
    }

    /// Calls `f` on each cached member of a guild. `f` must not call the cache.
    fn for_each_member(&self, _guild_id: Id<GuildMarker>, _f: &mut dyn FnMut(&CachedMember)) {}

    /// Calls `f` on each guild's member for one user. `f` must not call the cache.
    fn for_each_membership(
        &self,
        _user_id: Id<UserMarker>,
        _f: &mut dyn FnMut(Id<GuildMarker>, &CachedMember),
    ) {
    }

    /// How much the store holds.
    fn stats(&self) -> CacheStats {
        CacheStats::default()
    }

    /// A member's permissions in the guild; `None` when the guild, its `@everyone` role or the
    /// member is not cached. See [`permissions`] for the order.
    fn guild_permissions(
        &self,
        _guild_id: Id<GuildMarker>,
        _user_id: Id<UserMarker>,
    ) -> Option<Permissions> {
        None
    }

    /// A member's permissions in a guild channel or thread (a thread takes its parent's overwrites);
    /// `None` when the channel, its guild, the `@everyone` role or the member is not cached.
    fn channel_permissions(
        &self,
        _channel_id: Id<ChannelMarker>,
        _user_id: Id<UserMarker>,
    ) -> Option<Permissions> {
        None
    }
}

/// How much a cache holds, by resource.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Available guilds cached.
    pub guilds: usize,
    /// Guilds known to be unavailable.
    pub unavailable_guilds: usize,
    /// Guild channels, threads and private channels.
    pub channels: usize,
    /// Roles.
    pub roles: usize,
    /// Distinct users.
    pub users: usize,
    /// Members, counted once per guild.
    pub members: usize,
    /// Presences.
    pub presences: usize,
    /// Voice states.
    pub voice_states: usize,
    /// Custom emojis.
    pub emojis: usize,
    /// Stickers.
    pub stickers: usize,
    /// Messages.
    pub messages: usize,
    /// Stage instances.
    pub stage_instances: usize,
    /// Scheduled events.
    pub scheduled_events: usize,
    /// Soundboard sounds.
    pub soundboard_sounds: usize,
}

/// The store that keeps nothing: every event passes untouched and every query answers nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoCache;

impl CacheBackend for NoCache {
    fn update(&self, _event: &mut Event) {}

    fn wants(&self) -> EventSet {
        EventSet::EMPTY
    }
}

/// The cache as handlers see it (`ctx.cache()`): a cheap-to-clone handle on a [`CacheBackend`].
#[derive(Clone)]
pub struct Cache(Arc<dyn CacheBackend>);

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("wants", &self.0.wants())
            .finish_non_exhaustive()
    }
}

impl Default for Cache {
    /// [`Cache::none`].
    fn default() -> Self {
        Self::none()
    }
}

impl Cache {
    /// A cache on `backend`.
    pub fn new(backend: impl CacheBackend) -> Self {
        Self(Arc::new(backend))
    }

    /// The in-memory cache with `config`.
    pub fn in_memory(config: CacheConfig) -> Self {
        Self::new(InMemoryCache::new(config))
    }

    /// A cache that keeps nothing and costs nothing.
    pub fn none() -> Self {
        Self::new(NoCache)
    }

    /// The backend.
    pub fn backend(&self) -> &dyn CacheBackend {
        &*self.0
    }

    /// Applies `event` and fills its old value or deleted object. Called by the client, per shard, in
    /// gateway order, before dispatch.
    pub fn update(&self, event: &mut Event) {
        self.0.update(event);
    }

    /// The event kinds the cache needs to see.
    pub fn wants(&self) -> EventSet {
        self.0.wants()
    }

    /// The gateway intents the cache needs (the client adds them to the consumers').
    pub fn intents(&self) -> Intents {
        self.0.intents()
    }

    /// Whether the client should request the members of each large guild once it arrives.
    pub fn request_members_on_start(&self) -> bool {
        self.0.request_members_on_start()
    }

    /// A guild (a clone), when available and cached.
    pub fn guild(&self, guild_id: Id<GuildMarker>) -> Option<CachedGuild> {
        self.0.guild(guild_id)
    }

    /// The ids of the available guilds cached.
    pub fn guild_ids(&self) -> Vec<Id<GuildMarker>> {
        self.0.guild_ids()
    }

    /// Whether the guild is known to be unavailable.
    pub fn is_unavailable(&self, guild_id: Id<GuildMarker>) -> bool {
        self.0.is_unavailable(guild_id)
    }

    /// The guilds known to be unavailable.
    pub fn unavailable_guilds(&self) -> Vec<Id<GuildMarker>> {
        self.0.unavailable_guilds()
    }

    /// A channel or thread.
    pub fn channel(&self, channel_id: Id<ChannelMarker>) -> Option<CachedChannel> {
        self.0.channel(channel_id)
    }

    /// A role.
    pub fn role(&self, role_id: Id<RoleMarker>) -> Option<CachedRole> {
        self.0.role(role_id)
    }

    /// A user.
    pub fn user(&self, user_id: Id<UserMarker>) -> Option<CachedUser> {
        self.0.user(user_id)
    }

    /// A member, without its user.
    pub fn member(
        &self,
        guild_id: Id<GuildMarker>,
        user_id: Id<UserMarker>,
    ) -> Option<CachedMember> {
        self.0.member(guild_id, user_id)
    }

    /// A member and its user.
    pub fn member_with_user(
        &self,
        guild_id: Id<GuildMarker>,
        user_id: Id<UserMarker>,
    ) -> Option<(CachedMember, CachedUser)> {
        self.0.member_with_user(guild_id, user_id)
    }

    /// The ids of a guild's channels and threads.
    pub fn guild_channels(&self, guild_id: Id<GuildMarker>) -> Vec<Id<ChannelMarker>> {
        self.0.guild_channels(guild_id)
    }

    /// The ids of a guild's roles.
    pub fn guild_roles(&self, guild_id: Id<GuildMarker>) -> Vec<Id<RoleMarker>> {
        self.0.guild_roles(guild_id)
    }

    /// The user ids of a guild's cached members.
    pub fn guild_members(&self, guild_id: Id<GuildMarker>) -> Vec<Id<UserMarker>> {
        self.0.guild_members(guild_id)
    }

    /// A guild's custom emojis.
    pub fn guild_emojis(&self, guild_id: Id<GuildMarker>) -> Vec<CachedEmoji> {
        self.0.guild_emojis(guild_id)
    }

    /// A guild's stickers.
    pub fn guild_stickers(&self, guild_id: Id<GuildMarker>) -> Vec<CachedSticker> {
        self.0.guild_stickers(guild_id)
    }

    /// A guild's live stage instances.
    pub fn guild_stage_instances(&self, guild_id: Id<GuildMarker>) -> Vec<StageInstance> {
        self.0.guild_stage_instances(guild_id)
    }

    /// A guild's scheduled events.
    pub fn guild_scheduled_events(&self, guild_id: Id<GuildMarker>) -> Vec<GuildScheduledEvent> {
        self.0.guild_scheduled_events(guild_id)
    }

    /// A guild's soundboard sounds.
    pub fn guild_soundboard_sounds(&self, guild_id: Id<GuildMarker>) -> Vec<SoundboardSound> {
        self.0.guild_soundboard_sounds(guild_id)
    }

    /// A guild's voice states.
    pub fn guild_voice_states(&self, guild_id: Id<GuildMarker>) -> Vec<CachedVoiceState> {
        self.0.guild_voice_states(guild_id)
    }

    /// A member's presence.
    pub fn presence(
        &self,
        guild_id: Id<GuildMarker>,
        user_id: Id<UserMarker>,
    ) -> Option<CachedPresence> {
        self.0.presence(guild_id, user_id)
    }

    /// A member's voice state.
    pub fn voice_state(
        &self,
        guild_id: Id<GuildMarker>,
        user_id: Id<UserMarker>,
    ) -> Option<CachedVoiceState> {
        self.0.voice_state(guild_id, user_id)
    }

    /// A message.
    pub fn message(&self, message_id: Id<MessageMarker>) -> Option<CachedMessage> {
        self.0.message(message_id)
    }

    /// A channel's cached messages, oldest first.
    pub fn channel_messages(&self, channel_id: Id<ChannelMarker>) -> Vec<CachedMessage> {
        self.0.channel_messages(channel_id)
    }

    /// The bot's own user.
    pub fn current_user(&self) -> Option<CurrentUser> {
        self.0.current_user()
    }

    /// Folds over a guild's cached members (Nostrum's `MemberCache.fold`). `f` must not call the
    /// cache: it runs under the guild's read lock.
    ///
    /// ```
    /// # let cache = nostrum_core::cache::Cache::none();
    /// # let guild_id = nostrum_core::model::id::Id::new(1);
    /// let bots_with_nick = cache.fold_members(guild_id, 0, |n, m| n + usize::from(m.nick.is_some()));
    /// # assert_eq!(bots_with_nick, 0);
    /// ```
    pub fn fold_members<A>(
        &self,
        guild_id: Id<GuildMarker>,
        init: A,
        mut f: impl FnMut(A, &CachedMember) -> A,
    ) -> A {
        let mut acc = Some(init);
        self.0.for_each_member(guild_id, &mut |member| {
            acc = acc.take().map(|a| f(a, member));
        });
        match acc {
            Some(acc) => acc,
            None => unreachable!("the accumulator is put back after each member"),
        }
    }

    /// Folds over every guild's member for one user (Nostrum's `MemberCache.fold_by_user`). `f` must
    /// not call the cache.
    pub fn fold_by_user<A>(
        &self,
        user_id: Id<UserMarker>,
        init: A,
        mut f: impl FnMut(A, Id<GuildMarker>, &CachedMember) -> A,
    ) -> A {
        let mut acc = Some(init);
        self.0
            .for_each_membership(user_id, &mut |guild_id, member| {
                acc = acc.take().map(|a| f(a, guild_id, member));
            });
        match acc {
            Some(acc) => acc,
            None => unreachable!("the accumulator is put back after each member"),
        }
    }

    /// How much the cache holds.
    pub fn stats(&self) -> CacheStats {
        self.0.stats()
    }

    /// A member's permissions in the guild (owner and administrators: all; timeouts applied).
    pub fn guild_permissions(
        &self,
        guild_id: Id<GuildMarker>,
        user_id: Id<UserMarker>,
    ) -> Option<Permissions> {
        self.0.guild_permissions(guild_id, user_id)
    }

    /// A member's permissions in a channel, overwrites applied in Discord's documented order.
    pub fn channel_permissions(
        &self,
        channel_id: Id<ChannelMarker>,
        user_id: Id<UserMarker>,
    ) -> Option<Permissions> {
        self.0.channel_permissions(channel_id, user_id)
    }
}
