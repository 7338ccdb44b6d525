//! Shared server state: sessions with their sequence numbers and replay buffers, recordings, change signal.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::script::{self, ScriptUser, World};
use super::{
    ConversationLine, Fault, HeartbeatRecord, IdentifyRecord, LocalConfig, RecordedRequest,
    ResumeRecord,
};

/// How many dispatches a session keeps for replay on resume.
pub(super) const REPLAY_BUFFER: usize = 10_000;

/// Discord's epoch (2015-01-01T00:00:00Z) in unix milliseconds.
pub(super) const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

/// A command to a connection task.
#[derive(Debug)]
pub(super) enum ConnCmd {
    /// Send this text frame, then count it as `counts` says.
    Frame { text: Arc<str>, counts: Counted },
    /// Apply a fault, then signal.
    Fault(Fault, oneshot::Sender<()>),
    /// Another connection resumed this session: drop this one.
    Detach,
}

/// What a written frame counts as, for the `wait_for_*` observers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Counted {
    Nothing,
    Ready(u32),
    Resumed(u32),
}

/// The live connection of a session.
#[derive(Debug)]
pub(super) struct ConnHandle {
    pub(super) id: u64,
    pub(super) tx: mpsc::UnboundedSender<ConnCmd>,
}

/// A gateway session: it survives its connections until forgotten.
#[derive(Debug)]
pub(super) struct Session {
    pub(super) shard: [u32; 2],
    pub(super) intents: u64,
    pub(super) seq: u64,
    pub(super) buffer: VecDeque<(u64, Arc<str>)>,
    pub(super) live: Option<ConnHandle>,
}

/// Everything that changes, behind one lock.
#[derive(Debug)]
pub(super) struct State {
    pub(super) requests: Vec<RecordedRequest>,
    pub(super) identifies: Vec<IdentifyRecord>,
    pub(super) resumes: Vec<ResumeRecord>,
    pub(super) heartbeats: Vec<HeartbeatRecord>,
    pub(super) sessions: HashMap<String, Session>,
    pub(super) shard_sessions: HashMap<u32, String>,
    pub(super) ready_sent: HashMap<u32, usize>,
    pub(super) resumed_sent: HashMap<u32, usize>,
    pub(super) identified_total: Option<u32>,
    pub(super) session_start_remaining: u32,
    pub(super) rest: super::rest_limits::RestState,
    pub(super) extra_users: Vec<ScriptUser>,
    last_id: u64,
}

/// State shared by the handle, the gateway and the REST server.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) config: super::LocalConfig,
    pub(super) gateway_url: String,
    pub(super) api_base: String,
    pub(super) world: World,
    state: Mutex<State>,
    pub(super) changed: watch::Sender<u64>,
    pub(super) conversation: broadcast::Sender<ConversationLine>,
    pub(super) connections: AtomicUsize,
    pub(super) next_conn_id: AtomicU64,
}

impl Shared {
    pub(super) fn new(config: LocalConfig, gateway_url: String, api_base: String) -> Self {
        let world = World::new(config.guilds);
        let state = State {
            requests: Vec::new(),
            identifies: Vec::new(),
            resumes: Vec::new(),
            heartbeats: Vec::new(),
            sessions: HashMap::new(),
            shard_sessions: HashMap::new(),
            ready_sent: HashMap::new(),
            resumed_sent: HashMap::new(),
            identified_total: None,
            session_start_remaining: config.session_start_remaining,
            rest: Default::default(),
            extra_users: Vec::new(),
            last_id: 0,
        };
        Self {
            config,
            gateway_url,
            api_base,
            world,
            state: Mutex::new(state),
            changed: watch::channel(0).0,
            conversation: broadcast::channel(1024).0,
            connections: AtomicUsize::new(0),
            next_conn_id: AtomicU64::new(1),
        }
    }

    /// Locks the state (a poisoned lock is still usable: the state stays consistent per operation).
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes every `wait_for_*`.
    pub(super) fn notify(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Broadcasts a conversation line and wakes the waiters.
    pub(super) fn publish(&self, line: ConversationLine) {
        let _ = self.conversation.send(line);
        self.notify();
    }
}

impl State {
    /// A fresh, increasing snowflake for the current time.
    pub(super) fn next_id(&mut self) -> u64 {
        let ms = unix_ms().saturating_sub(DISCORD_EPOCH_MS);
        let candidate = (ms << 22) | (1 << 17);
        self.last_id = candidate.max(self.last_id + 1);
        self.last_id
    }

    /// The session the shard's traffic goes to (the latest one identified or resumed for it).
    pub(super) fn session_for_shard(&self, shard_id: u32) -> Option<&Session> {
        self.shard_sessions
            .get(&shard_id)
            .and_then(|id| self.sessions.get(id))
    }

    /// The shard count the bot identified with, or the configured one.
    pub(super) fn total_shards(&self, config: &LocalConfig) -> u32 {
        self.identified_total.unwrap_or(config.shards)
    }

    /// Intents of the shard's session, if any.
    pub(super) fn shard_intents(&self, shard_id: u32) -> Option<u64> {
        self.session_for_shard(shard_id).map(|s| s.intents)
    }

    /// Sends a dispatch to the session of a shard; see [`State::push_to_session`].
    pub(super) fn push_to_shard(&mut self, shard_id: u32, t: &str, d: &Value) -> Option<u64> {
        let id = self.shard_sessions.get(&shard_id)?.clone();
        self.push_to_session(&id, t, d, Counted::Nothing)
    }

    /// Gives the dispatch the session's next sequence number, keeps it for replay and sends it to the
    /// live connection if there is one. Returns the sequence number, or `None` without such a session.
    pub(super) fn push_to_session(
        &mut self,
        session_id: &str,
        t: &str,
        d: &Value,
        counts: Counted,
    ) -> Option<u64> {
        let session = self.sessions.get_mut(session_id)?;
        session.seq += 1;
        let seq = session.seq;
        // Discord's own key order and spacing: `t`, `s`, `op`, then `d`.
        let t = Value::from(t);
        let text: Arc<str> = format!(r#"{{"t":{t},"s":{seq},"op":0,"d":{d}}}"#).into();
        session.buffer.push_back((seq, text.clone()));
        while session.buffer.len() > REPLAY_BUFFER {
            session.buffer.pop_front();
        }
        if let Some(live) = &session.live {
            // A closed channel means the connection is going away; the frame stays buffered for resume.
            let _ = live.tx.send(ConnCmd::Frame { text, counts });
        }
        Some(seq)
    }

    /// Forgets a session: it can no longer be resumed.
    pub(super) fn forget_session(&mut self, session_id: &str) {
        if let Some(session) = self.sessions.remove(session_id) {
            let shard = session.shard[0];
            if self
                .shard_sessions
                .get(&shard)
                .is_some_and(|id| id == session_id)
            {
                self.shard_sessions.remove(&shard);
            }
        }
    }

    /// Finds a user by id among the scripted and the ad-hoc users.
    pub(super) fn user_by_id<'a>(&'a self, world: &'a World, id: u64) -> Option<&'a ScriptUser> {
        world
            .user(id)
            .or_else(|| self.extra_users.iter().find(|u| u.id == id))
    }

    /// Finds a user by username, creating an ad-hoc user for a new name.
    pub(super) fn user_by_name(&mut self, world: &World, name: &str) -> ScriptUser {
        if let Some(user) = world.users.iter().find(|u| u.name == name) {
            return user.clone();
        }
        if let Some(user) = self.extra_users.iter().find(|u| u.name == name) {
            return user.clone();
        }
        let n = self.extra_users.len() as u64;
        let user = ScriptUser {
            id: script::user_id(1_000 + n),
            name: name.to_owned(),
            bot: false,
        };
        self.extra_users.push(user.clone());
        user
    }
}

/// Milliseconds since the unix epoch.
pub(super) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Seconds since the unix epoch, as a float.
pub(super) fn unix_secs_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A random session id: 32 lowercase hex digits.
pub(super) fn random_session_id() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}
