//! What the cache keeps of each resource: the fields a bot reads, stored compactly.
//!
//! Users live once in the cache however many guilds they share, so a member holds its user's id only.
//! These are also the old values that update events carry. Fields whose name says what they are go
//! undocumented; each type names the Discord object it keeps.

use std::borrow::Cow;
use twilight_model::channel::message::MessageType;
use twilight_model::channel::permission_overwrite::PermissionOverwrite;
use twilight_model::channel::{Channel, ChannelType, Message};
use twilight_model::gateway::presence::{Activity, ClientStatus, Presence, Status};

use twilight_model::gateway::payload::incoming::MemberUpdate;
use twilight_model::guild::{
    Emoji, Guild, Member, MemberFlags, PartialGuild, PartialMember, Permissions, Role, RoleFlags,
};
use twilight_model::id::Id;
use twilight_model::id::marker::{
    ChannelMarker, EmojiMarker, GenericMarker, GuildMarker, MessageMarker, RoleMarker,
    StickerMarker, UserMarker,
};
use twilight_model::user::{CurrentUser, User};
use twilight_model::util::{ImageHash, Timestamp};
use twilight_model::voice::VoiceState;

/// A cached channel or thread.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CachedChannel {
    pub id: Id<ChannelMarker>,
    pub guild_id: Option<Id<GuildMarker>>,
    pub kind: ChannelType,
    pub name: Option<Box<str>>,
    pub topic: Option<Box<str>>,
    pub position: Option<i32>,
    pub parent_id: Option<Id<ChannelMarker>>,
    pub owner_id: Option<Id<UserMarker>>,
    pub last_message_id: Option<Id<GenericMarker>>,
    pub nsfw: bool,
    pub rate_limit_per_user: Option<u16>,
    pub permission_overwrites: Box<[PermissionOverwrite]>,
}

impl From<&Channel> for CachedChannel {
    fn from(channel: &Channel) -> Self {
        Self {
            id: channel.id,
            guild_id: channel.guild_id,
            kind: channel.kind,
            name: channel.name.as_deref().map(Into::into),
            topic: channel.topic.as_deref().map(Into::into),
            position: channel.position,
            parent_id: channel.parent_id,
            owner_id: channel.owner_id,
            last_message_id: channel.last_message_id,
            nsfw: channel.nsfw.unwrap_or(false),
            rate_limit_per_user: channel.rate_limit_per_user,
            permission_overwrites: channel
                .permission_overwrites
                .clone()
                .unwrap_or_default()
                .into(),
        }
    }
}

/// A cached guild, without its members, channels and roles (the cache keeps those apart).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CachedGuild {
    pub id: Id<GuildMarker>,
    pub name: Box<str>,
    pub owner_id: Id<UserMarker>,
    pub icon: Option<ImageHash>,
    pub member_count: Option<u64>,
    pub large: bool,
    pub unavailable: bool,
    pub system_channel_id: Option<Id<ChannelMarker>>,
    pub afk_channel_id: Option<Id<ChannelMarker>>,
    pub features: Box<[Box<str>]>,
}

impl From<&Guild> for CachedGuild {
    fn from(guild: &Guild) -> Self {
        Self {
            id: guild.id,
            name: guild.name.as_str().into(),
            owner_id: guild.owner_id,
            icon: guild.icon,
            member_count: guild.member_count,
            large: guild.large,
            unavailable: guild.unavailable.unwrap_or(false),
            system_channel_id: guild.system_channel_id,
            afk_channel_id: guild.afk_channel_id,
            features: features(&guild.features),
        }
    }
}

impl From<&PartialGuild> for CachedGuild {
    fn from(guild: &PartialGuild) -> Self {
        Self {
            id: guild.id,
            name: guild.name.as_str().into(),
            owner_id: guild.owner_id,
            icon: guild.icon,
            member_count: guild.member_count,
            large: false,
            unavailable: false,
            system_channel_id: guild.system_channel_id,
            afk_channel_id: guild.afk_channel_id,
            features: features(&guild.features),
        }
    }
}

impl CachedGuild {
    /// Applies a `GUILD_UPDATE`: the fields it carries replace the cached ones; the member count and
    /// `large`, which it lacks, are kept.
    pub fn update(&mut self, guild: &PartialGuild) {
        let member_count = guild.member_count.or(self.member_count);
        *self = Self {
            member_count,
            large: self.large,
            unavailable: self.unavailable,
            ..Self::from(guild)
        };
    }
}

fn features(features: &[twilight_model::guild::GuildFeature]) -> Box<[Box<str>]> {
    features
        .iter()
        .map(|feature| match Cow::<'static, str>::from(feature.clone()) {
            Cow::Borrowed(name) => name.into(),
            Cow::Owned(name) => name.into_boxed_str(),
        })
        .collect()
}

/// A cached user: the fields a bot reads. Stored once however many guilds the user shares.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CachedUser {
    pub id: Id<UserMarker>,
    /// The username.
    pub name: Box<str>,
    pub global_name: Option<Box<str>>,
    pub avatar: Option<ImageHash>,
    /// 0 for users on the new username system.
    pub discriminator: u16,
    pub bot: bool,
}

impl From<&User> for CachedUser {
    fn from(user: &User) -> Self {
        Self {
            id: user.id,
            name: user.name.as_str().into(),
            global_name: user.global_name.as_deref().map(Into::into),
            avatar: user.avatar,
            discriminator: user.discriminator,
            bot: user.bot,
        }
    }
}

impl From<&CurrentUser> for CachedUser {
    fn from(user: &CurrentUser) -> Self {
        Self {
            id: user.id,
            name: user.name.as_str().into(),
            global_name: user.global_name.as_deref().map(Into::into),
            avatar: user.avatar,
            discriminator: user.discriminator,
            bot: user.bot,
        }
    }
}

impl CachedUser {
    /// Whether `user` carries other values for the cached fields.
    pub fn differs(&self, user: &User) -> bool {
        *self.name != *user.name
            || self.global_name.as_deref() != user.global_name.as_deref()
            || self.avatar != user.avatar
            || self.discriminator != user.discriminator
            || self.bot != user.bot
    }
}

/// A cached member. The user is cached once, apart: see `user_id`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CachedMember {
    pub user_id: Id<UserMarker>,
    pub guild_id: Id<GuildMarker>,
    pub nick: Option<Box<str>>,
    pub roles: Box<[Id<RoleMarker>]>,
    pub joined_at: Option<Timestamp>,
    pub premium_since: Option<Timestamp>,
    pub communication_disabled_until: Option<Timestamp>,
    pub avatar: Option<ImageHash>,
    pub flags: MemberFlags,
    pub deaf: Option<bool>,
    pub mute: Option<bool>,
    pub pending: bool,
}

impl CachedMember {
    /// From a full member of guild `guild_id`.
    pub fn from_member(guild_id: Id<GuildMarker>, member: &Member) -> Self {
        Self {
            user_id: member.user.id,
            guild_id,
            nick: member.nick.as_deref().map(Into::into),
            roles: member.roles.as_slice().into(),
            joined_at: member.joined_at,
            premium_since: member.premium_since,
            communication_disabled_until: member.communication_disabled_until,
            avatar: member.avatar,
            flags: member.flags,
            deaf: Some(member.deaf),
            mute: Some(member.mute),
            pending: member.pending,
        }
    }

    /// From a `GUILD_MEMBER_UPDATE`.
    pub fn from_update(update: &MemberUpdate) -> Self {
        Self {
            user_id: update.user.id,
            guild_id: update.guild_id,
            nick: update.nick.as_deref().map(Into::into),
            roles: update.roles.as_slice().into(),
            joined_at: update.joined_at,
            premium_since: update.premium_since,
            communication_disabled_until: update.communication_disabled_until,
            avatar: update.avatar,
            flags: update.flags.unwrap_or(MemberFlags::empty()),
            deaf: update.deaf,
            mute: update.mute,
            pending: update.pending,
        }
    }

    /// Applies a `GUILD_MEMBER_UPDATE`; the fields it leaves out (`deaf`, `mute`, `flags`,
    /// `joined_at` when absent) keep their cached values.
    pub fn update(&mut self, update: &MemberUpdate) {
        let new = Self::from_update(update);
        *self = Self {
            joined_at: new.joined_at.or(self.joined_at),
            flags: update.flags.unwrap_or(self.flags),
            deaf: new.deaf.or(self.deaf),
            mute: new.mute.or(self.mute),
            ..new
        };
    }

    /// Whether the member is timed out at `now_micros` (unix microseconds).
    pub fn timed_out_at(&self, now_micros: i64) -> bool {
        self.communication_disabled_until
            .is_some_and(|until| until.as_micros() > now_micros)
    }

    /// From the partial member a message carries.
    pub fn from_partial(
        guild_id: Id<GuildMarker>,
        user_id: Id<UserMarker>,
        member: &PartialMember,
    ) -> Self {
        Self {
            user_id,
            guild_id,
            nick: member.nick.as_deref().map(Into::into),
            roles: member.roles.as_slice().into(),
            joined_at: member.joined_at,
            premium_since: member.premium_since,
            communication_disabled_until: member.communication_disabled_until,
            avatar: member.avatar,
            flags: member.flags,
            deaf: Some(member.deaf),
            mute: Some(member.mute),
            pending: false,
        }
    }
}

/// A cached role.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CachedRole {
    pub id: Id<RoleMarker>,
    pub name: Box<str>,
    pub color: u32,
    pub hoist: bool,
    pub position: i64,
    pub permissions: Permissions,
    pub managed: bool,
    pub mentionable: bool,
    pub flags: RoleFlags,
}

impl From<&Role> for CachedRole {
    fn from(role: &Role) -> Self {
        Self {
            id: role.id,
            name: role.name.as_str().into(),
            color: role.colors.primary_color,
            hoist: role.hoist,
            position: role.position,
            permissions: role.permissions,
            managed: role.managed,
            mentionable: role.mentionable,
            flags: role.flags,
        }
    }
}

/// A cached message (the message cache is off by default).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CachedMessage {
    pub id: Id<MessageMarker>,
    pub channel_id: Id<ChannelMarker>,
    pub guild_id: Option<Id<GuildMarker>>,
    pub author_id: Id<UserMarker>,
    pub content: Box<str>,
    pub timestamp: Timestamp,
    pub edited_timestamp: Option<Timestamp>,
    pub kind: MessageType,
    pub pinned: bool,
}

impl From<&Message> for CachedMessage {
    fn from(message: &Message) -> Self {
        Self {
            id: message.id,
            channel_id: message.channel_id,
            guild_id: message.guild_id,
            author_id: message.author.id,
            content: message.content.as_str().into(),
            timestamp: message.timestamp,
            edited_timestamp: message.edited_timestamp,
            kind: message.kind,
            pinned: message.pinned,
        }
    }
}

/// A cached custom emoji.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CachedEmoji {
    pub id: Id<EmojiMarker>,
    pub name: Box<str>,
    pub animated: bool,
    pub available: bool,
    pub managed: bool,
    pub roles: Box<[Id<RoleMarker>]>,
}

impl From<&Emoji> for CachedEmoji {
    fn from(emoji: &Emoji) -> Self {
        Self {
            id: emoji.id,
            name: emoji.name.as_str().into(),
            animated: emoji.animated,
            available: emoji.available,
            managed: emoji.managed,
            roles: emoji.roles.as_slice().into(),
        }
    }
}

/// A cached sticker.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CachedSticker {
    pub id: Id<StickerMarker>,
    pub name: Box<str>,
    pub description: Option<Box<str>>,
    pub available: bool,
}

impl From<&twilight_model::channel::message::Sticker> for CachedSticker {
    fn from(sticker: &twilight_model::channel::message::Sticker) -> Self {
        Self {
            id: sticker.id,
            name: sticker.name.as_str().into(),
            description: sticker.description.as_deref().map(Into::into),
            available: sticker.available,
        }
    }
}

/// A cached presence.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CachedPresence {
    pub user_id: Id<UserMarker>,
    pub guild_id: Id<GuildMarker>,
    pub status: Status,
    pub activities: Box<[Activity]>,
    pub client_status: ClientStatus,
}

impl From<&Presence> for CachedPresence {
    fn from(presence: &Presence) -> Self {
        Self {
            user_id: presence.user.id(),
            guild_id: presence.guild_id,
            status: presence.status,
            activities: presence.activities.as_slice().into(),
            client_status: presence.client_status.clone(),
        }
    }
}

/// A cached voice state.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CachedVoiceState {
    pub user_id: Id<UserMarker>,
    pub guild_id: Option<Id<GuildMarker>>,
    pub channel_id: Option<Id<ChannelMarker>>,
    pub session_id: Box<str>,
    pub deaf: bool,
    pub mute: bool,
    pub self_deaf: bool,
    pub self_mute: bool,
    pub self_stream: bool,
    pub self_video: bool,
    pub suppress: bool,
    pub request_to_speak_timestamp: Option<Timestamp>,
}

impl From<&VoiceState> for CachedVoiceState {
    fn from(state: &VoiceState) -> Self {
        Self {
            user_id: state.user_id,
            guild_id: state.guild_id,
            channel_id: state.channel_id,
            session_id: state.session_id.as_str().into(),
            deaf: state.deaf,
            mute: state.mute,
            self_deaf: state.self_deaf,
            self_mute: state.self_mute,
            self_stream: state.self_stream,
            self_video: state.self_video,
            suppress: state.suppress,
            request_to_speak_timestamp: state.request_to_speak_timestamp,
        }
    }
}
