//! What the cache keeps: the resources, the message cache size, member requests at start.

use std::fmt;
use std::ops::{BitOr, BitOrAssign};

use twilight_model::gateway::Intents;

use crate::{EventKind, EventSet};

/// A set of cacheable resources, one bit each; `const`-constructible.
///
/// ```
/// use nostrum_core::cache::ResourceType;
/// use nostrum_core::Intents;
///
/// const KEEP: ResourceType = ResourceType::GUILD.union(ResourceType::MEMBER);
/// assert!(KEEP.contains(ResourceType::MEMBER));
/// assert_eq!(KEEP.intents(), Intents::GUILDS | Intents::GUILD_MEMBERS);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ResourceType(u32);

impl ResourceType {
    /// Guilds (their own fields), and which guilds are unavailable.
    pub const GUILD: Self = Self(1);
    /// Guild channels and threads.
    pub const CHANNEL: Self = Self(1 << 1);
    /// Roles.
    pub const ROLE: Self = Self(1 << 2);
    /// Members (without their user: see [`ResourceType::USER`]). Needs the privileged `GUILD_MEMBERS`.
    pub const MEMBER: Self = Self(1 << 3);
    /// The users of cached members, each stored once however many guilds they share.
    pub const USER: Self = Self(1 << 4);
    /// Presences. Needs the privileged `GUILD_PRESENCES`.
    pub const PRESENCE: Self = Self(1 << 5);
    /// Voice states.
    pub const VOICE_STATE: Self = Self(1 << 6);
    /// Custom emojis.
    pub const EMOJI: Self = Self(1 << 7);
    /// Guild stickers.
    pub const STICKER: Self = Self(1 << 8);
    /// Stage instances.
    pub const STAGE_INSTANCE: Self = Self(1 << 9);
    /// Scheduled events.
    pub const SCHEDULED_EVENT: Self = Self(1 << 10);
    /// Soundboard sounds.
    pub const SOUNDBOARD: Self = Self(1 << 11);
    /// Messages, the last [`CacheConfig::message_cache_size`] of each channel.
    pub const MESSAGE: Self = Self(1 << 12);
    /// The bot's own user (`READY`, `USER_UPDATE`).
    pub const USER_CURRENT: Self = Self(1 << 13);

    /// Nothing.
    pub const EMPTY: Self = Self(0);
    /// Everything.
    pub const ALL: Self = Self((1 << 14) - 1);
    /// Everything that needs no privileged intent: all but members, presences and messages.
    pub const DEFAULT: Self =
        Self(Self::ALL.0 & !(Self::MEMBER.0 | Self::PRESENCE.0 | Self::MESSAGE.0));

    /// Every guild-scoped resource: what makes the cache follow `GUILD_CREATE` and `GUILD_DELETE`.
    pub(crate) const GUILD_SCOPED: Self =
        Self(Self::ALL.0 & !(Self::USER_CURRENT.0 | Self::MESSAGE.0));

    const NAMES: [(Self, &'static str); 14] = [
        (Self::GUILD, "GUILD"),
        (Self::CHANNEL, "CHANNEL"),
        (Self::ROLE, "ROLE"),
        (Self::MEMBER, "MEMBER"),
        (Self::USER, "USER"),
        (Self::PRESENCE, "PRESENCE"),
        (Self::VOICE_STATE, "VOICE_STATE"),
        (Self::EMOJI, "EMOJI"),
        (Self::STICKER, "STICKER"),
        (Self::STAGE_INSTANCE, "STAGE_INSTANCE"),
        (Self::SCHEDULED_EVENT, "SCHEDULED_EVENT"),
        (Self::SOUNDBOARD, "SOUNDBOARD"),
        (Self::MESSAGE, "MESSAGE"),
        (Self::USER_CURRENT, "USER_CURRENT"),
    ];

    /// The resources in either set.
    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// This set without the resources of `other`.
    #[must_use]
    pub const fn difference(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    /// Whether every resource of `other` is in the set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any resource of `other` is in the set.
    pub const fn intersects(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// The gateway intents that deliver the events these resources are built from.
    ///
    /// `MEMBER` needs `GUILD_MEMBERS` and `PRESENCE` needs `GUILD_PRESENCES` (both privileged),
    /// `VOICE_STATE` `GUILD_VOICE_STATES`, `MESSAGE` `GUILD_MESSAGES`, `EMOJI`, `STICKER` and
    /// `SOUNDBOARD` `GUILD_EXPRESSIONS`, `SCHEDULED_EVENT` `GUILD_SCHEDULED_EVENTS`; every guild-scoped
    /// resource needs `GUILDS`. `USER_CURRENT` needs none.
    pub const fn intents(self) -> Intents {
        let mut bits = 0;
        if self.intersects(Self::GUILD_SCOPED.union(Self::MESSAGE)) {
            bits |= Intents::GUILDS.bits();
        }
        if self.contains(Self::MEMBER) {
            bits |= Intents::GUILD_MEMBERS.bits();
        }
        if self.contains(Self::PRESENCE) {
            bits |= Intents::GUILD_PRESENCES.bits();
        }
        if self.contains(Self::VOICE_STATE) {
            bits |= Intents::GUILD_VOICE_STATES.bits();
        }
        if self.contains(Self::MESSAGE) {
            bits |= Intents::GUILD_MESSAGES.bits();
        }
        if self.intersects(Self::EMOJI.union(Self::STICKER).union(Self::SOUNDBOARD)) {
            bits |= Intents::GUILD_EMOJIS_AND_STICKERS.bits();
        }
        if self.contains(Self::SCHEDULED_EVENT) {
            bits |= Intents::GUILD_SCHEDULED_EVENTS.bits();
        }
        Intents::from_bits_retain(bits)
    }
}

impl BitOr for ResourceType {
    type Output = Self;

    fn bitor(self, rhs: Self) -> Self {
        self.union(rhs)
    }
}

impl BitOrAssign for ResourceType {
    fn bitor_assign(&mut self, rhs: Self) {
        *self = self.union(rhs);
    }
}

impl fmt::Debug for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(
                Self::NAMES
                    .iter()
                    .filter(|(flag, _)| self.contains(*flag))
                    .map(|(_, name)| name),
            )
            .finish()
    }
}

/// How the in-memory cache is set up.
///
/// ```
/// use nostrum_core::cache::{Cache, CacheConfig, ResourceType};
///
/// let cache = Cache::in_memory(CacheConfig {
///     resources: ResourceType::ALL,
///     message_cache_size: 100,
///     ..CacheConfig::default()
/// });
/// assert_eq!(cache.stats().guilds, 0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// What to keep; [`ResourceType::DEFAULT`] (everything no privileged intent is needed for).
    pub resources: ResourceType,
    /// How many messages to keep per channel; 0 (the default) keeps none, even with
    /// [`ResourceType::MESSAGE`].
    pub message_cache_size: usize,
    /// Whether the client asks for every member of each large guild once it arrives (gateway op 8);
    /// off by default. Needs [`ResourceType::MEMBER`] to be of use.
    pub request_members_on_start: bool,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            resources: ResourceType::DEFAULT,
            message_cache_size: 0,
            request_members_on_start: false,
        }
    }
}

impl CacheConfig {
    /// A configuration that keeps `resources`, no messages, and requests no members.
    pub const fn new(resources: ResourceType) -> Self {
        Self {
            resources,
            message_cache_size: 0,
            request_members_on_start: false,
        }
    }

    /// The resources actually kept: without `MESSAGE` when the message cache size is 0.
    pub const fn effective_resources(&self) -> ResourceType {
        if self.message_cache_size == 0 {
            self.resources.difference(ResourceType::MESSAGE)
        } else {
            self.resources
        }
    }

    /// The event kinds the cache must see to keep its resources (parsed even when no consumer
    /// handles them). Empty when it keeps nothing.
    pub const fn events(&self) -> EventSet {
        use EventKind as K;
        let res = self.effective_resources();
        let mut set = EventSet::EMPTY;
        if res.intersects(ResourceType::GUILD_SCOPED) {
            set = set.union(EventSet::from_kinds(&[
                K::Ready,
                K::GuildCreate,
                K::GuildDelete,
            ]));
        }
        if res.contains(ResourceType::GUILD) {
            // GUILD_MEMBER_UPDATE keeps the bot's own member, which is sent without GUILD_MEMBERS.
            set = set.union(EventSet::from_kinds(&[
                K::GuildUpdate,
                K::GuildMemberUpdate,
            ]));
        }
        if res.contains(ResourceType::CHANNEL) {
            set = set.union(EventSet::from_kinds(&[
                K::ChannelCreate,
                K::ChannelUpdate,
                K::ChannelDelete,
                K::ThreadCreate,
                K::ThreadUpdate,
                K::ThreadDelete,
                K::ThreadListSync,
            ]));
        }
        if res.contains(ResourceType::ROLE) {
            set = set.union(EventSet::from_kinds(&[
                K::GuildRoleCreate,
                K::GuildRoleUpdate,
                K::GuildRoleDelete,
            ]));
        }
        if res.contains(ResourceType::MEMBER) {
            set = set.union(EventSet::from_kinds(&[
                K::GuildMemberAdd,
                K::GuildMemberUpdate,
                K::GuildMemberRemove,
                K::GuildMembersChunk,
            ]));
        }
        if res.contains(ResourceType::PRESENCE) {
            set = set.union(EventSet::from_kinds(&[
                K::PresenceUpdate,
                K::GuildMembersChunk,
            ]));
        }
        if res.contains(ResourceType::VOICE_STATE) {
            set = set.with(K::VoiceStateUpdate);
        }
        if res.contains(ResourceType::EMOJI) {
            set = set.with(K::GuildEmojisUpdate);
        }
        if res.contains(ResourceType::STICKER) {
            set = set.with(K::GuildStickersUpdate);
        }
        if res.contains(ResourceType::STAGE_INSTANCE) {
            set = set.union(EventSet::from_kinds(&[
                K::StageInstanceCreate,
                K::StageInstanceUpdate,
                K::StageInstanceDelete,
            ]));
        }
        if res.contains(ResourceType::SCHEDULED_EVENT) {
            set = set.union(EventSet::from_kinds(&[
                K::GuildScheduledEventCreate,
                K::GuildScheduledEventUpdate,
                K::GuildScheduledEventDelete,
                K::GuildScheduledEventUserAdd,
                K::GuildScheduledEventUserRemove,
            ]));
        }
        if res.contains(ResourceType::SOUNDBOARD) {
            set = set.union(EventSet::from_kinds(&[
                K::GuildSoundboardSoundCreate,
                K::GuildSoundboardSoundUpdate,
                K::GuildSoundboardSoundDelete,
                K::GuildSoundboardSoundsUpdate,
                K::SoundboardSounds,
            ]));
        }
        if res.contains(ResourceType::MESSAGE) {
            set = set.union(EventSet::from_kinds(&[
                K::MessageCreate,
                K::MessageUpdate,
                K::MessageDelete,
                K::MessageDeleteBulk,
                K::ChannelDelete,
                K::ThreadDelete,
                K::GuildDelete,
            ]));
        }
        if res.contains(ResourceType::USER_CURRENT) {
            set = set.union(EventSet::from_kinds(&[K::Ready, K::UserUpdate]));
        }
        set
    }
}
