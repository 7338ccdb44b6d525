//! The payload types events carry: twilight-model's where it has them, ours where it lacks them.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

pub use crate::cache::model::{
    CachedChannel, CachedEmoji, CachedGuild, CachedMember, CachedMessage, CachedPresence,
    CachedRole, CachedSticker, CachedVoiceState,
};
pub use twilight_model::application::command::permissions::GuildCommandPermissions;
pub use twilight_model::application::interaction::Interaction;
pub use twilight_model::application::monetization::{Entitlement, Subscription};
pub use twilight_model::channel::message::Message;
pub use twilight_model::channel::{Channel, StageInstance};
pub use twilight_model::gateway::GatewayReaction;
pub use twilight_model::gateway::payload::incoming::{
    AutoModerationActionExecution, BanAdd, BanRemove, ChannelPinsUpdate, GuildAuditLogEntryCreate,
    GuildCreate, GuildDelete, GuildEmojisUpdate, GuildIntegrationsUpdate,
    GuildScheduledEventUserAdd, GuildScheduledEventUserRemove, GuildStickersUpdate,
    IntegrationDelete, InviteCreate, InviteDelete, MemberAdd, MemberChunk, MemberRemove,
    MemberUpdate, MessageDelete, MessageDeleteBulk, MessagePollVoteAdd, MessagePollVoteRemove,
    ReactionRemoveAll, ReactionRemoveEmoji, Ready, RoleCreate, RoleDelete, RoleUpdate,
    ThreadDelete, ThreadListSync, ThreadMemberUpdate, ThreadMembersUpdate, TypingStart,
    VoiceServerUpdate, WebhooksUpdate,
};
pub use twilight_model::gateway::presence::Presence;
pub use twilight_model::guild::auto_moderation::AutoModerationRule;
pub use twilight_model::guild::scheduled_event::GuildScheduledEvent;
pub use twilight_model::guild::{GuildIntegration, PartialGuild};
pub use twilight_model::user::CurrentUser;
pub use twilight_model::voice::VoiceState;

use twilight_model::id::Id;
use twilight_model::id::marker::{
    ChannelMarker, EmojiMarker, GenericMarker, GuildMarker, UserMarker,
};

/// An update: the cached value from before the event (when the cache held it) beside the new payload.
#[derive(Clone, Debug, PartialEq)]
pub struct Update<Old, New> {
    /// What the cache held before this event; `None` when it held nothing (or caches nothing).
    pub old: Option<Old>,
    /// The event's payload.
    pub new: New,
}

/// A delete: the event's payload and the deleted object when the cache held it.
#[derive(Clone, Debug, PartialEq)]
pub struct Deleted<Event, Cached> {
    /// The event's payload.
    pub event: Event,
    /// What the cache held and removed; `None` when it held nothing (or caches nothing).
    pub cached: Option<Cached>,
}

/// A dispatch no type could hold, with its raw JSON.
#[derive(Clone, Debug)]
pub struct UnknownEvent {
    /// The dispatch name (`t`).
    pub name: Box<str>,
    /// The raw JSON of `d`.
    pub raw: Box<RawValue>,
}

/// `RESUMED`: the session was resumed. It carries no data.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq, Serialize)]
pub struct Resumed {}

/// `RATE_LIMITED`: a gateway command was rate limited (documented shape; twilight-model rejects it).
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
pub struct RateLimited {
    /// The opcode of the limited command.
    pub opcode: u8,
    /// Seconds to wait before sending it again.
    pub retry_after: f64,
    /// Metadata for the limited command (for op 8: `guild_id` and `nonce`).
    #[serde(default)]
    pub meta: serde_json::Value,
}

/// `CHANNEL_INFO`: the answer to op 43, request channel info.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
pub struct ChannelInfo {
    /// The guild.
    pub guild_id: Id<GuildMarker>,
    /// The channels and the fields asked for.
    #[serde(default)]
    pub channels: Vec<ChannelInfoEntry>,
}

/// One channel of [`ChannelInfo`].
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
pub struct ChannelInfoEntry {
    /// The channel.
    pub id: Id<ChannelMarker>,
    /// The voice channel's status, if asked for.
    #[serde(default)]
    pub status: Option<String>,
    /// When the voice session started (unix seconds), if asked for.
    #[serde(default)]
    pub voice_start_time: Option<u64>,
}

/// A soundboard sound (`GUILD_SOUNDBOARD_SOUND_CREATE`, `GUILD_SOUNDBOARD_SOUND_UPDATE`).
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
pub struct SoundboardSound {
    /// The sound's name.
    pub name: String,
    /// The sound's id.
    pub sound_id: Id<GenericMarker>,
    /// Its volume, 0 to 1.
    #[serde(default = "full_volume")]
    pub volume: f64,
    /// A custom emoji for it.
    #[serde(default)]
    pub emoji_id: Option<Id<EmojiMarker>>,
    /// A standard emoji for it.
    #[serde(default)]
    pub emoji_name: Option<String>,
    /// The guild it is in; absent for default sounds.
    #[serde(default)]
    pub guild_id: Option<Id<GuildMarker>>,
    /// Whether it can be used (false when a guild lost boosts).
    #[serde(default = "yes")]
    pub available: bool,
    /// Who created it.
    #[serde(default)]
    pub user: Option<twilight_model::user::User>,
}

const fn full_volume() -> f64 {
    1.0
}

const fn yes() -> bool {
    true
}

/// `GUILD_SOUNDBOARD_SOUND_DELETE`.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
pub struct SoundboardSoundDelete {
    /// The deleted sound.
    pub sound_id: Id<GenericMarker>,
    /// Its guild.
    pub guild_id: Id<GuildMarker>,
}

/// `GUILD_SOUNDBOARD_SOUNDS_UPDATE` and `SOUNDBOARD_SOUNDS` (the answer to op 31): a guild's sounds.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
pub struct SoundboardSounds {
    /// The sounds.
    #[serde(default)]
    pub soundboard_sounds: Vec<SoundboardSound>,
    /// The guild.
    pub guild_id: Id<GuildMarker>,
}

/// `VOICE_CHANNEL_EFFECT_SEND`: someone sent an effect (an emoji reaction or a soundboard sound).
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
pub struct VoiceChannelEffectSend {
    /// The voice channel.
    pub channel_id: Id<ChannelMarker>,
    /// Its guild.
    pub guild_id: Id<GuildMarker>,
    /// Who sent it.
    pub user_id: Id<UserMarker>,
    /// The emoji sent, for emoji effects.
    #[serde(default)]
    pub emoji: Option<serde_json::Value>,
    /// The animation type.
    #[serde(default)]
    pub animation_type: Option<u8>,
    /// The animation id.
    #[serde(default)]
    pub animation_id: Option<u64>,
    /// The soundboard sound, for sound effects.
    #[serde(default)]
    pub sound_id: Option<serde_json::Value>,
    /// The sound's volume.
    #[serde(default)]
    pub sound_volume: Option<f64>,
}

/// `VOICE_CHANNEL_STATUS_UPDATE`: a voice channel's status changed.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
pub struct VoiceChannelStatusUpdate {
    /// The channel.
    pub id: Id<ChannelMarker>,
    /// Its guild.
    pub guild_id: Id<GuildMarker>,
    /// The new status, `None` when cleared.
    #[serde(default)]
    pub status: Option<String>,
}

/// `VOICE_CHANNEL_START_TIME_UPDATE`: a voice channel's session start time changed.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
pub struct VoiceChannelStartTimeUpdate {
    /// The channel.
    pub id: Id<ChannelMarker>,
    /// Its guild.
    pub guild_id: Id<GuildMarker>,
    /// When the voice session started (unix seconds); `None` when it ended.
    #[serde(default)]
    pub voice_start_time: Option<u64>,
}

/// `VOICE_READY`: a voice connection of this bot is ready to send and receive.
#[derive(Clone, Debug, PartialEq)]
pub struct VoiceReady {
    /// The guild of the connection.
    pub guild_id: Id<GuildMarker>,
    /// The channel joined.
    pub channel_id: Id<ChannelMarker>,
    /// The SSRC the bot sends with.
    pub ssrc: u32,
    /// The transport encryption mode chosen.
    pub mode: String,
    /// Whether DAVE end-to-end encryption is on.
    pub dave: bool,
}

/// `VOICE_SPEAKING_UPDATE`: someone started or stopped speaking in a voice connection of this bot.
#[derive(Clone, Debug, PartialEq)]
pub struct VoiceSpeakingUpdate {
    /// The guild of the connection.
    pub guild_id: Id<GuildMarker>,
    /// Who.
    pub user_id: Option<Id<UserMarker>>,
    /// Their SSRC.
    pub ssrc: u32,
    /// Speaking flags (microphone 1, soundshare 2, priority 4); 0 when they stopped.
    pub speaking: u8,
}

/// `VOICE_INCOMING_PACKET`: an audio packet received in a voice connection of this bot.
#[derive(Clone, Debug, PartialEq)]
pub struct VoiceIncomingPacket {
    /// The guild of the connection.
    pub guild_id: Id<GuildMarker>,
    /// The sender, when their SSRC is known from a speaking event.
    pub user_id: Option<Id<UserMarker>>,
    /// The sender's SSRC.
    pub ssrc: u32,
    /// RTP sequence number.
    pub sequence: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// The decrypted Opus frame.
    pub opus: bytes::Bytes,
    /// Decoded 48 kHz stereo PCM, when decoding was asked for.
    pub pcm: Option<std::sync::Arc<[i16]>>,
}

/// `SHARD_CONNECTED`: a shard's socket is open and the gateway said hello.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardConnected {
    /// The shard number.
    pub shard_id: u32,
}

/// `SHARD_DISCONNECTED`: a shard's socket closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardDisconnected {
    /// The shard number.
    pub shard_id: u32,
    /// The close code, if the gateway sent one.
    pub code: Option<u16>,
    /// Whether the shard will resume its session (otherwise it identifies afresh or stops).
    pub will_resume: bool,
}

/// `SHARD_RESUMED`: a shard resumed its session; no event was lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardResumed {
    /// The shard number.
    pub shard_id: u32,
}
