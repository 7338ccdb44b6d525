//! The writer's background task: applies queued writes to Redis in order, in pipelined `MULTI`
//! transactions, off the shards' tasks.

use std::collections::HashSet;
use std::time::Duration;

use nostrum_core::cache::{
    CachedChannel, CachedEmoji, CachedGuild, CachedMember, CachedMessage, CachedPresence,
    CachedRole, CachedSticker, CachedUser, CachedVoiceState,
};
use nostrum_core::event::SoundboardSound;
use nostrum_core::model::channel::StageInstance;
use nostrum_core::model::guild::scheduled_event::GuildScheduledEvent;
use nostrum_core::model::user::CurrentUser;
use redis::aio::ConnectionManager;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use super::keys::{DROP_MESSAGES, Keys, PURGE_GUILD};

/// A value stored as JSON: one of the cached models, or a guild's list of them.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum Json {
    Guild(CachedGuild),
    Channel(CachedChannel),
    Role(CachedRole),
    Member(CachedMember),
    User(CachedUser),
    Presence(CachedPresence),
    VoiceState(CachedVoiceState),
    Message(CachedMessage),
    CurrentUser(CurrentUser),
    Emojis(Vec<CachedEmoji>),
    Stickers(Vec<CachedSticker>),
    StageInstances(Vec<StageInstance>),
    ScheduledEvents(Vec<GuildScheduledEvent>),
    SoundboardSounds(Vec<SoundboardSound>),
}

/// One write, in the order the writer queued it.
#[derive(Debug)]
pub(crate) enum Op {
    Set {
        key: String,
        value: Json,
    },
    Del {
        key: String,
    },
    SAdd {
        key: String,
        member: u64,
    },
    SRem {
        key: String,
        member: u64,
    },
    HSet {
        key: String,
        field: u64,
        value: Json,
    },
    HDel {
        key: String,
        field: u64,
    },
    LRem {
        key: String,
        member: u64,
    },
    /// A script of [`super::keys`], called with the prefix then `args`.
    Eval {
        script: &'static str,
        args: Vec<String>,
    },
    /// A message appended to its channel's list (see [`super::keys::PUSH_MESSAGE`]).
    PushMessage {
        message: CachedMessage,
        cap: usize,
    },
    /// `READY` of a new session: every guild of the shard it does not list is gone.
    Prune {
        number: u32,
        total: u32,
        listed: HashSet<u64>,
    },
    /// Answered once every earlier write was applied: `true` if none was dropped since the last
    /// flush.
    Flush(oneshot::Sender<bool>),
}

/// How many events' writes go into one transaction at most.
const MAX_EVENTS: usize = 256;
/// How many times a write that failed on the connection is tried before it is dropped.
const ATTEMPTS: u32 = 6;

fn to_json(value: &Json) -> String {
    // The cached models serialize to JSON infallibly (no maps with non-string keys).
    serde_json::to_string(value).unwrap_or_else(|error| {
        tracing::error!(%error, "a cached value did not serialize");
        "null".to_owned()
    })
}

fn add(pipe: &mut redis::Pipeline, keys: &Keys, op: Op) {
    match op {
        Op::Set { key, value } => {
            pipe.set(key, to_json(&value)).ignore();
        }
        Op::Del { key } => {
            pipe.del(key).ignore();
        }
        Op::SAdd { key, member } => {
            pipe.sadd(key, member).ignore();
        }
        Op::SRem { key, member } => {
            pipe.srem(key, member).ignore();
        }
        Op::HSet { key, field, value } => {
            pipe.hset(key, field, to_json(&value)).ignore();
        }
        Op::HDel { key, field } => {
            pipe.hdel(key, field).ignore();
        }
        Op::LRem { key, member } => {
            pipe.lrem(key, 0, member).ignore();
        }
        Op::Eval { script, args } => {
            pipe.cmd("EVAL")
                .arg(script)
                .arg(0)
                .arg(keys.prefix())
                .arg(args)
                .ignore();
        }
        Op::PushMessage { message, cap } => {
            let (channel, id) = (message.channel_id.get(), message.id.get());
            let json = to_json(&Json::Message(message));
            pipe.cmd("EVAL")
                .arg(super::keys::PUSH_MESSAGE)
                .arg(0)
                .arg(keys.prefix())
                .arg(channel)
                .arg(id)
                .arg(json)
                .arg(cap)
                .ignore();
        }
        Op::Prune { .. } | Op::Flush(_) => unreachable!("handled by the task"),
    }
}

/// Runs the queue until every writer handle is gone.
pub(crate) async fn run(
    mut conn: ConnectionManager,
    mut rx: mpsc::UnboundedReceiver<Vec<Op>>,
    keys: Keys,
) {
    let mut dropped = false;
    while let Some(first) = rx.recv().await {
        let mut events = vec![first];
        while events.len() < MAX_EVENTS {
            match rx.try_recv() {
                Ok(ops) => events.push(ops),
                Err(_) => break,
            }
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        let mut queued = 0;
        let mut waiters = Vec::new();
        for op in events.into_iter().flatten() {
            match op {
                Op::Flush(waiter) => waiters.push(waiter),
                Op::Prune {
                    number,
                    total,
                    listed,
                } => {
                    if queued > 0 {
                        dropped |= !exec(&mut conn, &pipe).await;
                        pipe = redis::pipe();
                        pipe.atomic();
                        queued = 0;
                    }
                    dropped |= !prune(&mut conn, &keys, number, total, &listed).await;
                }
                op => {
                    add(&mut pipe, &keys, op);
                    queued += 1;
                }
            }
        }
        if queued > 0 {
            dropped |= !exec(&mut conn, &pipe).await;
        }
        if !waiters.is_empty() {
            for waiter in waiters {
                // The flusher may have stopped waiting.
                let _ = waiter.send(!dropped);
            }
            dropped = false;
        }
    }
}

/// Applies a transaction, trying again while the connection fails; `false` when it was dropped.
async fn exec(conn: &mut ConnectionManager, pipe: &redis::Pipeline) -> bool {
    let mut delay = Duration::from_millis(50);
    for attempt in 1..=ATTEMPTS {
        match pipe.exec_async(conn).await {
            Ok(()) => return true,
            Err(error) if retryable(&error) && attempt < ATTEMPTS => {
                tracing::warn!(%error, attempt, "redis cache: write failed, trying again");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Err(error) => {
                tracing::error!(%error, "redis cache: writes dropped; the shared cache may differ until the guilds are sent again");
                return false;
            }
        }
    }
    false
}

fn retryable(error: &redis::RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
}

/// Purges every guild of shard `number` of `total` that `READY` did not list.
async fn prune(
    conn: &mut ConnectionManager,
    keys: &Keys,
    number: u32,
    total: u32,
    listed: &HashSet<u64>,
) -> bool {
    let known: redis::RedisResult<(Vec<u64>, Vec<u64>)> = redis::pipe()
        .smembers(keys.entries())
        .smembers(keys.unavailable())
        .query_async(conn)
        .await;
    let (entries, unavailable) = match known {
        Ok(known) => known,
        Err(error) => {
            tracing::error!(%error, "redis cache: could not read the guilds to prune");
            return false;
        }
    };
    let mut pipe = redis::pipe();
    pipe.atomic();
    let mut any = false;
    let gone: HashSet<u64> = (entries.into_iter().chain(unavailable))
        .filter(|id| of_shard(*id, number, total) && !listed.contains(id))
        .collect();
    for id in gone {
        any = true;
        pipe.cmd("EVAL")
            .arg(PURGE_GUILD)
            .arg(0)
            .arg(keys.prefix())
            .arg(id)
            .ignore();
        pipe.srem(keys.unavailable(), id).ignore();
    }
    !any || exec(conn, &pipe).await
}

/// Whether guild `id` belongs to shard `number` of `total`.
pub(crate) fn of_shard(id: u64, number: u32, total: u32) -> bool {
    total > 0 && (id >> 22) % u64::from(total) == u64::from(number)
}

/// Drops a channel's messages.
pub(crate) fn drop_messages(channel: u64) -> Op {
    Op::Eval {
        script: DROP_MESSAGES,
        args: vec![channel.to_string()],
    }
}
