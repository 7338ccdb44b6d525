//! The gateway server: WebSocket handshake, HELLO, IDENTIFY/RESUME, heartbeats, dispatches, faults.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_websockets::{CloseCode, Message, ServerBuilder, WebSocketStream};

use super::compress::{Compressor, Transport};
use super::script::{self, KNOWN_INTENTS, PRIVILEGED_INTENTS};
use super::state::{ConnCmd, ConnHandle, Counted, Session, Shared, random_session_id};
use super::{Fault, HeartbeatRecord, IdentifyRecord, ResumeRecord};

/// Commands a connection may send per window before it is closed with 4008.
const COMMAND_LIMIT: usize = 120;
const COMMAND_WINDOW: Duration = Duration::from_secs(60);
/// Extra time past 1.5 heartbeat intervals before a silent connection is closed.
const HEARTBEAT_GRACE: Duration = Duration::from_secs(1);

/// Accepts connections until the task is aborted (which aborts every connection task too).
pub(super) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    tasks.spawn(connection(shared.clone(), stream));
                }
                Err(error) => {
                    tracing::warn!(%error, "local discord: gateway accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
}

/// How a connection ends.
#[derive(Debug)]
enum Exit {
    /// Send a close frame with this code and reason.
    Close(u16, &'static str),
    /// Drop the TCP connection without a close frame.
    Drop,
    /// The peer went away or closed; nothing more to send.
    Gone,
}

fn decode_error() -> Exit {
    Exit::Close(4002, "Error while decoding payload.")
}

/// One websocket connection.
struct Conn {
    shared: Arc<Shared>,
    ws: WebSocketStream<TcpStream>,
    compressor: Compressor,
    compress: Option<String>,
    id: u64,
    tx: mpsc::UnboundedSender<ConnCmd>,
    rx: mpsc::UnboundedReceiver<ConnCmd>,
    session: Option<String>,
    shard: Option<[u32; 2]>,
    ack_heartbeats: bool,
    slow: Option<Duration>,
    last_heartbeat: Instant,
    commands: VecDeque<Instant>,
    pending_ack: Option<oneshot::Sender<()>>,
}

async fn connection(shared: Arc<Shared>, stream: TcpStream) {
    let (request, ws) = match ServerBuilder::new().accept(stream).await {
        Ok(accepted) => accepted,
        Err(error) => {
            tracing::debug!(%error, "local discord: websocket handshake failed");
            return;
        }
    };
    let query = request.uri().query().map(str::to_owned);
    let params = |key: &str| {
        query.as_deref().unwrap_or("").split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == key).then(|| v.to_owned())
        })
    };
    let (version, encoding, compress) = (params("v"), params("encoding"), params("compress"));
    let transport = Transport::parse(compress.as_deref());
    let compressor = match transport.map(Compressor::new) {
        Some(Ok(c)) => c,
        _ => Compressor::Plain,
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let mut conn = Conn {
        id: shared.next_conn_id.fetch_add(1, Ordering::SeqCst),
        shared: shared.clone(),
        ws,
        compressor,
        compress,
        tx,
        rx,
        session: None,
        shard: None,
        ack_heartbeats: true,
        slow: None,
        last_heartbeat: Instant::now(),
        commands: VecDeque::new(),
        pending_ack: None,
    };
    shared.connections.fetch_add(1, Ordering::SeqCst);
    shared.notify();

    let exit = if version.as_deref().is_some_and(|v| v != "10") {
        Exit::Close(4012, "Invalid API version.")
    } else if encoding.as_deref().is_some_and(|e| e != "json") {
        Exit::Close(
            4002,
            "Only encoding=json is supported by the local Discord.",
        )
    } else if transport.is_none() {
        Exit::Close(4000, "Unknown compress value.")
    } else {
        match conn.run().await {
            Ok(()) => Exit::Gone,
            Err(exit) => exit,
        }
    };
    conn.finish(exit).await;
    shared.connections.fetch_sub(1, Ordering::SeqCst);
    shared.notify();
    if let Some(ack) = conn.pending_ack.take() {
        let _ = ack.send(());
    }
}

impl Conn {
    async fn run(&mut self) -> Result<(), Exit> {
        let interval = self.shared.config.heartbeat_interval;
        let hello = json!({"op": 10, "s": null, "t": null,
            "d": {"heartbeat_interval": interval.as_millis() as u64, "_trace": ["[\"local-discord\"]"]}});
        self.send(&hello.to_string()).await?;
        let timeout = interval + interval / 2 + HEARTBEAT_GRACE;
        loop {
            let deadline = self.last_heartbeat + timeout;
            tokio::select! {
                cmd = self.rx.recv() => match cmd {
                    Some(cmd) => self.on_cmd(cmd).await?,
                    None => return Err(Exit::Gone),
                },
                msg = self.ws.next() => match msg {
                    Some(Ok(msg)) => self.on_message(msg).await?,
                    Some(Err(_)) | None => return Err(Exit::Gone),
                },
                () = tokio::time::sleep_until(deadline) => {
                    return Err(Exit::Close(4000, "Heartbeat timed out."));
                }
            }
        }
    }

    /// Sends the close frame if any, lets the peer finish the closing handshake, detaches from the session.
    async fn finish(&mut self, exit: Exit) {
        let mut forget = false;
        match exit {
            Exit::Close(code, reason) => {
                forget = matches!(code, 4007 | 4009);
                // A code that cannot go on the wire (a script may inject 1005 or 0) closes
                // without a code: `Message::close` would panic on it.
                let code = CloseCode::try_from(code)
                    .ok()
                    .filter(|code| !code.is_reserved());
                if self.ws.send(Message::close(code, reason)).await.is_ok() {
                    self.drain().await;
                }
            }
            Exit::Gone => self.drain().await,
            Exit::Drop => {}
        }
        let mut state = self.shared.lock();
        if let Some(id) = self.session.take() {
            if forget {
                state.forget_session(&id);
            } else if let Some(session) = state.sessions.get_mut(&id)
                && session.live.as_ref().is_some_and(|l| l.id == self.id)
            {
                session.live = None;
            }
        }
    }

    /// Reads until the peer closes (bounded), so the closing handshake completes (tokio-websockets
    /// answers a close frame from the peer while it is read).
    async fn drain(&mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }

    /// Compresses and sends one gateway message, after the injected delay if any.
    async fn send(&mut self, text: &str) -> Result<(), Exit> {
        if let Some(delay) = self.slow {
            tokio::time::sleep(delay).await;
        }
        let msg = self
            .compressor
            .encode(text)
            .map_err(|_| Exit::Close(4000, "Compression failed."))?;
        self.ws.send(msg).await.map_err(|_| Exit::Gone)
    }

    async fn on_cmd(&mut self, cmd: ConnCmd) -> Result<(), Exit> {
        match cmd {
            ConnCmd::Frame { text, counts } => {
                self.send(&text).await?;
                let mut state = self.shared.lock();
                match counts {
                    Counted::Ready(shard) => *state.ready_sent.entry(shard).or_insert(0) += 1,
                    Counted::Resumed(shard) => *state.resumed_sent.entry(shard).or_insert(0) += 1,
                    Counted::Nothing => return Ok(()),
                }
                drop(state);
                self.shared.notify();
                Ok(())
            }
            ConnCmd::Detach => Err(Exit::Drop),
            ConnCmd::Fault(fault, ack) => {
                self.pending_ack = Some(ack);
                self.on_fault(fault).await?;
                if let Some(ack) = self.pending_ack.take() {
                    let _ = ack.send(());
                }
                Ok(())
            }
        }
    }

    async fn on_fault(&mut self, fault: Fault) -> Result<(), Exit> {
        match fault {
            Fault::DropSocket => Err(Exit::Drop),
            Fault::StopHeartbeatAck => {
                self.ack_heartbeats = false;
                Ok(())
            }
            Fault::Reconnect => self.send(r#"{"op":7,"s":null,"t":null,"d":null}"#).await,
            Fault::InvalidSession { resumable } => {
                if !resumable && let Some(id) = self.session.take() {
                    self.shard = None;
                    self.shared.lock().forget_session(&id);
                }
                self.send(&json!({"op": 9, "s": null, "t": null, "d": resumable}).to_string())
                    .await
            }
            Fault::Close(code) => Err(Exit::Close(code, "Closed by the local Discord script.")),
            Fault::SlowFrames(delay) => {
                self.slow = Some(delay);
                Ok(())
            }
            Fault::ServerHeartbeat => {
                let seq = self
                    .session
                    .as_ref()
                    .and_then(|id| self.shared.lock().sessions.get(id).map(|s| s.seq));
                self.send(&json!({"op": 1, "s": null, "t": null, "d": seq}).to_string())
                    .await
            }
            Fault::RawText(text) => self.send(&text).await,
        }
    }

    async fn on_message(&mut self, msg: Message) -> Result<(), Exit> {
        if msg.is_text() || msg.is_binary() {
            return self.on_payload(msg.as_payload()).await;
        }
        if let Some((code, _reason)) = msg.as_close() {
            // Discord invalidates the session when the client closes with 1000 or 1001 (a close
            // frame without a body has no code; `as_close` says 1005 for it).
            if matches!(u16::from(code), 1000 | 1001)
                && let Some(id) = self.session.take()
            {
                self.shared.lock().forget_session(&id);
            }
            return Err(Exit::Gone);
        }
        Ok(())
    }

    async fn on_payload(&mut self, bytes: &[u8]) -> Result<(), Exit> {
        let now = Instant::now();
        while self
            .commands
            .front()
            .is_some_and(|t| now.duration_since(*t) >= COMMAND_WINDOW)
        {
            self.commands.pop_front();
        }
        self.commands.push_back(now);
        if self.commands.len() > COMMAND_LIMIT {
            return Err(Exit::Close(4008, "Rate limited."));
        }
        let payload: Value = serde_json::from_slice(bytes).map_err(|_| decode_error())?;
        let op = payload
            .get("op")
            .and_then(Value::as_u64)
            .ok_or_else(decode_error)?;
        let d = payload.get("d").unwrap_or(&Value::Null);
        match op {
            1 => self.on_heartbeat(d).await,
            2 => self.on_identify(d),
            6 => self.on_resume(d).await,
            3 | 4 | 8 | 31 | 43 => {
                if self.session.is_none() {
                    return Err(Exit::Close(4003, "Not authenticated."));
                }
                if !d.is_object() {
                    return Err(decode_error());
                }
                if op == 8 {
                    self.on_request_members(d);
                }
                if op == 4 {
                    self.on_voice_state(d);
                }
                Ok(())
            }
            _ => Err(Exit::Close(4001, "Unknown opcode.")),
        }
    }

    async fn on_heartbeat(&mut self, d: &Value) -> Result<(), Exit> {
        if !d.is_null() && !d.is_u64() {
            return Err(decode_error());
        }
        self.last_heartbeat = Instant::now();
        let record = HeartbeatRecord {
            shard: self.shard,
            seq: d.as_u64(),
            at: self.last_heartbeat,
        };
        self.shared.lock().heartbeats.push(record);
        self.shared.notify();
        if self.ack_heartbeats {
            self.send(r#"{"op":11,"s":null,"t":null,"d":null}"#).await?;
        }
        Ok(())
    }

    fn check_token(&self, d: &Value) -> Result<(), Exit> {
        let token = d
            .get("token")
            .and_then(Value::as_str)
            .ok_or_else(decode_error)?;
        let token = token.strip_prefix("Bot ").unwrap_or(token);
        if token == self.shared.config.token {
            Ok(())
        } else {
            Err(Exit::Close(4004, "Authentication failed."))
        }
    }

    fn on_identify(&mut self, d: &Value) -> Result<(), Exit> {
        if self.session.is_some() {
            return Err(Exit::Close(4005, "Already authenticated."));
        }
        if !d.is_object() {
            return Err(decode_error());
        }
        let shard = match d.get("shard") {
            None | Some(Value::Null) => [0, 1],
            Some(Value::Array(pair)) if pair.len() == 2 => {
                let part = |i: usize| pair[i].as_u64().and_then(|n| u32::try_from(n).ok());
                [
                    part(0).ok_or_else(decode_error)?,
                    part(1).ok_or_else(decode_error)?,
                ]
            }
            Some(_) => return Err(decode_error()),
        };
        let intents = d
            .get("intents")
            .and_then(Value::as_u64)
            .ok_or_else(decode_error)?;
        let large_threshold = d.get("large_threshold").and_then(Value::as_u64);
        {
            let record = IdentifyRecord {
                shard,
                intents,
                compress: self.compress.clone(),
                large_threshold,
                at: Instant::now(),
            };
            self.shared.lock().identifies.push(record);
            self.shared.notify();
        }
        self.check_token(d)?;
        if shard[1] == 0 || shard[0] >= shard[1] {
            return Err(Exit::Close(4010, "Invalid shard."));
        }
        if intents & !KNOWN_INTENTS != 0 {
            return Err(Exit::Close(4013, "Invalid intent(s)."));
        }
        if intents & PRIVILEGED_INTENTS != 0 && !self.shared.config.privileged_intents {
            return Err(Exit::Close(4014, "Disallowed intent(s)."));
        }

        let shared = self.shared.clone();
        let mut state = shared.lock();
        if state.session_start_remaining == 0 {
            let _ = self.tx.send(ConnCmd::Frame {
                text: json!({"op": 9, "s": null, "t": null, "d": false})
                    .to_string()
                    .into(),
                counts: Counted::Nothing,
            });
            return Ok(());
        }
        state.session_start_remaining -= 1;
        let session_id = random_session_id();
        let live = ConnHandle {
            id: self.id,
            tx: self.tx.clone(),
        };
        let session = Session {
            shard,
            intents,
            seq: 0,
            buffer: VecDeque::new(),
            live: Some(live),
        };
        state.sessions.insert(session_id.clone(), session);
        state.shard_sessions.insert(shard[0], session_id.clone());
        state.identified_total = Some(shard[1]);
        let world = &shared.world;
        let ready = script::ready_json(
            world,
            &session_id,
            shard,
            &shared.gateway_url,
            shared.config.privileged_intents,
        );
        state.push_to_session(&session_id, "READY", &ready, Counted::Ready(shard[0]));
        for guild in world.guilds_of_shard(shard) {
            state.push_to_session(
                &session_id,
                "GUILD_CREATE",
                &script::guild_create_json(world, guild),
                Counted::Nothing,
            );
        }
        drop(state);
        self.session = Some(session_id);
        self.shard = Some(shard);
        shared.notify();
        Ok(())
    }

    async fn on_resume(&mut self, d: &Value) -> Result<(), Exit> {
        if self.session.is_some() {
            return Err(Exit::Close(4005, "Already authenticated."));
        }
        let session_id = d
            .get("session_id")
            .and_then(Value::as_str)
            .ok_or_else(decode_error)?
            .to_owned();
        let seq = match d.get("seq") {
            None | Some(Value::Null) => 0,
            Some(v) => v.as_u64().ok_or_else(decode_error)?,
        };
        self.check_token(d)?;
        if self.resume_session(session_id, seq)? {
            Ok(())
        } else {
            self.send(r#"{"op":9,"s":null,"t":null,"d":false}"#).await
        }
    }

    /// Attaches this connection to the session and queues the replay and RESUMED.
    /// `Ok(false)` when the session cannot be resumed (op 9 must be sent).
    fn resume_session(&mut self, session_id: String, seq: u64) -> Result<bool, Exit> {
        let shared = self.shared.clone();
        let mut state = shared.lock();
        let known_shard = state.sessions.get(&session_id).map(|s| s.shard);
        let record = ResumeRecord {
            shard: known_shard.unwrap_or([0, 0]),
            session_id: session_id.clone(),
            seq,
            at: Instant::now(),
        };
        state.resumes.push(record);
        shared.notify();
        let Some(session) = state.sessions.get_mut(&session_id) else {
            return Ok(false);
        };
        if seq > session.seq {
            state.forget_session(&session_id);
            return Err(Exit::Close(4007, "Invalid seq."));
        }
        if session
            .buffer
            .front()
            .is_some_and(|(first, _)| *first > seq + 1)
        {
            // Dispatches after `seq` were already dropped from the replay buffer: cannot resume.
            state.forget_session(&session_id);
            return Ok(false);
        }
        if let Some(old) = session.live.replace(ConnHandle {
            id: self.id,
            tx: self.tx.clone(),
        }) {
            let _ = old.tx.send(ConnCmd::Detach);
        }
        for (_, text) in session.buffer.iter().filter(|(s, _)| *s > seq) {
            let _ = self.tx.send(ConnCmd::Frame {
                text: text.clone(),
                counts: Counted::Nothing,
            });
        }
        let shard = session.shard;
        state.push_to_session(
            &session_id,
            "RESUMED",
            &json!({}),
            Counted::Resumed(shard[0]),
        );
        state.shard_sessions.insert(shard[0], session_id.clone());
        state.identified_total = Some(shard[1]);
        drop(state);
        self.session = Some(session_id);
        self.shard = Some(shard);
        shared.notify();
        Ok(true)
    }

    /// Op 4: answers with VOICE_STATE_UPDATE (the bot's voice state, with this gateway session's id)
    /// and, when joining, VOICE_SERVER_UPDATE. Its `endpoint` is `LocalConfig::voice_endpoint`
    /// (`null` when unset); its token is `local-voice-token`.
    fn on_voice_state(&mut self, d: &Value) {
        let Some(session_id) = self.session.clone() else {
            return;
        };
        let Some(guild_id) = d.get("guild_id").and_then(script::snowflake) else {
            return;
        };
        let channel_id = d.get("channel_id").and_then(script::snowflake);
        let flag = |name: &str| d.get(name).and_then(Value::as_bool).unwrap_or(false);
        let state_json = json!({
            "guild_id": guild_id.to_string(),
            "channel_id": channel_id.map(|id| id.to_string()),
            "user_id": self.shared.world.bot.id.to_string(),
            "session_id": session_id,
            "deaf": false, "mute": false, "suppress": false,
            "self_deaf": flag("self_deaf"), "self_mute": flag("self_mute"),
            "self_video": false, "self_stream": false, "request_to_speak_timestamp": null,
        });
        let endpoint = self.shared.config.voice_endpoint.clone();
        let mut state = self.shared.lock();
        state.push_to_session(
            &session_id,
            "VOICE_STATE_UPDATE",
            &state_json,
            Counted::Nothing,
        );
        if channel_id.is_some() {
            let server = json!({
                "guild_id": guild_id.to_string(),
                "token": "local-voice-token",
                "endpoint": endpoint,
            });
            state.push_to_session(
                &session_id,
                "VOICE_SERVER_UPDATE",
                &server,
                Counted::Nothing,
            );
        }
    }

    /// Op 8: answers with GUILD_MEMBERS_CHUNK dispatches for a guild of this connection's shard.
    fn on_request_members(&mut self, d: &Value) {
        let (Some(session_id), Some(shard)) = (self.session.clone(), self.shard) else {
            return;
        };
        let Some(guild_id) = d.get("guild_id").and_then(script::snowflake) else {
            return;
        };
        let world = &self.shared.world;
        let Some(guild) = world.guilds_of_shard(shard).find(|g| g.id == guild_id) else {
            return;
        };
        let chunks = script::member_chunks(world, guild, d);
        let mut state = self.shared.lock();
        for chunk in &chunks {
            state.push_to_session(&session_id, "GUILD_MEMBERS_CHUNK", chunk, Counted::Nothing);
        }
    }
}
