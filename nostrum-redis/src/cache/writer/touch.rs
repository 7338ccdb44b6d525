//! What each event touched, and the Redis writes that mirror it from the in-memory store.

use std::collections::HashSet;

use nostrum_core::Event;
use nostrum_core::cache::{
    CacheBackend, CachedChannel, CachedGuild, CachedMember, CachedRole, CachedUser,
    ResourceType as R,
};
use nostrum_core::model::gateway::ShardId;
use nostrum_core::model::gateway::payload::incoming::GuildCreate;
use nostrum_core::model::id::Id;
use nostrum_core::model::id::marker::{
    ChannelMarker, GuildMarker, MessageMarker, RoleMarker, UserMarker,
};

use super::RedisCacheWriter;
use crate::cache::keys::{Keys, LISTS, PURGE_GUILD, REMOVE_MEMBER};
use crate::cache::mirror::{self, Json, Op};

type G = Id<GuildMarker>;
type C = Id<ChannelMarker>;
type U = Id<UserMarker>;

/// What an event touched, to be mirrored from the in-memory store once it is applied.
#[derive(Debug)]
pub(super) enum Touch {
    /// Everything of a guild: purged, then written again from memory.
    Guild(G),
    GuildFields(G),
    Unavailable(G),
    /// A channel; deleted from Redis when gone from memory if `delete`.
    Channel(Option<G>, C, bool),
    /// The guild's channels that were in memory before the event and are not anymore are deleted;
    /// with `threads`, every thread still there is written.
    ChannelsGone {
        guild: G,
        before: Vec<C>,
        threads: bool,
    },
    DropMessages(C),
    Role(G, Id<RoleMarker>),
    /// A member; removed from Redis when gone from memory if `delete`.
    Member(G, U, bool),
    User(U),
    /// A member, written only if the event changed it from `before` (hot events: messages).
    MemberIfChanged(G, U, Option<CachedMember>),
    /// A user, written only if the event changed it from `before` (hot events: presences).
    UserIfChanged(U, Option<CachedUser>),
    Presence(G, U),
    VoiceState(G, U),
    /// A per-guild list, by its index in [`LISTS`].
    List(G, usize),
    MessageCreate(Id<MessageMarker>),
    Message(Id<MessageMarker>),
    MessageGone(C, Id<MessageMarker>),
    CurrentUser,
    Prune(ShardId, HashSet<u64>),
}

impl RedisCacheWriter {
    fn keeps(&self, resource: R) -> bool {
        self.inner.resources.contains(resource)
    }

    fn keeps_guild_scoped(&self) -> bool {
        !self
            .inner
            .resources
            .difference(R::USER_CURRENT)
            .difference(R::MESSAGE)
            .is_empty()
    }

    /// What `event` will touch; reads the store as it was before the event where needed.
    pub(super) fn plan(&self, event: &Event) -> Vec<Touch> {
        use Touch as T;
        let local = &self.inner.local;
        let channels_gone = |guild: G, threads: bool| T::ChannelsGone {
            guild,
            before: local.guild_channels(guild),
            threads,
        };
        match event {
            Event::Ready(ready) => {
                let mut touches = vec![T::CurrentUser];
                if let Some(shard) = ready.shard.filter(|_| self.keeps_guild_scoped()) {
                    let listed = ready.guilds.iter().map(|g| g.id.get()).collect();
                    touches.push(T::Prune(shard, listed));
                }
                touches.extend(ready.guilds.iter().map(|g| T::Unavailable(g.id)));
                touches
            }
            Event::GuildCreate(create) => match &**create {
                GuildCreate::Available(guild) => vec![T::Guild(guild.id)],
                GuildCreate::Unavailable(guild) => vec![T::Guild(guild.id)],
            },
            Event::GuildUpdate(update) => vec![T::GuildFields(update.new.id)],
            Event::GuildDelete(delete) => vec![T::Guild(delete.event.id)],
            Event::ChannelCreate(channel) | Event::ThreadCreate(channel) => {
                vec![T::Channel(channel.guild_id, channel.id, true)]
            }
            Event::ChannelUpdate(update) | Event::ThreadUpdate(update) => {
                vec![T::Channel(update.new.guild_id, update.new.id, true)]
            }
            Event::ChannelDelete(delete) => {
                let (guild, id) = (delete.event.guild_id, delete.event.id);
                let mut touches = vec![T::DropMessages(id), T::Channel(guild, id, true)];
                touches.extend(guild.map(|guild| channels_gone(guild, false)));
                touches
            }
            Event::ThreadDelete(delete) => {
                let (guild, id) = (delete.event.guild_id, delete.event.id);
                vec![
                    T::DropMessages(id),
                    T::Channel(Some(guild), id, true),
                    channels_gone(guild, false),
                ]
            }
            Event::ThreadListSync(sync) => vec![channels_gone(sync.guild_id, true)],
            Event::GuildEmojisUpdate(update) => vec![T::List(update.new.guild_id, 0)],
            Event::GuildStickersUpdate(update) => vec![T::List(update.new.guild_id, 1)],
            Event::GuildMemberAdd(add) => vec![
                T::Member(add.guild_id, add.member.user.id, true),
                T::GuildFields(add.guild_id),
            ],
            Event::GuildMemberUpdate(update) => vec![
                T::Member(update.new.guild_id, update.new.user.id, true),
                T::User(update.new.user.id),
            ],
            Event::GuildMemberRemove(remove) => {
                let (guild, user) = (remove.event.guild_id, remove.event.user.id);
                vec![
                    T::Member(guild, user, true),
                    T::Presence(guild, user),
                    T::VoiceState(guild, user),
                    T::GuildFields(guild),
                ]
            }
            Event::GuildMembersChunk(chunk) => {
                let guild = chunk.guild_id;
                (chunk.members.iter())
                    .map(|member| T::Member(guild, member.user.id, false))
                    .chain(
                        chunk
                            .presences
                            .iter()
                            .map(|p| T::Presence(guild, p.user.id())),
                    )
                    .collect()
            }
            Event::GuildRoleCreate(create) => vec![T::Role(create.guild_id, create.role.id)],
            Event::GuildRoleUpdate(update) => {
                vec![T::Role(update.new.guild_id, update.new.role.id)]
            }
            Event::GuildRoleDelete(delete) => {
                vec![T::Role(delete.event.guild_id, delete.event.role_id)]
            }
            Event::MessageCreate(message) => {
                let author = message.author.id;
                let mut touches = vec![
                    T::MessageCreate(message.id),
                    T::UserIfChanged(author, local.user(author)),
                ];
                if let Some(guild) = message.guild_id {
                    touches.push(T::MemberIfChanged(
                        guild,
                        author,
                        local.member(guild, author),
                    ));
                    touches.push(T::Channel(Some(guild), message.channel_id, false));
                }
                touches
            }
            Event::MessageUpdate(update) => vec![T::Message(update.new.id)],
            Event::MessageDelete(delete) => {
                vec![T::MessageGone(delete.event.channel_id, delete.event.id)]
            }
            Event::MessageDeleteBulk(delete) => (delete.event.ids.iter())
                .map(|id| T::MessageGone(delete.event.channel_id, *id))
                .collect(),
            Event::PresenceUpdate(update) => {
                let user = update.new.user.id();
                vec![
                    T::Presence(update.new.guild_id, user),
                    T::UserIfChanged(user, local.user(user)),
                ]
            }
            Event::VoiceStateUpdate(update) => {
                let state = &update.new;
                let Some(guild) = state.guild_id else {
                    return Vec::new();
                };
                let mut touches = vec![T::VoiceState(guild, state.user_id)];
                if state.member.is_some() {
                    touches.push(T::Member(guild, state.user_id, false));
                    touches.push(T::User(state.user_id));
                }
                touches
            }
            Event::UserUpdate(update) => vec![T::CurrentUser, T::User(update.new.id)],
            Event::StageInstanceCreate(stage)
            | Event::StageInstanceUpdate(stage)
            | Event::StageInstanceDelete(stage) => vec![T::List(stage.guild_id, 2)],
            Event::GuildScheduledEventCreate(scheduled)
            | Event::GuildScheduledEventUpdate(scheduled)
            | Event::GuildScheduledEventDelete(scheduled) => {
                vec![T::List(scheduled.guild_id, 3)]
            }
            Event::GuildScheduledEventUserAdd(add) => vec![T::List(add.guild_id, 3)],
            Event::GuildScheduledEventUserRemove(remove) => vec![T::List(remove.guild_id, 3)],
            Event::GuildSoundboardSoundCreate(sound) | Event::GuildSoundboardSoundUpdate(sound) => {
                sound.guild_id.map(|g| T::List(g, 4)).into_iter().collect()
            }
            Event::GuildSoundboardSoundDelete(delete) => vec![T::List(delete.guild_id, 4)],
            Event::GuildSoundboardSoundsUpdate(sounds) | Event::SoundboardSounds(sounds) => {
                vec![T::List(sounds.guild_id, 4)]
            }
            _ => Vec::new(),
        }
    }

    /// The writes that mirror `touch`, from the store as it is after the event.
    pub(super) fn emit(&self, touch: Touch, out: &mut Writes<'_>) {
        let local = &self.inner.local;
        let keys = &self.inner.keys;
        match touch {
            Touch::Guild(guild) if self.keeps_guild_scoped() => {
                out.push(Op::Eval {
                    script: PURGE_GUILD,
                    args: vec![guild.to_string()],
                });
                out.entered.remove(&guild);
                if let Some(snapshot) = local.guild_snapshot(guild) {
                    out.entry(guild);
                    if let Some(fields) = snapshot.guild {
                        out.guild_fields(guild, Some(fields));
                    }
                    for channel in snapshot.channels {
                        out.channel(guild, channel);
                    }
                    for role in snapshot.roles {
                        out.role(guild, role);
                    }
                    for (member, user) in snapshot.members {
                        out.member(member, user);
                    }
                    for presence in snapshot.presences {
                        out.hset(
                            guild,
                            "presences",
                            presence.user_id,
                            Json::Presence(presence),
                        );
                    }
                    for state in snapshot.voice_states {
                        out.hset(
                            guild,
                            "voice_states",
                            state.user_id,
                            Json::VoiceState(state),
                        );
                    }
                    out.list(guild, 0, Json::Emojis(snapshot.emojis));
                    out.list(guild, 1, Json::Stickers(snapshot.stickers));
                    out.list(guild, 2, Json::StageInstances(snapshot.stage_instances));
                    out.list(guild, 3, Json::ScheduledEvents(snapshot.scheduled_events));
                    out.list(guild, 4, Json::SoundboardSounds(snapshot.soundboard_sounds));
                    for message in snapshot.messages {
                        out.push(Op::PushMessage {
                            message,
                            cap: self.inner.message_cap,
                        });
                    }
                }
                self.emit(Touch::Unavailable(guild), out);
            }
            Touch::GuildFields(guild) if self.keeps(R::GUILD) => {
                out.guild_fields(guild, local.guild(guild));
            }
            Touch::Unavailable(guild) if self.keeps_guild_scoped() => {
                let key = keys.unavailable();
                let member = guild.get();
                out.push(if local.is_unavailable(guild) {
                    Op::SAdd { key, member }
                } else {
                    Op::SRem { key, member }
                });
            }
            Touch::Channel(guild, id, delete) if self.keeps(R::CHANNEL) => {
                match local.channel(id) {
                    Some(channel) => match channel.guild_id.or(guild) {
                        Some(guild) => out.channel(guild, channel),
                        None => out.push(Op::Set {
                            key: keys.channel(id),
                            value: Json::Channel(channel),
                        }),
                    },
                    None if delete => out.channel_gone(guild, id),
                    None => {}
                }
            }
            Touch::ChannelsGone {
                guild,
                before,
                threads,
            } if self.keeps(R::CHANNEL) => {
                let after: HashSet<C> = local.guild_channels(guild).into_iter().collect();
                for id in before.into_iter().filter(|id| !after.contains(id)) {
                    out.channel_gone(Some(guild), id);
                }
                if threads {
                    for channel in after.into_iter().filter_map(|id| local.channel(id)) {
                        if channel.kind.is_thread() {
                            out.channel(guild, channel);
                        }
                    }
                }
            }
            Touch::DropMessages(channel) if self.keeps(R::MESSAGE) => {
                out.push(mirror::drop_messages(channel.get()));
            }
            Touch::Role(guild, id) if self.keeps(R::ROLE) => match local.role(id) {
                Some(role) => out.role(guild, role),
                None => {
                    out.push(Op::Del { key: keys.role(id) });
                    out.push(Op::SRem {
                        key: keys.of_guild(guild, "roles"),
                        member: id.get(),
                    });
                }
            },
            Touch::Member(guild, user, delete) if self.keeps(R::MEMBER) || self.keeps(R::GUILD) => {
                match local.member(guild, user) {
                    Some(member) => out.member(member, local.user(user)),
                    None if delete => out.push(Op::Eval {
                        script: REMOVE_MEMBER,
                        args: vec![guild.to_string(), user.to_string()],
                    }),
                    None => {}
                }
            }
            Touch::MemberIfChanged(guild, user, before) if local.member(guild, user) != before => {
                self.emit(Touch::Member(guild, user, false), out);
            }
            Touch::UserIfChanged(user, before) if local.user(user) != before => {
                self.emit(Touch::User(user), out);
            }
            Touch::User(user) if self.keeps(R::USER) => {
                if let Some(cached) = local.user(user) {
                    out.push(Op::Set {
                        key: keys.user(user),
                        value: Json::User(cached),
                    });
                }
            }
            Touch::Presence(guild, user) if self.keeps(R::PRESENCE) => {
                match local.presence(guild, user) {
                    Some(presence) => out.hset(guild, "presences", user, Json::Presence(presence)),
                    None => out.push(Op::HDel {
                        key: keys.of_guild(guild, "presences"),
                        field: user.get(),
                    }),
                }
            }
            Touch::VoiceState(guild, user) if self.keeps(R::VOICE_STATE) => {
                match local.voice_state(guild, user) {
                    Some(state) => out.hset(guild, "voice_states", user, Json::VoiceState(state)),
                    None => out.push(Op::HDel {
                        key: keys.of_guild(guild, "voice_states"),
                        field: user.get(),
                    }),
                }
            }
            Touch::List(guild, index) => {
                let json = match index {
                    0 if self.keeps(R::EMOJI) => Json::Emojis(local.guild_emojis(guild)),
                    1 if self.keeps(R::STICKER) => Json::Stickers(local.guild_stickers(guild)),
                    2 if self.keeps(R::STAGE_INSTANCE) => {
                        Json::StageInstances(local.guild_stage_instances(guild))
                    }
                    3 if self.keeps(R::SCHEDULED_EVENT) => {
                        Json::ScheduledEvents(local.guild_scheduled_events(guild))
                    }
                    4 if self.keeps(R::SOUNDBOARD) => {
                        Json::SoundboardSounds(local.guild_soundboard_sounds(guild))
                    }
                    _ => return,
                };
                out.entry(guild);
                out.list(guild, index, json);
            }
            Touch::MessageCreate(id) if self.keeps(R::MESSAGE) => {
                if let Some(message) = local.message(id) {
                    out.push(Op::PushMessage {
                        message,
                        cap: self.inner.message_cap,
                    });
                }
            }
            Touch::Message(id) if self.keeps(R::MESSAGE) => {
                if let Some(message) = local.message(id) {
                    out.push(Op::Set {
                        key: keys.message(id),
                        value: Json::Message(message),
                    });
                }
            }
            Touch::MessageGone(channel, id) if self.keeps(R::MESSAGE) => {
                out.push(Op::Del {
                    key: keys.message(id),
                });
                out.push(Op::LRem {
                    key: keys.channel_messages(channel),
                    member: id.get(),
                });
            }
            Touch::CurrentUser if self.keeps(R::USER_CURRENT) => {
                if let Some(user) = local.current_user() {
                    out.push(Op::Set {
                        key: keys.current_user(),
                        value: Json::CurrentUser(user),
                    });
                }
            }
            Touch::Prune(shard, listed) => out.push(Op::Prune {
                number: shard.number(),
                total: shard.total(),
                listed,
            }),
            _ => {}
        }
    }
}

/// The writes of one event, with the guilds already added to the set of guild entries.
pub(super) struct Writes<'a> {
    keys: &'a Keys,
    ops: Vec<Op>,
    entered: HashSet<G>,
}

impl<'a> Writes<'a> {
    pub(super) fn new(keys: &'a Keys) -> Self {
        Self {
            keys,
            ops: Vec::new(),
            entered: HashSet::new(),
        }
    }

    pub(super) fn into_ops(self) -> Vec<Op> {
        self.ops
    }
    fn push(&mut self, op: Op) {
        self.ops.push(op);
    }

    /// Adds the guild to the set of guilds with anything cached (once per event).
    fn entry(&mut self, guild: G) {
        if self.entered.insert(guild) {
            self.ops.push(Op::SAdd {
                key: self.keys.entries(),
                member: guild.get(),
            });
        }
    }

    fn guild_fields(&mut self, guild: G, fields: Option<CachedGuild>) {
        match fields {
            Some(fields) => {
                self.entry(guild);
                self.push(Op::Set {
                    key: self.keys.guild(guild),
                    value: Json::Guild(fields),
                });
                self.push(Op::SAdd {
                    key: self.keys.guilds(),
                    member: guild.get(),
                });
            }
            None => {
                self.push(Op::Del {
                    key: self.keys.guild(guild),
                });
                self.push(Op::SRem {
                    key: self.keys.guilds(),
                    member: guild.get(),
                });
            }
        }
    }

    fn channel(&mut self, guild: G, channel: CachedChannel) {
        self.entry(guild);
        let id = channel.id;
        self.push(Op::Set {
            key: self.keys.channel(id),
            value: Json::Channel(channel),
        });
        self.push(Op::SAdd {
            key: self.keys.of_guild(guild, "channels"),
            member: id.get(),
        });
    }

    fn channel_gone(&mut self, guild: Option<G>, id: C) {
        self.push(Op::Del {
            key: self.keys.channel(id),
        });
        if let Some(guild) = guild {
            self.push(Op::SRem {
                key: self.keys.of_guild(guild, "channels"),
                member: id.get(),
            });
        }
    }

    fn role(&mut self, guild: G, role: CachedRole) {
        self.entry(guild);
        let id = role.id;
        self.push(Op::Set {
            key: self.keys.role(id),
            value: Json::Role(role),
        });
        self.push(Op::SAdd {
            key: self.keys.of_guild(guild, "roles"),
            member: id.get(),
        });
    }

    fn member(&mut self, member: CachedMember, user: Option<CachedUser>) {
        let (guild, user_id) = (member.guild_id, member.user_id);
        self.hset(guild, "members", user_id, Json::Member(member));
        self.push(Op::SAdd {
            key: self.keys.user_guilds(user_id),
            member: guild.get(),
        });
        if let Some(user) = user {
            self.push(Op::Set {
                key: self.keys.user(user_id),
                value: Json::User(user),
            });
        }
    }

    fn hset(&mut self, guild: G, what: &str, user: U, value: Json) {
        self.entry(guild);
        self.push(Op::HSet {
            key: self.keys.of_guild(guild, what),
            field: user.get(),
            value,
        });
    }

    fn list(&mut self, guild: G, index: usize, value: Json) {
        self.push(Op::Set {
            key: self.keys.of_guild(guild, LISTS[index]),
            value,
        });
    }
}
