//! The in-memory store: one lock per guild, sharded indexes, users stored once.
//!
//! Layout: `guilds` maps a guild id to its own `RwLock<GuildEntry>` (the guild's channels, roles,
//! members, presences, voice states and expressions); a reader of one guild never waits on a writer of
//! another, and the outer map's shard lock is held only to clone an `Arc`. Channels, roles and
//! messages are found by id through small sharded indexes. Users live in one map with the number of
//! cached members that point at them, and leave it with their last member.
//!
//! Lock order, to stay deadlock-free: a guild's lock may be held while touching `users` and the
//! indexes, never the reverse, and never while touching `guilds` itself.

mod live;
mod snapshot;
mod update;

use std::collections::{HashMap, VecDeque};

use rustc_hash::FxBuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use dashmap::{DashMap, DashSet};

/// A map keyed by snowflakes, hashed with Fx: Discord assigns the ids, so no one picks keys to
/// collide, and SipHash cost several times more per lookup (several lookups per event).
type Map<K, V> = HashMap<K, V, FxBuildHasher>;
/// [`Map`] shared between threads.
type Shared<K, V> = DashMap<K, V, FxBuildHasher>;
use twilight_model::channel::StageInstance;
use twilight_model::gateway::Intents;
use twilight_model::guild::Permissions;
use twilight_model::guild::scheduled_event::GuildScheduledEvent;
use twilight_model::id::Id;
use twilight_model::id::marker::{
    ChannelMarker, GuildMarker, MessageMarker, RoleMarker, UserMarker,
};
use twilight_model::user::{CurrentUser, User};

use super::config::{CacheConfig, ResourceType};
use super::model::{
    CachedChannel, CachedEmoji, CachedGuild, CachedMember, CachedMessage, CachedPresence,
    CachedRole, CachedSticker, CachedUser, CachedVoiceState,
};
use super::{CacheBackend, CacheStats, permissions};
use crate::event::SoundboardSound;
use crate::{Event, EventSet};

pub use snapshot::GuildSnapshot;

/// The in-memory cache store (the default backend of [`Cache::in_memory`](super::Cache::in_memory)).
///
/// ```
/// use nostrum_core::cache::{CacheBackend, CacheConfig, InMemoryCache, ResourceType};
///
/// let store = InMemoryCache::new(CacheConfig::new(ResourceType::EMPTY));
/// assert!(store.wants().is_empty(), "a cache that keeps nothing parses nothing for itself");
/// ```
#[derive(Debug)]
pub struct InMemoryCache {
    config: CacheConfig,
    resources: ResourceType,
    wants: EventSet,
    guilds: Shared<Id<GuildMarker>, Arc<RwLock<GuildEntry>>>,
    unavailable: DashSet<Id<GuildMarker>, FxBuildHasher>,
    channel_guild: Shared<Id<ChannelMarker>, Id<GuildMarker>>,
    role_guild: Shared<Id<RoleMarker>, Id<GuildMarker>>,
    private_channels: Shared<Id<ChannelMarker>, CachedChannel>,
    users: Shared<Id<UserMarker>, UserEntry>,
    messages: Shared<Id<ChannelMarker>, VecDeque<CachedMessage>>,
    message_channel: Shared<Id<MessageMarker>, Id<ChannelMarker>>,
    current_user: RwLock<Option<CurrentUser>>,
    /// The bot's user id, 0 until `READY`.
    me: AtomicU64,
}

/// A user and how many cached members point at it.
#[derive(Debug)]
struct UserEntry {
    user: CachedUser,
    members: u32,
}

/// Everything cached of one guild, behind its own lock.
#[derive(Debug, Default)]
struct GuildEntry {
    /// `None` when guilds are not cached, or only sub-resources were seen.
    guild: Option<CachedGuild>,
    channels: Map<Id<ChannelMarker>, CachedChannel>,
    roles: Map<Id<RoleMarker>, CachedRole>,
    members: Map<Id<UserMarker>, CachedMember>,
    presences: Map<Id<UserMarker>, CachedPresence>,
    voice_states: Map<Id<UserMarker>, CachedVoiceState>,
    emojis: Vec<CachedEmoji>,
    stickers: Vec<CachedSticker>,
    stage_instances: Vec<StageInstance>,
    scheduled_events: Vec<GuildScheduledEvent>,
    soundboard_sounds: Vec<SoundboardSound>,
}

impl GuildEntry {
    /// The member's base permissions and roles; `None` without the guild, `@everyone` or the member
    /// (the owner needs neither role nor member).
    fn base(
        &self,
        guild_id: Id<GuildMarker>,
        user_id: Id<UserMarker>,
    ) -> Option<(Permissions, &[Id<RoleMarker>], bool)> {
        let guild = self.guild.as_ref()?;
        if guild.owner_id == user_id {
            return Some((Permissions::all(), &[], false));
        }
        let everyone = self.roles.get(&guild_id.cast())?.permissions;
        let member = self.members.get(&user_id)?;
        let roles = member
            .roles
            .iter()
            .filter_map(|id| self.roles.get(id))
            .map(|role| role.permissions);
        let base = permissions::base_permissions(user_id, guild.owner_id, everyone, roles);
        Some((base, &member.roles, member.timed_out_at(now_micros())))
    }
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
        })
}

fn read(lock: &RwLock<GuildEntry>) -> RwLockReadGuard<'_, GuildEntry> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write(lock: &RwLock<GuildEntry>) -> RwLockWriteGuard<'_, GuildEntry> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

impl InMemoryCache {
    /// A store with `config`.
    pub fn new(config: CacheConfig) -> Self {
        Self {
            config,
            resources: config.effective_resources(),
            wants: config.events(),
            guilds: Shared::default(),
            unavailable: DashSet::default(),
            channel_guild: Shared::default(),
            role_guild: Shared::default(),
            private_channels: Shared::default(),
            users: Shared::default(),
            messages: Shared::default(),
            message_channel: Shared::default(),
            current_user: RwLock::new(None),
            me: AtomicU64::new(0),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    fn keeps(&self, resource: ResourceType) -> bool {
        self.resources.contains(resource)
    }

    /// Members are kept with `MEMBER`; the bot's own member also with `GUILD`, so that its
    /// permissions are known without the privileged intent.
    fn keeps_member(&self, user_id: Id<UserMarker>) -> bool {
        self.keeps(ResourceType::MEMBER)
            || (self.keeps(ResourceType::GUILD) && self.me.load(Ordering::Relaxed) == user_id.get())
    }

    fn entry(&self, guild_id: Id<GuildMarker>) -> Option<Arc<RwLock<GuildEntry>>> {
        self.guilds.get(&guild_id).map(|entry| Arc::clone(&entry))
    }

    /// Reads a guild's entry.
    fn read<R>(&self, guild_id: Id<GuildMarker>, f: impl FnOnce(&GuildEntry) -> R) -> Option<R> {
        let entry = self.entry(guild_id)?;
        let guard = read(&entry);
        Some(f(&guard))
    }

    /// Writes a guild's entry, when there is one.
    fn write<R>(
        &self,
        guild_id: Id<GuildMarker>,
        f: impl FnOnce(&mut GuildEntry) -> R,
    ) -> Option<R> {
        let entry = self.entry(guild_id)?;
        let mut guard = write(&entry);
        Some(f(&mut guard))
    }

    /// Writes a guild's entry, making an empty one first if the guild was never seen.
    fn write_or_insert<R>(
        &self,
        guild_id: Id<GuildMarker>,
        f: impl FnOnce(&mut GuildEntry) -> R,
    ) -> R {
        let entry = match self.entry(guild_id) {
            Some(entry) => entry,
            None => Arc::clone(&self.guilds.entry(guild_id).or_default()),
        };
        let mut guard = write(&entry);
        f(&mut guard)
    }

    /// Every guild entry, collected so that no shard lock of `guilds` is held while they are read.
    fn entries(&self) -> Vec<(Id<GuildMarker>, Arc<RwLock<GuildEntry>>)> {
        self.guilds
            .iter()
            .map(|entry| (*entry.key(), Arc::clone(entry.value())))
            .collect()
    }

    /// Stores `member` (with `user`) in `entry`: a new member takes a reference on its user.
    fn put_member(&self, entry: &mut GuildEntry, member: CachedMember, user: &User) {
        let user_id = member.user_id;
        let new = entry.members.insert(user_id, member).is_none();
        self.put_user(user, new);
    }

    /// Stores or refreshes `user`; `new_member` counts one more member pointing at it.
    fn put_user(&self, user: &User, new_member: bool) {
        if !self.keeps(ResourceType::USER) {
            return;
        }
        match self.users.entry(user.id) {
            dashmap::Entry::Occupied(mut occupied) => {
                let entry = occupied.get_mut();
                entry.members += u32::from(new_member);
                if entry.user.differs(user) {
                    entry.user = CachedUser::from(user);
                }
            }
            dashmap::Entry::Vacant(vacant) => {
                vacant.insert(UserEntry {
                    user: CachedUser::from(user),
                    members: 1,
                });
            }
        }
    }

    /// Refreshes `user` if cached.
    fn touch_user(&self, user: &User) {
        if let Some(mut entry) = self.users.get_mut(&user.id)
            && entry.user.differs(user)
        {
            entry.user = CachedUser::from(user);
        }
    }

    /// Drops one member's reference on a user; the user leaves with its last member.
    fn release_user(&self, user_id: Id<UserMarker>) {
        if let dashmap::Entry::Occupied(mut occupied) = self.users.entry(user_id) {
            if occupied.get().members <= 1 {
                occupied.remove();
            } else {
                occupied.get_mut().members -= 1;
            }
        }
    }

    /// Removes a guild and everything indexed under it; returns what it held.
    fn remove_guild(&self, guild_id: Id<GuildMarker>) -> Option<GuildEntry> {
        let (_, entry) = self.guilds.remove(&guild_id)?;
        let entry = std::mem::take(&mut *write(&entry));
        for channel_id in entry.channels.keys() {
            self.channel_guild.remove(channel_id);
            self.drop_messages(*channel_id);
        }
        for role_id in entry.roles.keys() {
            self.role_guild.remove(role_id);
        }
        for user_id in entry.members.keys() {
            self.release_user(*user_id);
        }
        Some(entry)
    }

    /// Drops a channel's cached messages.
    fn drop_messages(&self, channel_id: Id<ChannelMarker>) {
        if let Some((_, messages)) = self.messages.remove(&channel_id) {
            for message in messages {
                self.message_channel.remove(&message.id);
            }
        }
    }

    fn channel_permissions_in(
        &self,
        entry: &GuildEntry,
        guild_id: Id<GuildMarker>,
        channel_id: Id<ChannelMarker>,
        user_id: Id<UserMarker>,
    ) -> Option<Permissions> {
        let channel = entry.channels.get(&channel_id)?;
        let thread = channel.kind.is_thread();
        let overwrites = if thread {
            &entry
                .channels
                .get(&channel.parent_id?)?
                .permission_overwrites
        } else {
            &channel.permission_overwrites
        };
        let (base, roles, timed_out) = entry.base(guild_id, user_id)?;
        let perms =
            permissions::channel_permissions(base, guild_id, user_id, roles, overwrites, timed_out);
        Some(permissions::apply_implicit(perms, thread))
    }
}

impl CacheBackend for InMemoryCache {
    fn update(&self, event: &mut Event) {
        if !self.resources.is_empty() {
            self.apply(event);
        }
    }

    fn wants(&self) -> EventSet {
        self.wants
    }

    fn intents(&self) -> Intents {
        self.resources.intents()
    }

    fn request_members_on_start(&self) -> bool {
        self.config.request_members_on_start
    }

    fn guild(&self, guild_id: Id<GuildMarker>) -> Option<CachedGuild> {
        self.read(guild_id, |entry| entry.guild.clone()).flatten()
    }

    fn guild_ids(&self) -> Vec<Id<GuildMarker>> {
        self.entries()
            .into_iter()
            .filter(|(_, entry)| read(entry).guild.is_some())
            .map(|(id, _)| id)
            .collect()
    }

    fn is_unavailable(&self, guild_id: Id<GuildMarker>) -> bool {
        self.unavailable.contains(&guild_id)
    }

    fn unavailable_guilds(&self) -> Vec<Id<GuildMarker>> {
        self.unavailable.iter().map(|id| *id).collect()
    }

    fn channel(&self, channel_id: Id<ChannelMarker>) -> Option<CachedChannel> {
        let guild_id = self.channel_guild.get(&channel_id).map(|id| *id);
        match guild_id {
            Some(guild_id) => self
                .read(guild_id, |entry| entry.channels.get(&channel_id).cloned())
                .flatten(),
            None => self.private_channels.get(&channel_id).map(|c| c.clone()),
        }
    }

    fn role(&self, role_id: Id<RoleMarker>) -> Option<CachedRole> {
        let guild_id = self.role_guild.get(&role_id).map(|id| *id)?;
        self.read(guild_id, |entry| entry.roles.get(&role_id).cloned())
            .flatten()
    }

    fn user(&self, user_id: Id<UserMarker>) -> Option<CachedUser> {
        self.users.get(&user_id).map(|entry| entry.user.clone())
    }

    fn member(&self, guild_id: Id<GuildMarker>, user_id: Id<UserMarker>) -> Option<CachedMember> {
        self.read(guild_id, |entry| entry.members.get(&user_id).cloned())
            .flatten()
    }

    fn guild_channels(&self, guild_id: Id<GuildMarker>) -> Vec<Id<ChannelMarker>> {
        self.read(guild_id, |entry| entry.channels.keys().copied().collect())
            .unwrap_or_default()
    }

    fn guild_roles(&self, guild_id: Id<GuildMarker>) -> Vec<Id<RoleMarker>> {
        self.read(guild_id, |entry| entry.roles.keys().copied().collect())
            .unwrap_or_default()
    }

    fn guild_members(&self, guild_id: Id<GuildMarker>) -> Vec<Id<UserMarker>> {
        self.read(guild_id, |entry| entry.members.keys().copied().collect())
            .unwrap_or_default()
    }

    fn guild_emojis(&self, guild_id: Id<GuildMarker>) -> Vec<CachedEmoji> {
        self.read(guild_id, |entry| entry.emojis.clone())
            .unwrap_or_default()
    }

    fn guild_stickers(&self, guild_id: Id<GuildMarker>) -> Vec<CachedSticker> {
        self.read(guild_id, |entry| entry.stickers.clone())
            .unwrap_or_default()
    }

    fn guild_stage_instances(&self, guild_id: Id<GuildMarker>) -> Vec<StageInstance> {
        self.read(guild_id, |entry| entry.stage_instances.clone())
            .unwrap_or_default()
    }

    fn guild_scheduled_events(&self, guild_id: Id<GuildMarker>) -> Vec<GuildScheduledEvent> {
        self.read(guild_id, |entry| entry.scheduled_events.clone())
            .unwrap_or_default()
    }

    fn guild_soundboard_sounds(&self, guild_id: Id<GuildMarker>) -> Vec<SoundboardSound> {
        self.read(guild_id, |entry| entry.soundboard_sounds.clone())
            .unwrap_or_default()
    }

    fn guild_voice_states(&self, guild_id: Id<GuildMarker>) -> Vec<CachedVoiceState> {
        self.read(guild_id, |entry| {
            entry.voice_states.values().cloned().collect()
        })
        .unwrap_or_default()
    }

    fn presence(
        &self,
        guild_id: Id<GuildMarker>,
        user_id: Id<UserMarker>,
    ) -> Option<CachedPresence> {
        self.read(guild_id, |entry| entry.presences.get(&user_id).cloned())
            .flatten()
    }

    fn voice_state(
        &self,
        guild_id: Id<GuildMarker>,
        user_id: Id<UserMarker>,
    ) -> Option<CachedVoiceState> {
        self.read(guild_id, |entry| entry.voice_states.get(&user_id).cloned())
            .flatten()
    }

    fn message(&self, message_id: Id<MessageMarker>) -> Option<CachedMessage> {
        let channel_id = self.message_channel.get(&message_id).map(|id| *id)?;
        let messages = self.messages.get(&channel_id)?;
        messages.iter().find(|m| m.id == message_id).cloned()
    }

    fn channel_messages(&self, channel_id: Id<ChannelMarker>) -> Vec<CachedMessage> {
        self.messages
            .get(&channel_id)
            .map(|messages| messages.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn current_user(&self) -> Option<CurrentUser> {
        self.current_user
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn for_each_member(&self, guild_id: Id<GuildMarker>, f: &mut dyn FnMut(&CachedMember)) {
        self.read(guild_id, |entry| entry.members.values().for_each(f));
    }

    fn for_each_membership(
        &self,
        user_id: Id<UserMarker>,
        f: &mut dyn FnMut(Id<GuildMarker>, &CachedMember),
    ) {
        // With users cached, the user's member count says when every member has been found.
        let mut left = self.users.get(&user_id).map(|entry| entry.members);
        for (guild_id, entry) in self.entries() {
            if left == Some(0) {
                break;
            }
            if let Some(member) = read(&entry).members.get(&user_id) {
                f(guild_id, member);
                left = left.map(|n| n.saturating_sub(1));
            }
        }
    }

    fn stats(&self) -> CacheStats {
        let mut stats = CacheStats {
            unavailable_guilds: self.unavailable.len(),
            channels: self.private_channels.len(),
            users: self.users.len(),
            messages: self.message_channel.len(),
            ..CacheStats::default()
        };
        for (_, entry) in self.entries() {
            let entry = read(&entry);
            stats.guilds += usize::from(entry.guild.is_some());
            stats.channels += entry.channels.len();
            stats.roles += entry.roles.len();
            stats.members += entry.members.len();
            stats.presences += entry.presences.len();
            stats.voice_states += entry.voice_states.len();
            stats.emojis += entry.emojis.len();
            stats.stickers += entry.stickers.len();
            stats.stage_instances += entry.stage_instances.len();
            stats.scheduled_events += entry.scheduled_events.len();
            stats.soundboard_sounds += entry.soundboard_sounds.len();
        }
        stats
    }

    fn guild_permissions(
        &self,
        guild_id: Id<GuildMarker>,
        user_id: Id<UserMarker>,
    ) -> Option<Permissions> {
        self.read(guild_id, |entry| {
            let (base, _, timed_out) = entry.base(guild_id, user_id)?;
            Some(permissions::apply_timeout(base, timed_out))
        })
        .flatten()
    }

    fn channel_permissions(
        &self,
        channel_id: Id<ChannelMarker>,
        user_id: Id<UserMarker>,
    ) -> Option<Permissions> {
        let guild_id = self.channel_guild.get(&channel_id).map(|id| *id)?;
        self.read(guild_id, |entry| {
            self.channel_permissions_in(entry, guild_id, channel_id, user_id)
        })
        .flatten()
    }
}
