//! The `Shard`: one gateway connection's whole life, driven by `next_event`.

use std::sync::Arc;

use futures::{FutureExt, SinkExt, StreamExt};
use tokio::{
    sync::mpsc,
    time::{Duration, Instant, sleep, timeout},
};
use tokio_websockets::{CloseCode, Message, Payload};
use tracing::Instrument;

use super::compression::DecompressError;
use super::{
    GatewayConfig, GatewayError, GatewayErrorKind, SessionInfo, ShardId, ShardSender, ShardState,
    ShardStatus,
    command::Command,
    connection::{Connection, HELLO_TIMEOUT, next_command, wait_identify},
    event::{Frame, Next, Owned, ShardEvent, Step},
    protocol::{self, CloseAction, DispatchSpan, Parsed},
};

/// Time allowed for one send before the connection counts as dead.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed to send a close frame before the socket is dropped anyway.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// First reconnect delay after a failed attempt; doubles up to [`MAX_BACKOFF`].
const BASE_BACKOFF: Duration = Duration::from_millis(500);
/// Largest reconnect delay.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Close code that keeps the session resumable (anything but 1000 and 1001).
const CLOSE_RESUMABLE: u16 = 4000;
/// Close code that ends the session.
const CLOSE_NORMAL: u16 = 1000;
/// Buffered messages read between two readings of the clock for the heartbeat check.
const CLOCK_EVERY: u8 = 32;
/// Above this capacity the frame buffer is shrunk after use (one huge READY must not pin it).
const KEEP_BUFFER: usize = 4 << 20;

/// Why the select loop woke up.
#[derive(Debug)]
enum Wake {
    Close,
    Heartbeat,
    Identify,
    Command(Command),
    Message(Option<Result<Message, tokio_websockets::Error>>),
}

/// One gateway connection's whole life: connect, identify or resume, heartbeat, reconnect.
///
/// Nothing runs in the background: drive the shard by calling [`next_event`](Self::next_event)
/// in a loop (heartbeats and queued commands are only sent while it is awaited).
///
/// ```no_run
/// use std::sync::Arc;
/// use nostrum_core::gateway::{GatewayConfig, Shard, ShardEvent, ShardId};
/// use twilight_model::gateway::Intents;
///
/// # async fn run() -> Result<(), nostrum_core::gateway::GatewayError> {
/// let config = Arc::new(GatewayConfig::new("token".into(), Intents::GUILD_MESSAGES));
/// let mut shard = Shard::new(ShardId::ONE, config);
/// loop {
///     match shard.next_event().await? {
///         ShardEvent::Dispatch { name, data, .. } => println!("{name}: {} bytes", data.get().len()),
///         other => println!("{other:?}"),
///     }
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct Shard {
    id: ShardId,
    config: Arc<GatewayConfig>,
    state: Arc<ShardState>,
    tx: mpsc::UnboundedSender<Command>,
    rx: mpsc::UnboundedReceiver<Command>,
    /// A command taken from the queue whose send failed: sent first after the reconnect.
    held: Option<Command>,
    conn: Option<Connection>,
    frame: Frame,
    /// Decompression buffer, reused between messages.
    spare: Vec<u8>,
    /// An event to yield before doing anything else.
    pending: Option<Owned>,
    /// Wait before the next connection attempt.
    next_delay: Duration,
    /// Connection attempts since the last READY or RESUMED.
    attempts: u32,
    /// Set once a fatal close code was received.
    fatal: Option<GatewayErrorKind>,
    /// The sequence at the last message over the size bound, to skip it if it comes again.
    oversize_at: Option<Option<u64>>,
    /// Whether the caller takes dispatches unchecked ([`Shard::next_lazy`]).
    lazy: bool,
    /// The last reading of the clock for the heartbeat check, and buffered reads since.
    clock: Instant,
    clock_reads: u8,
    /// Which dispatches to yield; `None`: all of them.
    wanted: Option<Wanted>,
    span: tracing::Span,
}

/// The filter of [`Shard::set_wanted`].
struct Wanted(Box<dyn Fn(&str) -> bool + Send + Sync>);

impl std::fmt::Debug for Wanted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Wanted(..)")
    }
}

impl Shard {
    /// A shard that connects on the first call to [`next_event`](Self::next_event).
    pub fn new(id: ShardId, config: Arc<GatewayConfig>) -> Shard {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            id,
            config,
            state: Arc::new(ShardState::new(id)),
            tx,
            rx,
            held: None,
            conn: None,
            frame: Frame::Empty,
            spare: Vec::new(),
            pending: None,
            next_delay: Duration::ZERO,
            attempts: 0,
            fatal: None,
            oversize_at: None,
            lazy: false,
            clock: Instant::now(),
            clock_reads: CLOCK_EVERY,
            wanted: None,
            span: tracing::info_span!("shard", shard = %id),
        }
    }

    /// A shard that resumes `session` (handed over by another process) on its first connection
    /// instead of identifying: it connects to the session's resume URL and sends RESUME with its
    /// sequence, and Discord replays what came after. If Discord refuses the resume (op 9), the
    /// shard identifies as usual.
    pub fn resume_session(id: ShardId, config: Arc<GatewayConfig>, session: &SessionInfo) -> Shard {
        let shard = Self::new(id, config);
        shard.state.restore_session(session);
        shard
    }

    /// Yields only the dispatches whose name `wanted` accepts (default: all of them).
    ///
    /// The shard calls `wanted` with each dispatch's name (`t`), on its own task, before it reads
    /// the payload: keep it cheap (it may read shared state, so the set it answers for can change
    /// at any time). A refused dispatch still counts for the session (its sequence is recorded
    /// for heartbeats and RESUME) but is not yielded, and when Discord sends `t` and `s` before
    /// `d` (as it does), its `d` is not even read, so a malformed `d` goes unnoticed. `READY` and
    /// `RESUMED` are always yielded: the shard needs them itself.
    pub fn set_wanted(&mut self, wanted: impl Fn(&str) -> bool + Send + Sync + 'static) {
        self.wanted = Some(Wanted(Box::new(wanted)));
    }

    /// Yields every dispatch again (undoes [`set_wanted`](Self::set_wanted)).
    pub fn want_all(&mut self) {
        self.wanted = None;
    }

    /// This shard's id.
    pub fn id(&self) -> ShardId {
        self.id
    }

    /// A handle to queue commands from any task.
    pub fn sender(&self) -> ShardSender {
        ShardSender::new(self.tx.clone(), Arc::clone(&self.state))
    }

    /// The state shared with other tasks.
    pub fn state(&self) -> Arc<ShardState> {
        Arc::clone(&self.state)
    }

    /// Drives the connection and returns its next event.
    ///
    /// Connects (or reconnects and resumes), heartbeats, answers op 1, handles op 7 and op 9,
    /// close codes and backoff. Call it again as soon as the previous event is handled: while it
    /// is not awaited, nothing is read, no heartbeat is sent and no command leaves. Dropping the
    /// future while it waits loses nothing; dropping it mid-reconnect may lose the
    /// `Disconnected` event (the shard still reconnects).
    ///
    /// # Errors
    ///
    /// Only for a fatal close code (4004, 4010-4014: never retried; the kind names it), or
    /// with kind [`Closed`](GatewayErrorKind::Closed) after
    /// [`ShardSender::close`](super::ShardSender::close). Every later call returns the same
    /// error.
    pub async fn next_event(&mut self) -> Result<ShardEvent<'_>, GatewayError> {
        let span = self.span.clone();
        self.lazy = false;
        match self.step().instrument(span).await? {
            Step::Event(owned) => Ok(owned.into()),
            Step::Dispatch(span) => Ok(self.dispatch(span)),
        }
    }

    /// [`next_event`](Self::next_event) for the client's own loop, which types every dispatch it
    /// takes: a dispatch in Discord's layout comes as [`Next::Unchecked`], its `d` not walked
    /// here (the typed parse walks it, and shows it is JSON); the client checks the span itself
    /// ([`protocol::checked_span`]) when that parse fails or when it needs the raw JSON without a
    /// parse.
    pub(crate) async fn next_lazy(&mut self) -> Result<Next<'_>, GatewayError> {
        self.lazy = true;
        let span = self.span.clone();
        match self.step().instrument(span).await? {
            Step::Dispatch(span) if !span.checked => Ok(Next::Unchecked {
                frame: self.frame.as_str(),
                span,
            }),
            Step::Dispatch(span) => Ok(Next::Event(self.dispatch(span))),
            Step::Event(owned) => Ok(Next::Event(owned.into())),
        }
    }

    /// Builds the dispatch event from the current frame, which `on_frame` parsed (and whose `d` it
    /// validated, the only walk over it) just before.
    fn dispatch(&self, span: DispatchSpan) -> ShardEvent<'_> {
        let text = self.frame.as_str();
        let name = text.get(span.name).unwrap_or("");
        let data = match span.data.and_then(|range| text.get(range)) {
            Some(d) => protocol::validated_raw(d),
            None => protocol::null(),
        };
        ShardEvent::Dispatch {
            seq: span.seq,
            name,
            data,
        }
    }

    /// Runs until there is something to yield.
    async fn step(&mut self) -> Result<Step, GatewayError> {
        loop {
            if let Some(kind) = self.fatal {
                return Err(GatewayError::new(kind));
            }
            if self.state.is_close_requested() {
                self.shutdown().await;
                return Err(GatewayError::new(GatewayErrorKind::Closed));
            }
            if let Some(event) = self.pending.take() {
                return Ok(Step::Event(event));
            }
            if self.conn.is_none() {
                self.connect().await;
                continue;
            }
            if let Some(step) = self.poll_connection().await? {
                return Ok(step);
            }
        }
    }

    /// Opens a connection, after the pending delay; retries with backoff until it succeeds or
    /// the shard is closed (the caller then sees the close request).
    async fn connect(&mut self) {
        loop {
            let delay = std::mem::take(&mut self.next_delay);
            if !delay.is_zero() {
                self.state.set_status(ShardStatus::Disconnected);
                tracing::debug!(?delay, "waiting before reconnecting");
                tokio::select! {
                    () = sleep(delay) => {}
                    () = self.state.close_requested() => return,
                }
            }
            self.attempts = self.attempts.saturating_add(1);
            self.state.set_status(ShardStatus::Connecting);
            let resume_url = self.state.resumable().and_then(|(_, url)| url);
            let url = self.config.url(resume_url.as_deref());
            tracing::info!(%url, attempt = self.attempts, "connecting");
            let result = tokio::select! {
                result = Connection::open(&self.config, url) => result,
                () = self.state.close_requested() => return,
            };
            let error = match result {
                Ok(conn) => {
                    self.conn = Some(conn);
                    return;
                }
                Err(error) => error,
            };
            self.next_delay = self.backoff();
            tracing::warn!(%error, retry_in = ?self.next_delay, "connecting to the gateway failed");
        }
    }

    /// The delay before the next attempt: none for the first one after a working session,
    /// then 0.5 s doubling to 30 s, jittered down to half.
    fn backoff(&self) -> Duration {
        if self.attempts == 0 {
            return Duration::ZERO;
        }
        let exponent = self.attempts.saturating_sub(1).min(16);
        let full = BASE_BACKOFF.saturating_mul(1 << exponent).min(MAX_BACKOFF);
        full.mul_f64(0.5 + fastrand::f64() / 2.0)
    }

    /// Waits for the next thing to do on the open connection and does it.
    async fn poll_connection(&mut self) -> Result<Option<Step>, GatewayError> {
        // The clock for the heartbeat check below, read once every `CLOCK_EVERY` buffered
        // messages rather than for each (a heartbeat is due every ~41 s; a few dozen messages
        // late is nothing), and afresh after every wait.
        if self.clock_reads >= CLOCK_EVERY {
            self.clock = Instant::now();
            self.clock_reads = 0;
        }
        let now = self.clock;
        let Some(conn) = self.conn.as_mut() else {
            return Ok(None);
        };
        // The last event's borrow of the frame has ended. A text message is a view into the
        // socket's read buffer: held while the next one is read, the buffer cannot take its space
        // back and allocates anew, so a run of large GUILD_CREATEs left several frame-sized
        // buffers behind. (A decompressed frame stays: its buffer is reused.)
        if matches!(self.frame, Frame::Text(_)) {
            self.frame = Frame::Empty;
        }
        let can_send = self.state.status() == ShardStatus::Connected;
        let ready_at = conn.limiter.ready_at();
        let Connection {
            ws,
            heartbeat_at,
            identify,
            ..
        } = conn;
        let (held, rx, state) = (&mut self.held, &mut self.rx, &self.state);
        let identifying = identify.is_some();
        // Under load the next message is usually buffered already and nothing else is due: read
        // it without building the select below (a waiter on the close signal, a timer for the
        // command limiter, wakers for each branch), which costs more than a small dispatch. The
        // select's order (close, heartbeat, identify, command, message) still holds: this path is
        // only taken when none of those is ready.
        let nothing_else_due = !state.is_close_requested()
            && heartbeat_at.deadline() > now
            && !identifying
            && !(can_send && (held.is_some() || !rx.is_empty()));
        let buffered = if nothing_else_due {
            ws.next().now_or_never()
        } else {
            None
        };
        let wake = match buffered {
            Some(message) => {
                // Frames already read from the socket cost tokio's cooperative budget nothing,
                // so a shard behind a backlog would never yield: the tasks its handlers spawn on
                // this worker (the unstealable LIFO slot) would wait for the whole backlog. One
                // unit per message makes it yield every 128 or so.
                tokio::task::consume_budget().await;
                self.clock_reads += 1;
                Wake::Message(message)
            }
            None => {
                let wake = tokio::select! {
                    biased;
                    () = state.close_requested() => Wake::Close,
                    () = heartbeat_at.as_mut() => Wake::Heartbeat,
                    () = wait_identify(identify), if identifying => Wake::Identify,
                    Some(command) = next_command(held, rx, ready_at), if can_send => Wake::Command(command),
                    message = ws.next() => Wake::Message(message),
                };
                self.clock_reads = CLOCK_EVERY;
                wake
            }
        };
        match wake {
            Wake::Close => Ok(None),
            Wake::Heartbeat => Ok(self.on_heartbeat_timer().await),
            Wake::Identify => {
                if let Some(conn) = self.conn.as_mut() {
                    conn.identify = None;
                }
                tracing::info!("identifying");
                let payload = protocol::identify(&self.config, self.id);
                Ok(self.send_or_drop(payload).await)
            }
            Wake::Command(command) => {
                if let Some(conn) = self.conn.as_mut() {
                    conn.limiter.acquire();
                }
                let step = self.send_or_drop(command.json.clone()).await;
                if step.is_some() {
                    self.held = Some(command);
                }
                Ok(step)
            }
            Wake::Message(Some(Ok(message))) => self.on_message(message).await,
            Wake::Message(Some(Err(error))) => {
                tracing::warn!(%error, "gateway connection failed");
                if matches!(error, tokio_websockets::Error::PayloadTooLong { .. }) {
                    self.oversize();
                }
                Ok(Some(self.lost().await))
            }
            Wake::Message(None) => {
                tracing::warn!("gateway connection ended without a close frame");
                Ok(Some(self.lost().await))
            }
        }
    }

    /// The heartbeat timer fired: HELLO never came, the last heartbeat was not acknowledged
    /// (a zombie connection), or it is time for the next heartbeat.
    async fn on_heartbeat_timer(&mut self) -> Option<Step> {
        let conn = self.conn.as_mut()?;
        let Some(interval) = conn.interval else {
            tracing::warn!("no HELLO within {HELLO_TIMEOUT:?}, reconnecting");
            return Some(self.reconnect(None, Some(CLOSE_RESUMABLE)).await);
        };
        if conn.awaiting_ack.is_some() {
            tracing::warn!("no heartbeat ACK within {interval:?}: zombie connection, reconnecting");
            return Some(self.reconnect(None, Some(CLOSE_RESUMABLE)).await);
        }
        let now = Instant::now();
        conn.awaiting_ack = Some(now);
        conn.heartbeat_at.as_mut().reset(now + interval);
        tracing::trace!("sending heartbeat");
        self.send_or_drop(protocol::heartbeat(self.state.sequence()))
            .await
    }

    /// Handles one WebSocket message (tokio-websockets answers pings and close frames itself).
    async fn on_message(&mut self, message: Message) -> Result<Option<Step>, GatewayError> {
        if message.is_text() {
            self.frame = Frame::Text(message);
            Ok(self.on_frame().await)
        } else if message.is_binary() {
            Ok(self.on_binary(message.into_payload()).await)
        } else if let Some((code, reason)) = message.as_close() {
            // A close frame without a body has no code (`as_close` says 1005 for it).
            let code = (!message.as_payload().is_empty()).then(|| u16::from(code));
            // tokio-websockets queued the answering close frame: send it before the socket is
            // dropped, so the closing handshake completes.
            if let Some(conn) = self.conn.as_mut() {
                let _ = timeout(CLOSE_TIMEOUT, conn.ws.flush()).await;
            }
            self.on_close(code, reason).await.map(Some)
        } else {
            Ok(None)
        }
    }

    /// Decompresses a binary message into the frame.
    async fn on_binary(&mut self, bytes: Payload) -> Option<Step> {
        let conn = self.conn.as_mut()?;
        let Some(decompressor) = conn.decompressor.as_mut() else {
            // No transport compression: binary frames carry JSON text (Discord sends text frames
            // then; this copy is only for a gateway that does not).
            return match std::str::from_utf8(&bytes) {
                Ok(text) => {
                    self.frame = Frame::Owned(text.to_owned());
                    self.on_frame().await
                }
                Err(_) => {
                    tracing::warn!("binary gateway message is not UTF-8, skipped");
                    None
                }
            };
        };
        let mut buffer = match std::mem::take(&mut self.frame) {
            Frame::Owned(text) => text.into_bytes(),
            _ => std::mem::take(&mut self.spare),
        };
        buffer.clear();
        if buffer.capacity() > KEEP_BUFFER {
            buffer.shrink_to(KEEP_BUFFER / 4);
        }
        let limit = self.config.max_decompressed_frame;
        match decompressor.push(&bytes, &mut buffer, limit) {
            Ok(true) => match String::from_utf8(buffer) {
                Ok(text) => {
                    self.frame = Frame::Owned(text);
                    self.on_frame().await
                }
                Err(error) => {
                    self.spare = error.into_bytes();
                    tracing::warn!("decompressed gateway message is not UTF-8, skipped");
                    None
                }
            },
            Ok(false) => {
                self.spare = buffer;
                None
            }
            Err(error) => {
                buffer.clear();
                self.spare = buffer;
                tracing::warn!(%error, limit, "decompressing a gateway message failed, reconnecting");
                if matches!(error, DecompressError::TooLarge { .. }) {
                    self.oversize();
                }
                Some(self.reconnect(None, Some(CLOSE_RESUMABLE)).await)
            }
        }
    }

    /// A message over the size bound broke the connection. The session replays it on RESUME (its
    /// sequence was never seen), so when it comes again with no progress in between, it is skipped:
    /// the shard counts its sequence as seen, resumes after it, and warns that it was lost. Nothing
    /// after it is lost, and the shard cannot loop on it.
    fn oversize(&mut self) {
        let seq = self.state.sequence();
        if seq.is_some() && self.oversize_at == Some(seq) {
            let skipped = seq.map_or(1, |seq| seq + 1);
            tracing::warn!(
                seq = skipped,
                "the message after the last sequence is over the size bound again: skipped (lost)"
            );
            self.state.observe_sequence(skipped);
            self.oversize_at = None;
        } else {
            self.oversize_at = Some(seq);
        }
    }

    /// Acts on the message in the frame.
    async fn on_frame(&mut self) -> Option<Step> {
        let parsed = match &self.wanted {
            Some(Wanted(wanted)) => Parsed::from_text_filtered(self.frame.as_str(), wanted),
            None => Parsed::from_text_filtered(self.frame.as_str(), &|_| true),
        };
        match parsed {
            Parsed::Skipped { seq } => {
                self.state.observe_sequence(seq);
                None
            }
            Parsed::Dispatch {
                span,
                ready,
                resumed,
            } => {
                let span = if self.lazy {
                    span
                } else {
                    match protocol::checked_span(self.frame.as_str(), span) {
                        Ok(span) => span,
                        Err(error) => {
                            let len = self.frame.as_str().len();
                            tracing::warn!(%error, len, "malformed gateway message, skipped");
                            return None;
                        }
                    }
                };
                self.state.observe_sequence(span.seq);
                if let Some((session_id, resume_url)) = ready {
                    tracing::info!(session_id = %session_id, "ready");
                    self.state.set_session(session_id, resume_url);
                    self.on_session_ready();
                } else if resumed {
                    tracing::info!(seq = ?self.state.sequence(), "resumed");
                    self.on_session_ready();
                    self.pending = Some(Owned::Resumed);
                }
                Some(Step::Dispatch(span))
            }
            Parsed::HeartbeatRequest => {
                let conn = self.conn.as_mut()?;
                conn.awaiting_ack.get_or_insert_with(Instant::now);
                self.send_or_drop(protocol::heartbeat(self.state.sequence()))
                    .await
            }
            Parsed::HeartbeatAck => {
                let conn = self.conn.as_mut()?;
                if let Some(sent) = conn.awaiting_ack.take() {
                    self.state.set_latency(sent.elapsed());
                }
                None
            }
            Parsed::Hello { interval_ms } => self.on_hello(interval_ms).await,
            Parsed::Reconnect => {
                tracing::info!("gateway asked to reconnect");
                Some(self.reconnect(None, Some(CLOSE_RESUMABLE)).await)
            }
            Parsed::InvalidSession { resumable } => {
                if resumable && self.state.resumable().is_some() {
                    tracing::info!("session invalidated but resumable, reconnecting");
                    return Some(self.reconnect(None, Some(CLOSE_RESUMABLE)).await);
                }
                self.state.clear_session();
                let step = self.reconnect(None, Some(CLOSE_NORMAL)).await;
                self.next_delay = self.config.invalid_session_wait();
                tracing::warn!(retry_in = ?self.next_delay, "session invalidated, identifying anew");
                Some(step)
            }
            Parsed::Other { op } => {
                tracing::debug!(op, "unhandled gateway opcode");
                None
            }
            Parsed::Malformed(error) => {
                let len = self.frame.as_str().len();
                tracing::warn!(%error, len, "malformed gateway message, skipped");
                None
            }
        }
    }

    /// READY or RESUMED: the session works, so commands flow and backoff resets.
    fn on_session_ready(&mut self) {
        self.state.set_status(ShardStatus::Connected);
        self.attempts = 0;
    }

    /// HELLO: start heartbeating, then RESUME or queue the IDENTIFY.
    async fn on_hello(&mut self, interval_ms: u64) -> Option<Step> {
        let conn = self.conn.as_mut()?;
        let interval = Duration::from_millis(interval_ms.max(1));
        conn.interval = Some(interval);
        conn.awaiting_ack = None;
        let first = interval.mul_f64(fastrand::f64());
        conn.heartbeat_at.as_mut().reset(Instant::now() + first);
        tracing::debug!(?interval, "hello");
        if let Some((session_id, _)) = self.state.resumable() {
            self.state.set_status(ShardStatus::Resuming);
            tracing::info!(seq = ?self.state.sequence(), "resuming");
            let payload = protocol::resume(&self.config, &session_id, self.state.sequence());
            if let Some(step) = self.send_or_drop(payload).await {
                return Some(step);
            }
        } else {
            self.state.set_status(ShardStatus::Identifying);
            let queue = Arc::clone(&self.config.identify_queue);
            let number = self.id.number;
            conn.identify = Some(Box::pin(async move { queue.wait(number).await }));
        }
        Some(Step::Event(Owned::Connected))
    }

    /// A close frame from Discord.
    async fn on_close(&mut self, code: Option<u16>, reason: &str) -> Result<Step, GatewayError> {
        let action = code.map_or(CloseAction::Resume, CloseAction::for_code);
        match action {
            CloseAction::Fatal(kind) => {
                tracing::error!(?code, reason, "gateway closed the connection: {kind}");
                self.conn = None;
                self.fatal = Some(kind);
                self.state.clear_session();
                self.state.set_status(ShardStatus::FatallyClosed);
                Err(GatewayError::new(kind))
            }
            CloseAction::Identify => {
                tracing::warn!(
                    ?code,
                    reason,
                    "gateway closed the session, identifying anew"
                );
                self.state.clear_session();
                Ok(self.reconnect(code, None).await)
            }
            CloseAction::Resume => {
                tracing::warn!(?code, reason, "gateway closed the connection, resuming");
                Ok(self.reconnect(code, None).await)
            }
        }
    }

    /// The connection broke (network error or end of stream): resume if possible.
    async fn lost(&mut self) -> Step {
        self.reconnect(None, None).await
    }

    /// Drops the connection (sending `close` first if given) and schedules the next one.
    async fn reconnect(&mut self, code: Option<u16>, close: Option<u16>) -> Step {
        if let Some(mut conn) = self.conn.take()
            && let Some(close) = close
        {
            send_close(&mut conn, close).await;
        }
        self.state.set_status(ShardStatus::Disconnected);
        self.next_delay = self.backoff();
        Step::Event(Owned::Disconnected {
            code,
            will_resume: self.state.resumable().is_some(),
        })
    }

    /// Sends a text message; on failure drops the connection and returns the disconnect.
    async fn send_or_drop(&mut self, text: String) -> Option<Step> {
        let conn = self.conn.as_mut()?;
        match timeout(SEND_TIMEOUT, conn.ws.send(Message::text(text))).await {
            Ok(Ok(())) => None,
            Ok(Err(error)) => {
                tracing::warn!(%error, "sending to the gateway failed");
                Some(self.lost().await)
            }
            Err(_elapsed) => {
                tracing::warn!("sending to the gateway timed out");
                Some(self.lost().await)
            }
        }
    }

    /// Closes with 1000 (ending the session) and stops for good; for a handover, closes with
    /// 4000 and keeps the session for another process to resume.
    async fn shutdown(&mut self) {
        let keep = self.state.keeps_session();
        if let Some(mut conn) = self.conn.take() {
            tracing::info!(keep_session = keep, "closing");
            let code = if keep { CLOSE_RESUMABLE } else { CLOSE_NORMAL };
            send_close(&mut conn, code).await;
            await_close(&mut conn).await;
        }
        if !keep {
            self.state.clear_session();
        }
        self.state.set_status(ShardStatus::Stopped);
    }
}

/// The rest of the closing handshake after [`send_close`]: reads (and drops) what the peer still
/// sends until its close frame or the end of the stream, within [`CLOSE_TIMEOUT`]. Dropping a socket
/// with unread data makes the kernel reset the connection, which can destroy the close frame before
/// the peer reads it (Discord would then see a dropped connection, not a close). What is dropped
/// here is not lost: the sequence is not advanced, so a resume replays it.
async fn await_close(conn: &mut Connection) {
    let _ = timeout(CLOSE_TIMEOUT, async {
        while let Some(Ok(message)) = conn.ws.next().await {
            if message.is_close() {
                break;
            }
        }
    })
    .await;
}

/// Sends a close frame with `code` (no reason) and flushes it, within [`CLOSE_TIMEOUT`]; the caller
/// then drops the socket without waiting for the peer's answer, as tungstenite's `close` did.
async fn send_close(conn: &mut Connection, code: u16) {
    // `Message::close` panics on the codes that cannot be sent (1005, 1006, ...): none is asked for,
    // and such a code would be sent without a code rather than panic.
    let code = CloseCode::try_from(code)
        .ok()
        .filter(|code| !code.is_reserved());
    let _ = timeout(CLOSE_TIMEOUT, conn.ws.send(Message::close(code, ""))).await;
}
