//! Shard handover: stop a shard in one process and resume its session in another, without a fresh
//! IDENTIFY. The session id, sequence and resume URL travel through Redis.
//!
//! The giving process stops the shard with a resumable close once every event it received went
//! through its pipeline, flushes what it publishes, and stores the session under
//! `{prefix}:session:{shard}`; the taking process reads and deletes it (`GETDEL`, so only one
//! process resumes it) and resumes: Discord replays what came after the stored sequence, so no
//! event is lost between the two. [`Handover::serve`] runs the control loop that lets an operator
//! (or another process) ask a gateway process to give or take a shard.

use std::time::Duration;

use nostrum_core::{
    client::ShardManager,
    gateway::{SessionInfo, ShardId},
};
use redis::{AsyncCommands, aio::ConnectionManager};
use serde::{Deserialize, Serialize};

use crate::{RedisCacheWriter, RedisPublisher};

/// How long a stored session stays in Redis (Discord keeps a session resumable for a short while
/// only; a stale one is refused with op 9 and the shard identifies).
const SESSION_TTL: Duration = Duration::from_secs(300);

/// An instruction to a gateway process, pushed on its control list `{prefix}:control:{node}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Command {
    /// Stop shard `shard` here, keep its session, and tell node `to` to take it.
    Give {
        /// The shard number.
        shard: u32,
        /// The node that takes it.
        to: String,
    },
    /// Start shard `shard` here, resuming its stored session if there is one.
    Take {
        /// The shard number.
        shard: u32,
    },
}

/// Moves shards between gateway processes through Redis.
#[derive(Clone)]
pub struct Handover {
    conn: ConnectionManager,
    prefix: String,
    cache: Option<RedisCacheWriter>,
}

impl std::fmt::Debug for Handover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handover")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Handover {
    /// Connects; keys live under `prefix` (the one the publisher and workers use).
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn new(client: redis::Client, prefix: impl Into<String>) -> redis::RedisResult<Self> {
        Ok(Self {
            conn: ConnectionManager::new(client).await?,
            prefix: prefix.into(),
            cache: None,
        })
    }

    /// Keeps `cache` (this process's [`RedisCacheWriter`]) right across handovers: flushed to Redis
    /// before a shard is given, and the taken shard's guilds loaded from Redis before its session
    /// is resumed (Discord does not send their GUILD_CREATE again), so old values stay right.
    #[must_use]
    pub fn with_cache(mut self, cache: RedisCacheWriter) -> Self {
        self.cache = Some(cache);
        self
    }

    fn session_key(&self, shard: u32) -> String {
        format!("{}:session:{shard}", self.prefix)
    }

    fn control_key(&self, node: &str) -> String {
        format!("{}:control:{node}", self.prefix)
    }

    /// Stops shard `number` of this process without ending its session, waits until its events
    /// went through the pipeline, flushes `publisher`, and stores the session in Redis. Returns the
    /// stored session, `None` when the shard did not run here or had no session yet.
    ///
    /// # Errors
    /// When the session cannot be stored (the shard is stopped either way; another process then
    /// identifies it).
    pub async fn give(
        &self,
        manager: &ShardManager,
        number: u32,
        publisher: Option<&RedisPublisher>,
    ) -> redis::RedisResult<Option<SessionInfo>> {
        let session = manager.hand_over(number).await;
        if let Some(publisher) = publisher {
            publisher.flush().await;
        }
        if let Some(cache) = &self.cache
            && let Err(err) = cache.flush().await
        {
            tracing::warn!(shard = number, error = %err, "could not flush the cache before the handover");
        }
        if let Some(session) = &session {
            let json = serde_json::to_string(session).map_err(|err| {
                redis::RedisError::from((
                    redis::ErrorKind::Client,
                    "session not serialisable",
                    err.to_string(),
                ))
            })?;
            let mut conn = self.conn.clone();
            let ttl = SESSION_TTL.as_secs();
            conn.set_ex::<_, _, ()>(self.session_key(number), json, ttl)
                .await?;
            tracing::info!(
                shard = number,
                seq = session.sequence,
                "shard handed over: session stored"
            );
        }
        Ok(session)
    }

    /// Starts shard `id` in this process: resumes the session another process stored (taking it,
    /// so no other process resumes it too), or identifies when there is none. Returns whether it
    /// resumed.
    ///
    /// # Errors
    /// When Redis cannot be reached (the shard is not started).
    pub async fn take(&self, manager: &ShardManager, id: ShardId) -> redis::RedisResult<bool> {
        let mut conn = self.conn.clone();
        let stored: Option<String> = redis::cmd("GETDEL")
            .arg(self.session_key(id.number))
            .query_async(&mut conn)
            .await?;
        let session = stored.and_then(|json| match serde_json::from_str::<SessionInfo>(&json) {
            Ok(session) => Some(session),
            Err(err) => {
                tracing::warn!(shard = %id, error = %err, "stored session unreadable; identifying");
                None
            }
        });
        if session.is_some()
            && let Some(cache) = &self.cache
        {
            match cache.warm(id).await {
                Ok(guilds) => tracing::info!(shard = %id, guilds, "cache warmed from Redis"),
                Err(err) => {
                    tracing::warn!(shard = %id, error = %err, "could not warm the cache; old values may be missing");
                }
            }
        }
        Ok(match session {
            Some(session) => {
                tracing::info!(shard = %id, seq = session.sequence, "resuming a handed-over session");
                manager.resume(id, &session)
            }
            None => {
                manager.start(id);
                false
            }
        })
    }

    /// Pushes `command` to the control list of gateway process `node`.
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn send(&self, node: &str, command: &Command) -> redis::RedisResult<()> {
        let json = serde_json::to_string(command).unwrap_or_default();
        let mut conn = self.conn.clone();
        conn.rpush(self.control_key(node), json).await
    }

    /// The control loop of gateway process `node`: takes commands from its control list and carries
    /// them out on `manager` (shard total `total`), until the client stops. Run it beside
    /// [`Client::run`](nostrum_core::Client::run):
    /// `tokio::spawn(handover.serve(redis, "gw-a".into(), client.shards().clone(), total, Some(publisher)))`.
    ///
    /// # Errors
    /// When its blocking connection to Redis cannot be opened.
    pub async fn serve(
        self,
        client: redis::Client,
        node: String,
        manager: ShardManager,
        total: u32,
        publisher: Option<RedisPublisher>,
    ) -> redis::RedisResult<()> {
        let node = node.as_str();
        // BLPOP holds its connection: a dedicated one.
        let mut blocking = client
            .get_multiplexed_async_connection_with_config(
                &redis::AsyncConnectionConfig::new()
                    .set_response_timeout(Some(Duration::from_secs(6))),
            )
            .await?;
        let key = self.control_key(node);
        tracing::info!(node, "control loop ready");
        loop {
            let popped: redis::RedisResult<Option<(String, String)>> =
                blocking.blpop(&key, 1.0).await;
            let json = match popped {
                Ok(Some((_, json))) => json,
                Ok(None) => continue,
                Err(err) => {
                    tracing::warn!(error = %err, "reading the control list failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            let command = match serde_json::from_str::<Command>(&json) {
                Ok(command) => command,
                Err(err) => {
                    tracing::warn!(error = %err, "unknown control command ignored");
                    continue;
                }
            };
            tracing::info!(node, ?command, "control command");
            let done = match &command {
                Command::Give { shard, to } => {
                    match self.give(&manager, *shard, publisher.as_ref()).await {
                        Ok(_) => self.send(to, &Command::Take { shard: *shard }).await,
                        Err(err) => Err(err),
                    }
                }
                Command::Take { shard } => self
                    .take(&manager, ShardId::new(*shard, total))
                    .await
                    .map(|_| ()),
            };
            if let Err(err) = done {
                tracing::warn!(node, ?command, error = %err, "control command failed");
            }
        }
    }
}
