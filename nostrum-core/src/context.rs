//! `Context`: what a handler gets beside its payload: the shard it came from and the handles to act.

use std::sync::Arc;
use std::time::Duration;

use crate::cache::Cache;
use crate::client::{GuildMembers, MemberRequests, MembersError, MembersRequest};
use crate::gateway::{GatewayError, GatewayErrorKind, ShardId, ShardSender, ShardState};
use crate::http::Http;

/// Handed to every handler. Cheap to clone (one reference count).
///
/// It carries the shard's state (id, total, sequence, session id, latency: Nostrum's `WSState`),
/// gateway commands for that shard ([`ShardContext::sender`]) and the REST client ([`Context::http`]).
#[derive(Clone, Debug)]
pub struct Context(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    shard: ShardContext,
    http: Http,
    cache: Cache,
    members: Arc<MemberRequests>,
}

impl Context {
    /// A context for the events of one shard.
    pub fn new(shard: ShardContext, http: Http, cache: Cache) -> Self {
        Self::with_members(shard, http, cache, Arc::default())
    }

    pub(crate) fn with_members(
        shard: ShardContext,
        http: Http,
        cache: Cache,
        members: Arc<MemberRequests>,
    ) -> Self {
        Self(Arc::new(Inner {
            shard,
            http,
            cache,
            members,
        }))
    }

    /// A context attached to no shard, for tests and scripts: its gateway commands fail with an error
    /// and its shard state is empty.
    pub fn detached(http: Http) -> Self {
        Self::new(ShardContext::detached(), http, Cache::none())
    }

    /// The shard the event came from.
    pub fn shard(&self) -> &ShardContext {
        &self.0.shard
    }

    /// The REST client.
    pub fn http(&self) -> &Http {
        &self.0.http
    }

    /// The cache: it saw this event before the handler did.
    pub fn cache(&self) -> &Cache {
        &self.0.cache
    }

    /// Requests guild members on this shard (gateway op 8) and gathers every chunk of the answer.
    ///
    /// # Errors
    /// When the command cannot be sent (no shard), or not every chunk arrived in time.
    pub async fn request_guild_members(
        &self,
        request: MembersRequest,
    ) -> Result<GuildMembers, MembersError> {
        let sender = self.shard().sender()?;
        self.0.members.request(sender, request).await
    }
}

/// The shard an event came from: its state, and a sender for its gateway commands.
#[derive(Clone, Debug)]
pub struct ShardContext {
    attached: Option<(Arc<ShardState>, ShardSender)>,
    /// The shard of an event received from another process.
    remote: Option<ShardId>,
}

impl ShardContext {
    /// The context of a running shard.
    pub fn new(state: Arc<ShardState>, sender: ShardSender) -> Self {
        Self {
            attached: Some((state, sender)),
            remote: None,
        }
    }

    /// No shard.
    pub fn detached() -> Self {
        Self {
            attached: None,
            remote: None,
        }
    }

    /// The shard of an event that another process received (a worker reading a stream): its id
    /// only; [`sender`](Self::sender) and the state are not here.
    pub fn remote(id: ShardId) -> Self {
        Self {
            attached: None,
            remote: Some(id),
        }
    }

    /// The shard's number and the total, `[0/1]` when detached.
    pub fn id(&self) -> ShardId {
        self.attached.as_ref().map_or(
            self.remote.unwrap_or(ShardId {
                number: 0,
                total: 1,
            }),
            |(state, _)| state.id(),
        )
    }

    /// The last sequence number received.
    pub fn sequence(&self) -> Option<u64> {
        self.attached
            .as_ref()
            .and_then(|(state, _)| state.sequence())
    }

    /// The gateway session's id.
    pub fn session_id(&self) -> Option<String> {
        self.attached
            .as_ref()
            .and_then(|(state, _)| state.session_id())
    }

    /// The last heartbeat's round trip.
    pub fn latency(&self) -> Option<Duration> {
        self.attached
            .as_ref()
            .and_then(|(state, _)| state.latency())
    }

    /// The shard's full state, when attached.
    pub fn state(&self) -> Option<&Arc<ShardState>> {
        self.attached.as_ref().map(|(state, _)| state)
    }

    /// Sends gateway commands on this shard (presence, voice state, request members, ...).
    ///
    /// # Errors
    /// When the context is attached to no shard.
    pub fn sender(&self) -> Result<&ShardSender, GatewayError> {
        self.attached
            .as_ref()
            .map(|(_, sender)| sender)
            .ok_or_else(|| GatewayError::new(GatewayErrorKind::SendingCommand))
    }
}
