//! Request guild members (op 8), awaitable: the chunks that answer it are gathered by nonce.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde_json::json;
use tokio::sync::oneshot;
use twilight_model::gateway::payload::incoming::MemberChunk;
use twilight_model::gateway::presence::Presence;
use twilight_model::guild::Member;
use twilight_model::id::Id;
use twilight_model::id::marker::{GuildMarker, UserMarker};

use crate::gateway::{GatewayError, ShardSender};

/// What to ask for.
#[derive(Clone, Debug)]
#[must_use]
pub struct MembersRequest {
    guild_id: Id<GuildMarker>,
    query: Option<String>,
    limit: u32,
    user_ids: Vec<Id<UserMarker>>,
    presences: bool,
    timeout: Duration,
}

impl MembersRequest {
    /// Every member of the guild (needs the GUILD_MEMBERS intent).
    pub fn all(guild_id: Id<GuildMarker>) -> Self {
        Self {
            guild_id,
            query: Some(String::new()),
            limit: 0,
            user_ids: Vec::new(),
            presences: false,
            timeout: Duration::from_secs(60),
        }
    }

    /// Members whose name starts with `prefix`, at most `limit` (at most 100).
    pub fn query(guild_id: Id<GuildMarker>, prefix: impl Into<String>, limit: u32) -> Self {
        Self {
            query: Some(prefix.into()),
            limit: limit.min(100),
            ..Self::all(guild_id)
        }
    }

    /// These users (at most 100).
    pub fn users(
        guild_id: Id<GuildMarker>,
        user_ids: impl IntoIterator<Item = Id<UserMarker>>,
    ) -> Self {
        Self {
            query: None,
            user_ids: user_ids.into_iter().take(100).collect(),
            ..Self::all(guild_id)
        }
    }

    /// Ask for their presences too (needs GUILD_PRESENCES).
    pub fn presences(mut self, presences: bool) -> Self {
        self.presences = presences;
        self
    }

    /// How long to wait for the last chunk (default 60 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// The members gathered from every chunk of one request.
#[derive(Clone, Debug, Default)]
pub struct GuildMembers {
    /// The members.
    pub members: Vec<Member>,
    /// Their presences, when asked for.
    pub presences: Vec<Presence>,
    /// Requested users who are not members.
    pub not_found: Vec<Id<UserMarker>>,
    /// How many chunks answered.
    pub chunks: u32,
}

/// Why a members request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MembersError {
    /// The command could not be sent.
    #[error("the request could not be sent: {0}")]
    Command(#[from] GatewayError),
    /// Not every chunk arrived in time; the ones that did are kept.
    #[error("{} chunk(s) arrived before the timeout; the rest did not", .0.chunks)]
    Timeout(GuildMembers),
}

struct Pending {
    gathered: GuildMembers,
    done: Option<oneshot::Sender<GuildMembers>>,
}

/// The requests in flight, by nonce.
#[derive(Default)]
pub(crate) struct MemberRequests {
    pending: Mutex<HashMap<String, Pending>>,
    next: AtomicU64,
}

impl std::fmt::Debug for MemberRequests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemberRequests")
    }
}

impl MemberRequests {
    /// Whether any request waits for chunks.
    pub(crate) fn any_pending(&self) -> bool {
        !self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }

    /// Sends op 8 and gathers its chunks.
    pub(crate) async fn request(
        &self,
        sender: &ShardSender,
        request: MembersRequest,
    ) -> Result<GuildMembers, MembersError> {
        let nonce = format!("nostrum-{}", self.next.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                nonce.clone(),
                Pending {
                    gathered: GuildMembers::default(),
                    done: Some(tx),
                },
            );
        let mut d = json!({ "guild_id": request.guild_id, "limit": request.limit, "presences": request.presences, "nonce": nonce });
        match request.query {
            Some(query) => d["query"] = json!(query),
            None => d["user_ids"] = json!(request.user_ids),
        }
        if let Err(err) = sender.request_guild_members(d) {
            self.pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&nonce);
            return Err(err.into());
        }
        let result = tokio::time::timeout(request.timeout, rx).await;
        let leftover = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&nonce);
        match result {
            Ok(Ok(members)) => Ok(members),
            _ => Err(MembersError::Timeout(
                leftover.map(|pending| pending.gathered).unwrap_or_default(),
            )),
        }
    }

    /// Takes a chunk; returns whether it answered one of our requests.
    pub(crate) fn feed(&self, chunk: &MemberChunk) -> bool {
        let Some(nonce) = &chunk.nonce else {
            return false;
        };
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(entry) = pending.get_mut(nonce) else {
            return false;
        };
        entry.gathered.members.extend(chunk.members.iter().cloned());
        entry
            .gathered
            .presences
            .extend(chunk.presences.iter().cloned());
        entry
            .gathered
            .not_found
            .extend(chunk.not_found.iter().copied());
        entry.gathered.chunks += 1;
        if entry.gathered.chunks >= chunk.chunk_count
            && let Some(mut finished) = pending.remove(nonce)
            && let Some(done) = finished.done.take()
        {
            let _ = done.send(finished.gathered);
        }
        true
    }
}
