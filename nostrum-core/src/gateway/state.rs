//! What other tasks may read of a shard: its id, status, sequence, session and latency.

use std::{
    fmt,
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::sync::Notify;

/// A shard's number and the total number of shards.
///
/// ```
/// use nostrum_core::gateway::ShardId;
///
/// assert_eq!(ShardId::new(2, 4).to_string(), "[2/4]");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardId {
    /// This shard's number, `0..total`.
    pub number: u32,
    /// The number of shards of the bot.
    pub total: u32,
}

impl ShardId {
    /// The only shard of a bot that does not shard.
    pub const ONE: Self = Self::new(0, 1);

    /// A shard id.
    pub const fn new(number: u32, total: u32) -> Self {
        Self { number, total }
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}/{}]", self.number, self.total)
    }
}

/// Where a shard is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ShardStatus {
    /// No connection; waiting to reconnect (or not started).
    Disconnected,
    /// Opening the socket and waiting for HELLO.
    Connecting,
    /// Waiting for the identify queue, or IDENTIFY sent and READY not yet received.
    Identifying,
    /// RESUME sent and RESUMED not yet received.
    Resuming,
    /// READY or RESUMED received: events flow and commands are sent.
    Connected,
    /// Closed with a fatal close code (4004, 4010-4014); the shard will not reconnect.
    FatallyClosed,
    /// Closed by the user.
    Stopped,
}

impl ShardStatus {
    /// Decodes the atomic representation.
    const fn from_u8(value: u8) -> Self {
        match value {
            1 => Self::Connecting,
            2 => Self::Identifying,
            3 => Self::Resuming,
            4 => Self::Connected,
            5 => Self::FatallyClosed,
            6 => Self::Stopped,
            _ => Self::Disconnected,
        }
    }

    /// Encodes the atomic representation.
    const fn to_u8(self) -> u8 {
        match self {
            Self::Disconnected => 0,
            Self::Connecting => 1,
            Self::Identifying => 2,
            Self::Resuming => 3,
            Self::Connected => 4,
            Self::FatallyClosed => 5,
            Self::Stopped => 6,
        }
    }
}

/// A resumable session: its id and the URL to resume it at.
#[derive(Clone, Debug, Default)]
struct Session {
    /// `session_id` of READY.
    id: Option<String>,
    /// `resume_gateway_url` of READY.
    resume_url: Option<String>,
}

/// A session another process can resume (shard handover): what RESUME needs.
///
/// Take it from [`ShardState::session`] after [`ShardSender::close_resumable`](super::ShardSender::close_resumable)
/// stopped the shard, carry it over (it is `serde`), and give it to
/// [`Shard::resume_session`](super::Shard::resume_session) in the other process.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SessionInfo {
    /// `session_id` of READY.
    pub session_id: String,
    /// The last dispatch sequence handled; Discord replays what came after it.
    pub sequence: u64,
    /// `resume_gateway_url` of READY.
    pub resume_url: String,
}

/// Latency value meaning "not measured".
const NO_LATENCY: u64 = u64::MAX;

/// A shard's state, shared with other tasks (`Context` reads it in handlers).
///
/// Written only by the shard; atomics and a small mutex, so reads never wait on the socket.
pub struct ShardState {
    id: ShardId,
    status: AtomicU8,
    /// Last dispatch sequence; 0 means none (Discord's sequences start at 1).
    sequence: AtomicU64,
    /// Last heartbeat round trip in nanoseconds, or [`NO_LATENCY`].
    latency: AtomicU64,
    session: Mutex<Session>,
    /// Set by `ShardSender::close`.
    close_requested: AtomicBool,
    /// Set by `ShardSender::close_resumable`: close without ending the session.
    keep_session: AtomicBool,
    /// Wakes the shard when `close_requested` is set.
    close_notify: Notify,
}

impl fmt::Debug for ShardState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardState")
            .field("id", &self.id)
            .field("status", &self.status())
            .field("sequence", &self.sequence())
            .field("latency", &self.latency())
            .field("session_id", &self.session_id())
            .finish_non_exhaustive()
    }
}

impl ShardState {
    /// The state of a shard that has not connected yet.
    pub(crate) fn new(id: ShardId) -> Self {
        Self {
            id,
            status: AtomicU8::new(ShardStatus::Disconnected.to_u8()),
            sequence: AtomicU64::new(0),
            latency: AtomicU64::new(NO_LATENCY),
            session: Mutex::new(Session::default()),
            close_requested: AtomicBool::new(false),
            keep_session: AtomicBool::new(false),
            close_notify: Notify::new(),
        }
    }

    /// The shard's id.
    pub fn id(&self) -> ShardId {
        self.id
    }

    /// Where the shard is in its life.
    pub fn status(&self) -> ShardStatus {
        ShardStatus::from_u8(self.status.load(Ordering::Acquire))
    }

    /// The sequence of the last dispatch of this session, if any.
    pub fn sequence(&self) -> Option<u64> {
        match self.sequence.load(Ordering::Acquire) {
            0 => None,
            seq => Some(seq),
        }
    }

    /// The session id given by READY, while the session is resumable.
    pub fn session_id(&self) -> Option<String> {
        self.lock_session().id.clone()
    }

    /// The last heartbeat round trip (HEARTBEAT to HEARTBEAT_ACK).
    pub fn latency(&self) -> Option<Duration> {
        match self.latency.load(Ordering::Acquire) {
            NO_LATENCY => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }

    /// The `resume_gateway_url` given by READY, while the session is resumable.
    pub fn resume_url(&self) -> Option<String> {
        self.lock_session().resume_url.clone()
    }

    /// Whether the user asked the shard to close.
    pub fn is_close_requested(&self) -> bool {
        self.close_requested.load(Ordering::Acquire)
    }

    fn lock_session(&self) -> std::sync::MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn set_status(&self, status: ShardStatus) {
        self.status.store(status.to_u8(), Ordering::Release);
    }

    /// Records a dispatch's sequence; sequences only increase.
    pub(crate) fn observe_sequence(&self, seq: u64) {
        self.sequence.fetch_max(seq, Ordering::AcqRel);
    }

    pub(crate) fn set_latency(&self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(NO_LATENCY - 1);
        self.latency.store(nanos, Ordering::Release);
    }

    /// Stores a new session (from READY).
    pub(crate) fn set_session(&self, id: String, resume_url: String) {
        let mut session = self.lock_session();
        session.id = Some(id);
        session.resume_url = Some(resume_url);
    }

    /// Forgets the session and its sequence: the next connection identifies.
    pub(crate) fn clear_session(&self) {
        *self.lock_session() = Session::default();
        self.sequence.store(0, Ordering::Release);
    }

    /// The session id and resume URL, if a session exists.
    pub(crate) fn resumable(&self) -> Option<(String, Option<String>)> {
        let session = self.lock_session();
        session
            .id
            .clone()
            .map(|id| (id, session.resume_url.clone()))
    }

    /// Whether the requested close keeps the session resumable (a handover).
    pub(crate) fn keeps_session(&self) -> bool {
        self.keep_session.load(Ordering::Acquire)
    }

    /// Asks the shard to close with a resumable code, keeping its session for another process.
    pub(crate) fn request_resumable_close(&self) {
        self.keep_session.store(true, Ordering::Release);
        self.request_close();
    }

    /// Stores a session to resume on the next connection (a handed-over one).
    pub(crate) fn restore_session(&self, session: &SessionInfo) {
        self.set_session(session.session_id.clone(), session.resume_url.clone());
        self.sequence.store(session.sequence, Ordering::Release);
    }

    /// The session to hand to another process: id, last sequence and resume URL.
    pub fn session(&self) -> Option<SessionInfo> {
        let session = self.lock_session();
        let id = session.id.clone()?;
        Some(SessionInfo {
            session_id: id,
            sequence: self.sequence.load(Ordering::Acquire),
            resume_url: session.resume_url.clone().unwrap_or_default(),
        })
    }

    pub(crate) fn request_close(&self) {
        self.close_requested.store(true, Ordering::Release);
        self.close_notify.notify_one();
    }

    /// Completes once a close has been requested.
    pub(crate) async fn close_requested(&self) {
        loop {
            let notified = self.close_notify.notified();
            if self.is_close_requested() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ShardId, ShardState, ShardStatus};
    use std::time::Duration;

    #[test]
    fn sequence_only_increases_and_resets_with_the_session() {
        let state = ShardState::new(ShardId::ONE);
        assert_eq!(state.sequence(), None);
        state.observe_sequence(5);
        state.observe_sequence(3);
        assert_eq!(state.sequence(), Some(5));
        state.set_session("abc".into(), "wss://resume".into());
        assert_eq!(state.session_id().as_deref(), Some("abc"));
        assert_eq!(state.resume_url().as_deref(), Some("wss://resume"));
        state.clear_session();
        assert_eq!(state.sequence(), None);
        assert_eq!(state.session_id(), None);
    }

    #[test]
    fn status_and_latency_round_trip() {
        let state = ShardState::new(ShardId::new(1, 2));
        for status in [
            ShardStatus::Disconnected,
            ShardStatus::Connecting,
            ShardStatus::Identifying,
            ShardStatus::Resuming,
            ShardStatus::Connected,
            ShardStatus::FatallyClosed,
            ShardStatus::Stopped,
        ] {
            state.set_status(status);
            assert_eq!(state.status(), status);
        }
        assert_eq!(state.latency(), None);
        state.set_latency(Duration::from_millis(42));
        assert_eq!(state.latency(), Some(Duration::from_millis(42)));
        assert_eq!(state.id().to_string(), "[1/2]");
    }

    #[tokio::test]
    async fn close_request_wakes_a_waiter() {
        let state = std::sync::Arc::new(ShardState::new(ShardId::ONE));
        let waiter = tokio::spawn({
            let state = state.clone();
            async move { state.close_requested().await }
        });
        tokio::task::yield_now().await;
        state.request_close();
        waiter.await.unwrap();
        // Already requested: returns at once.
        state.close_requested().await;
    }
}
