//! The event table: every event the SDK knows, once. Everything else is generated from it.
//!
//! Each row names the gateway dispatch (`t`), the shape of its payload and the gateway intents that
//! deliver it (any one of them suffices; none for events every bot receives). Payload type names
//! resolve in `nostrum_core::event::payload`. Rows are in the order of Discord's documentation
//! (`receive_events` in the gateway reference); the voice and runtime events follow, and `UNKNOWN` is
//! last. `nostrum-core`'s tests check the rows against Discord's tables.

/// The shape of an event's payload, which fixes how it is stored in `Event` and handed to a handler.
#[derive(Clone, Copy)]
pub(crate) enum Shape {
    /// Stored inline; the handler takes the type.
    P(&'static str),
    /// Stored boxed; the handler takes the type unboxed.
    B(&'static str),
    /// An update: the cache's old value (first) beside the new payload (second), as `Update<Old, New>`.
    U(&'static str, &'static str),
    /// A delete: the event (first) and the deleted object when it was cached (second), as `Deleted<Event, Cached>`.
    D(&'static str, &'static str),
    /// Made by the runtime, never parsed from a gateway dispatch.
    R(&'static str),
    /// `Event::Unknown { name, raw }`: what nobody could type, delivered all the same.
    Unknown,
}

/// One event.
#[derive(Clone, Copy)]
pub(crate) struct EventDef {
    /// Discord's name: `MESSAGE_CREATE`.
    pub(crate) name: &'static str,
    pub(crate) shape: Shape,
    /// Intents that deliver it (names of `twilight_model::gateway::Intents` constants).
    pub(crate) intents: &'static [&'static str],
}

const fn ev(name: &'static str, shape: Shape, intents: &'static [&'static str]) -> EventDef {
    EventDef {
        name,
        shape,
        intents,
    }
}

use Shape::{B, D, P, R, U};

/// The table.
pub(crate) const EVENTS: &[EventDef] = &[
    ev("READY", B("Ready"), &[]),
    ev("RESUMED", P("Resumed"), &[]),
    ev("RATE_LIMITED", P("RateLimited"), &[]),
    ev(
        "APPLICATION_COMMAND_PERMISSIONS_UPDATE",
        B("GuildCommandPermissions"),
        &[],
    ),
    ev(
        "AUTO_MODERATION_RULE_CREATE",
        B("AutoModerationRule"),
        &["AUTO_MODERATION_CONFIGURATION"],
    ),
    ev(
        "AUTO_MODERATION_RULE_UPDATE",
        B("AutoModerationRule"),
        &["AUTO_MODERATION_CONFIGURATION"],
    ),
    ev(
        "AUTO_MODERATION_RULE_DELETE",
        B("AutoModerationRule"),
        &["AUTO_MODERATION_CONFIGURATION"],
    ),
    ev(
        "AUTO_MODERATION_ACTION_EXECUTION",
        B("AutoModerationActionExecution"),
        &["AUTO_MODERATION_EXECUTION"],
    ),
    ev("CHANNEL_CREATE", B("Channel"), &["GUILDS"]),
    ev("CHANNEL_UPDATE", U("CachedChannel", "Channel"), &["GUILDS"]),
    ev("CHANNEL_DELETE", D("Channel", "CachedChannel"), &["GUILDS"]),
    ev("CHANNEL_INFO", P("ChannelInfo"), &[]),
    ev(
        "CHANNEL_PINS_UPDATE",
        P("ChannelPinsUpdate"),
        &["GUILDS", "DIRECT_MESSAGES"],
    ),
    ev("THREAD_CREATE", B("Channel"), &["GUILDS"]),
    ev("THREAD_UPDATE", U("CachedChannel", "Channel"), &["GUILDS"]),
    ev(
        "THREAD_DELETE",
        D("ThreadDelete", "CachedChannel"),
        &["GUILDS"],
    ),
    ev("THREAD_LIST_SYNC", P("ThreadListSync"), &["GUILDS"]),
    ev("THREAD_MEMBER_UPDATE", B("ThreadMemberUpdate"), &["GUILDS"]),
    ev(
        "THREAD_MEMBERS_UPDATE",
        P("ThreadMembersUpdate"),
        &["GUILDS", "GUILD_MEMBERS"],
    ),
    ev("ENTITLEMENT_CREATE", B("Entitlement"), &[]),
    ev("ENTITLEMENT_UPDATE", B("Entitlement"), &[]),
    ev("ENTITLEMENT_DELETE", B("Entitlement"), &[]),
    ev("GUILD_CREATE", B("GuildCreate"), &["GUILDS"]),
    ev(
        "GUILD_UPDATE",
        U("CachedGuild", "PartialGuild"),
        &["GUILDS"],
    ),
    ev("GUILD_DELETE", D("GuildDelete", "CachedGuild"), &["GUILDS"]),
    ev(
        "GUILD_AUDIT_LOG_ENTRY_CREATE",
        B("GuildAuditLogEntryCreate"),
        &["GUILD_MODERATION"],
    ),
    ev("GUILD_BAN_ADD", P("BanAdd"), &["GUILD_MODERATION"]),
    ev("GUILD_BAN_REMOVE", P("BanRemove"), &["GUILD_MODERATION"]),
    ev(
        "GUILD_EMOJIS_UPDATE",
        U("Vec<CachedEmoji>", "GuildEmojisUpdate"),
        &["GUILD_EXPRESSIONS"],
    ),
    ev(
        "GUILD_STICKERS_UPDATE",
        U("Vec<CachedSticker>", "GuildStickersUpdate"),
        &["GUILD_EXPRESSIONS"],
    ),
    ev(
        "GUILD_INTEGRATIONS_UPDATE",
        P("GuildIntegrationsUpdate"),
        &["GUILD_INTEGRATIONS"],
    ),
    ev("GUILD_MEMBER_ADD", B("MemberAdd"), &["GUILD_MEMBERS"]),
    ev(
        "GUILD_MEMBER_REMOVE",
        D("MemberRemove", "CachedMember"),
        &["GUILD_MEMBERS"],
    ),
    ev(
        "GUILD_MEMBER_UPDATE",
        U("CachedMember", "MemberUpdate"),
        &["GUILD_MEMBERS"],
    ),
    ev("GUILD_MEMBERS_CHUNK", P("MemberChunk"), &[]),
    ev("GUILD_ROLE_CREATE", P("RoleCreate"), &["GUILDS"]),
    ev(
        "GUILD_ROLE_UPDATE",
        U("CachedRole", "RoleUpdate"),
        &["GUILDS"],
    ),
    ev(
        "GUILD_ROLE_DELETE",
        D("RoleDelete", "CachedRole"),
        &["GUILDS"],
    ),
    ev(
        "GUILD_SCHEDULED_EVENT_CREATE",
        B("GuildScheduledEvent"),
        &["GUILD_SCHEDULED_EVENTS"],
    ),
    ev(
        "GUILD_SCHEDULED_EVENT_UPDATE",
        B("GuildScheduledEvent"),
        &["GUILD_SCHEDULED_EVENTS"],
    ),
    ev(
        "GUILD_SCHEDULED_EVENT_DELETE",
        B("GuildScheduledEvent"),
        &["GUILD_SCHEDULED_EVENTS"],
    ),
    ev(
        "GUILD_SCHEDULED_EVENT_USER_ADD",
        P("GuildScheduledEventUserAdd"),
        &["GUILD_SCHEDULED_EVENTS"],
    ),
    ev(
        "GUILD_SCHEDULED_EVENT_USER_REMOVE",
        P("GuildScheduledEventUserRemove"),
        &["GUILD_SCHEDULED_EVENTS"],
    ),
    ev(
        "GUILD_SOUNDBOARD_SOUND_CREATE",
        B("SoundboardSound"),
        &["GUILD_EXPRESSIONS"],
    ),
    ev(
        "GUILD_SOUNDBOARD_SOUND_UPDATE",
        B("SoundboardSound"),
        &["GUILD_EXPRESSIONS"],
    ),
    ev(
        "GUILD_SOUNDBOARD_SOUND_DELETE",
        P("SoundboardSoundDelete"),
        &["GUILD_EXPRESSIONS"],
    ),
    ev(
        "GUILD_SOUNDBOARD_SOUNDS_UPDATE",
        P("SoundboardSounds"),
        &["GUILD_EXPRESSIONS"],
    ),
    ev("SOUNDBOARD_SOUNDS", P("SoundboardSounds"), &[]),
    ev(
        "INTEGRATION_CREATE",
        B("GuildIntegration"),
        &["GUILD_INTEGRATIONS"],
    ),
    ev(
        "INTEGRATION_UPDATE",
        B("GuildIntegration"),
        &["GUILD_INTEGRATIONS"],
    ),
    ev(
        "INTEGRATION_DELETE",
        P("IntegrationDelete"),
        &["GUILD_INTEGRATIONS"],
    ),
    ev("INTERACTION_CREATE", B("Interaction"), &[]),
    ev("INVITE_CREATE", B("InviteCreate"), &["GUILD_INVITES"]),
    ev("INVITE_DELETE", P("InviteDelete"), &["GUILD_INVITES"]),
    ev(
        "MESSAGE_CREATE",
        B("Message"),
        &["GUILD_MESSAGES", "DIRECT_MESSAGES"],
    ),
    ev(
        "MESSAGE_UPDATE",
        U("CachedMessage", "Message"),
        &["GUILD_MESSAGES", "DIRECT_MESSAGES"],
    ),
    ev(
        "MESSAGE_DELETE",
        D("MessageDelete", "CachedMessage"),
        &["GUILD_MESSAGES", "DIRECT_MESSAGES"],
    ),
    ev(
        "MESSAGE_DELETE_BULK",
        D("MessageDeleteBulk", "Vec<CachedMessage>"),
        &["GUILD_MESSAGES"],
    ),
    ev(
        "MESSAGE_REACTION_ADD",
        B("GatewayReaction"),
        &["GUILD_MESSAGE_REACTIONS", "DIRECT_MESSAGE_REACTIONS"],
    ),
    ev(
        "MESSAGE_REACTION_REMOVE",
        B("GatewayReaction"),
        &["GUILD_MESSAGE_REACTIONS", "DIRECT_MESSAGE_REACTIONS"],
    ),
    ev(
        "MESSAGE_REACTION_REMOVE_ALL",
        P("ReactionRemoveAll"),
        &["GUILD_MESSAGE_REACTIONS", "DIRECT_MESSAGE_REACTIONS"],
    ),
    ev(
        "MESSAGE_REACTION_REMOVE_EMOJI",
        P("ReactionRemoveEmoji"),
        &["GUILD_MESSAGE_REACTIONS", "DIRECT_MESSAGE_REACTIONS"],
    ),
    ev(
        "PRESENCE_UPDATE",
        U("CachedPresence", "Presence"),
        &["GUILD_PRESENCES"],
    ),
    ev("STAGE_INSTANCE_CREATE", P("StageInstance"), &["GUILDS"]),
    ev("STAGE_INSTANCE_UPDATE", P("StageInstance"), &["GUILDS"]),
    ev("STAGE_INSTANCE_DELETE", P("StageInstance"), &["GUILDS"]),
    ev("SUBSCRIPTION_CREATE", P("Subscription"), &[]),
    ev("SUBSCRIPTION_UPDATE", P("Subscription"), &[]),
    ev("SUBSCRIPTION_DELETE", P("Subscription"), &[]),
    ev(
        "TYPING_START",
        B("TypingStart"),
        &["GUILD_MESSAGE_TYPING", "DIRECT_MESSAGE_TYPING"],
    ),
    ev("USER_UPDATE", U("CurrentUser", "CurrentUser"), &[]),
    ev(
        "VOICE_CHANNEL_EFFECT_SEND",
        P("VoiceChannelEffectSend"),
        &["GUILD_VOICE_STATES"],
    ),
    ev(
        "VOICE_CHANNEL_START_TIME_UPDATE",
        P("VoiceChannelStartTimeUpdate"),
        &["GUILDS"],
    ),
    ev(
        "VOICE_CHANNEL_STATUS_UPDATE",
        P("VoiceChannelStatusUpdate"),
        &["GUILDS"],
    ),
    ev(
        "VOICE_STATE_UPDATE",
        U("CachedVoiceState", "VoiceState"),
        &["GUILD_VOICE_STATES"],
    ),
    ev("VOICE_SERVER_UPDATE", P("VoiceServerUpdate"), &[]),
    ev("WEBHOOKS_UPDATE", P("WebhooksUpdate"), &["GUILD_WEBHOOKS"]),
    ev(
        "MESSAGE_POLL_VOTE_ADD",
        P("MessagePollVoteAdd"),
        &["GUILD_MESSAGE_POLLS", "DIRECT_MESSAGE_POLLS"],
    ),
    ev(
        "MESSAGE_POLL_VOTE_REMOVE",
        P("MessagePollVoteRemove"),
        &["GUILD_MESSAGE_POLLS", "DIRECT_MESSAGE_POLLS"],
    ),
    ev("VOICE_READY", R("VoiceReady"), &[]),
    ev("VOICE_SPEAKING_UPDATE", R("VoiceSpeakingUpdate"), &[]),
    ev("VOICE_INCOMING_PACKET", R("VoiceIncomingPacket"), &[]),
    ev("SHARD_CONNECTED", R("ShardConnected"), &[]),
    ev("SHARD_DISCONNECTED", R("ShardDisconnected"), &[]),
    ev("SHARD_RESUMED", R("ShardResumed"), &[]),
    ev("UNKNOWN", Shape::Unknown, &[]),
];

impl EventDef {
    /// `MessageCreate`.
    pub(crate) fn variant(&self) -> String {
        self.name
            .split('_')
            .map(|word| {
                let mut chars = word.chars();
                match chars.next() {
                    Some(first) => first.to_string() + &chars.as_str().to_ascii_lowercase(),
                    None => String::new(),
                }
            })
            .collect()
    }

    /// `on_message_create`.
    pub(crate) fn handler(&self) -> String {
        format!("on_{}", self.name.to_ascii_lowercase())
    }

    /// Whether the gateway delivers it as a dispatch.
    pub(crate) fn is_dispatch(&self) -> bool {
        matches!(self.shape, P(_) | B(_) | U(..) | D(..))
    }
}

/// The event whose handler name is `handler`.
pub(crate) fn by_handler(handler: &str) -> Option<&'static EventDef> {
    EVENTS.iter().find(|def| def.handler() == handler)
}

/// The event named `name` (`MESSAGE_CREATE`, case-insensitive).
pub(crate) fn by_name(name: &str) -> Option<&'static EventDef> {
    EVENTS
        .iter()
        .find(|def| def.name.eq_ignore_ascii_case(name))
}

/// The closest handler name to a misspelt one, if any is close enough to be a likely typo.
pub(crate) fn closest_handler(handler: &str) -> Option<String> {
    EVENTS
        .iter()
        .map(|def| def.handler())
        .map(|name| (levenshtein(handler, &name), name))
        .filter(|(distance, name)| *distance <= (name.len() / 3).max(2))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

/// Gateway intents by Discord's name, with their bit.
pub(crate) const INTENT_BITS: &[(&str, u32)] = &[
    ("GUILDS", 0),
    ("GUILD_MEMBERS", 1),
    ("GUILD_MODERATION", 2),
    ("GUILD_EXPRESSIONS", 3),
    ("GUILD_INTEGRATIONS", 4),
    ("GUILD_WEBHOOKS", 5),
    ("GUILD_INVITES", 6),
    ("GUILD_VOICE_STATES", 7),
    ("GUILD_PRESENCES", 8),
    ("GUILD_MESSAGES", 9),
    ("GUILD_MESSAGE_REACTIONS", 10),
    ("GUILD_MESSAGE_TYPING", 11),
    ("DIRECT_MESSAGES", 12),
    ("DIRECT_MESSAGE_REACTIONS", 13),
    ("DIRECT_MESSAGE_TYPING", 14),
    ("MESSAGE_CONTENT", 15),
    ("GUILD_SCHEDULED_EVENTS", 16),
    ("AUTO_MODERATION_CONFIGURATION", 20),
    ("AUTO_MODERATION_EXECUTION", 21),
    ("GUILD_MESSAGE_POLLS", 24),
    ("DIRECT_MESSAGE_POLLS", 25),
];

impl EventDef {
    /// The union of the bits of the intents that deliver it.
    pub(crate) fn intent_bits(&self) -> u64 {
        self.intents
            .iter()
            .map(|name| {
                let (_, bit) = INTENT_BITS
                    .iter()
                    .find(|(known, _)| known == name)
                    .unwrap_or_else(|| panic!("the event table names an unknown intent {name}"));
                1u64 << bit
            })
            .fold(0, |acc, bit| acc | bit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_derive_variants_and_handlers() {
        let def = by_name("message_reaction_add").unwrap();
        assert_eq!(def.variant(), "MessageReactionAdd");
        assert_eq!(def.handler(), "on_message_reaction_add");
        assert_eq!(
            by_handler("on_guild_member_update").unwrap().name,
            "GUILD_MEMBER_UPDATE"
        );
    }

    #[test]
    fn suggests_the_closest_handler() {
        assert_eq!(
            closest_handler("on_mesage_create").as_deref(),
            Some("on_message_create")
        );
        assert_eq!(
            closest_handler("on_guild_membr_updat").as_deref(),
            Some("on_guild_member_update")
        );
        assert_eq!(closest_handler("on_something_else_entirely"), None);
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = EVENTS.iter().map(|def| def.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EVENTS.len());
        assert_eq!(EVENTS.iter().filter(|def| def.is_dispatch()).count(), 79);
    }
}
