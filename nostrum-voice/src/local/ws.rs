//! The local voice server's WebSocket gateway (v8): handshake, heartbeats, resume with replay.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{Duration, Instant, timeout};
use tokio_websockets::{CloseCode, Message, ServerBuilder, WebSocketStream};

use super::udp::ServerCipher;
use super::{ConnCmd, HeartbeatRecord, Session, Shared};

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

pub(super) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        if let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(connection(shared.clone(), stream));
        }
    }
}

/// How a connection ends: a close code, or a dropped TCP stream.
enum Exit {
    Close(u16, &'static str),
    Drop,
}

struct Conn {
    shared: Arc<Shared>,
    id: u64,
    ws: WebSocketStream<TcpStream>,
    tx: mpsc::UnboundedSender<ConnCmd>,
    authed: bool,
}

async fn connection(shared: Arc<Shared>, stream: TcpStream) {
    // tokio-websockets logs no frames: IDENTIFY and RESUME carry the voice token and the session
    // id, and must not end up in a TRACE log.
    let Ok((_request, ws)) = ServerBuilder::new().accept(stream).await else {
        return;
    };
    shared.lock().stats.open_connections += 1;
    shared.notify();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut conn = Conn {
        shared,
        id: NEXT_CONN.fetch_add(1, Ordering::Relaxed),
        ws,
        tx,
        authed: false,
    };
    let interval = conn.shared.config.heartbeat_interval.as_millis() as u64;
    let hello = json!({"op": 8, "d": {"heartbeat_interval": interval}}).to_string();
    let exit = match conn.send(Message::text(hello)).await {
        Err(exit) => exit,
        Ok(()) => loop {
            let step = tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(ConnCmd::Send(message)) => conn.send(message).await,
                    Some(ConnCmd::Close(code)) => Err(Exit::Close(code, "Closed by the test.")),
                    Some(ConnCmd::Drop) | None => Err(Exit::Drop),
                },
                msg = conn.ws.next() => match msg {
                    Some(Ok(message)) => conn.on_message(message).await,
                    Some(Err(_)) | None => Err(Exit::Drop),
                },
            };
            if let Err(exit) = step {
                break exit;
            }
        },
    };
    {
        let mut state = conn.shared.lock();
        if state.live.as_ref().is_some_and(|(id, _)| *id == conn.id) {
            state.live = None;
        }
    }
    if let Exit::Close(code, reason) = exit {
        // A code that cannot go on the wire (a test may ask for 1005 or 0) closes without a code:
        // `Message::close` would panic on it.
        let code = CloseCode::try_from(code)
            .ok()
            .filter(|code| !code.is_reserved());
        let close = conn.ws.send(Message::close(code, reason));
        let _ = timeout(Duration::from_secs(2), close).await;
    }
    conn.shared.lock().stats.open_connections -= 1;
    conn.shared.notify();
}

impl Conn {
    async fn send(&mut self, message: Message) -> Result<(), Exit> {
        self.ws.send(message).await.map_err(|_| Exit::Drop)
    }

    /// Text and binary messages; a close from the client ends the connection (tokio-websockets
    /// answers pings itself).
    async fn on_message(&mut self, message: Message) -> Result<(), Exit> {
        if let Some(text) = message.as_text() {
            self.on_text(text).await
        } else if message.is_binary() {
            self.on_binary(message.as_payload())
        } else if message.is_close() {
            Err(Exit::Drop)
        } else {
            Ok(())
        }
    }

    async fn on_text(&mut self, text: &str) -> Result<(), Exit> {
        let payload: Value = serde_json::from_str(text)
            .map_err(|_| Exit::Close(4002, "Failed to decode payload."))?;
        let op = payload
            .get("op")
            .and_then(Value::as_u64)
            .ok_or(Exit::Close(4002, "Failed to decode payload."))?;
        let d = payload.get("d").cloned().unwrap_or(Value::Null);
        match op {
            0 => self.on_identify(&d).await,
            7 => self.on_resume(&d).await,
            _ if !self.authed => Err(Exit::Close(4003, "Not authenticated.")),
            1 => self.on_select(&d).await,
            3 => {
                let record = HeartbeatRecord {
                    t: d.get("t").and_then(Value::as_u64),
                    seq_ack: d.get("seq_ack").and_then(Value::as_i64),
                    at: Instant::now(),
                };
                let t = record.t;
                self.shared.lock().stats.heartbeats.push(record);
                self.shared.notify();
                if !self.shared.ack_heartbeats.load(Ordering::Relaxed) {
                    return Ok(());
                }
                let ack = json!({"op": 6, "d": {"t": t}}).to_string();
                self.send(Message::text(ack)).await
            }
            5 => {
                let speaking = d.get("speaking").and_then(Value::as_u64).unwrap_or(0);
                self.shared
                    .lock()
                    .stats
                    .speaking
                    .push((speaking, Instant::now()));
                self.shared.notify();
                Ok(())
            }
            23 => {
                self.on_transition_ready(&d);
                Ok(())
            }
            31 => {
                let id = d.get("transition_id").and_then(Value::as_u64).unwrap_or(0);
                self.shared.lock().stats.dave_invalid.push(id);
                self.shared.notify();
                Ok(())
            }
            _ => Err(Exit::Close(4001, "Unknown opcode.")),
        }
    }

    /// A binary (DAVE) message from the client: opcode, payload.
    fn on_binary(&mut self, data: &[u8]) -> Result<(), Exit> {
        if !self.authed {
            return Err(Exit::Close(4003, "Not authenticated."));
        }
        let Some((&op, _payload)) = data.split_first() else {
            return Err(Exit::Close(4020, "Bad request."));
        };
        if op == 26 {
            self.shared.lock().stats.dave_key_packages += 1;
            self.shared.notify();
        }
        #[cfg(feature = "dave")]
        {
            let answer = {
                let mut state = self.shared.lock();
                match (state.dave.as_mut(), op) {
                    (Some(dave), 26) => dave.proposals().map(|p| (27, p)),
                    (Some(dave), 28) => dave.commit_welcome(_payload).map(|p| (29, p)),
                    _ => None,
                }
            };
            if let Some((op, payload)) = answer {
                self.shared.push_binary(op, &payload);
            }
        }
        Ok(())
    }

    /// DAVE TRANSITION READY (op 23): the transition executes (op 22).
    fn on_transition_ready(&mut self, _d: &Value) {
        #[cfg(feature = "dave")]
        {
            let id = _d
                .get("transition_id")
                .and_then(Value::as_u64)
                .and_then(|id| u16::try_from(id).ok());
            let hold = self.shared.config.dave_hold_transition;
            let executed = {
                let mut state = self.shared.lock();
                let executed = match (state.dave.as_mut(), id) {
                    (Some(dave), Some(id)) if hold => {
                        dave.held = Some(id);
                        None
                    }
                    (Some(dave), Some(id)) => dave.transition_ready(id),
                    _ => None,
                };
                if executed.is_some() {
                    state.stats.dave_transitions += 1;
                }
                executed
            };
            if let Some(id) = executed {
                self.shared.push(22, json!({"transition_id": id}));
                self.shared.notify();
            }
        }
    }

    fn check_token(&self, d: &Value) -> Result<(), Exit> {
        match d.get("token").and_then(Value::as_str) {
            Some(token) if token == self.shared.config.token => Ok(()),
            Some(_) => Err(Exit::Close(4004, "Authentication failed.")),
            None => Err(Exit::Close(4002, "Failed to decode payload.")),
        }
    }

    fn go_live(&mut self) {
        self.authed = true;
        self.shared.ack_heartbeats.store(true, Ordering::Relaxed);
        self.shared.lock().live = Some((self.id, self.tx.clone()));
    }

    async fn on_identify(&mut self, d: &Value) -> Result<(), Exit> {
        if self.authed {
            return Err(Exit::Close(4005, "Already authenticated."));
        }
        self.shared.lock().stats.identifies += 1;
        self.shared.notify();
        self.check_token(d)?;
        let field = |name: &str| d.get(name).and_then(Value::as_str).map(str::to_owned);
        let (Some(session_id), Some(_user), Some(_server)) =
            (field("session_id"), field("user_id"), field("server_id"))
        else {
            return Err(Exit::Close(4002, "Failed to decode payload."));
        };
        #[cfg(feature = "dave")]
        {
            let offers = d
                .get("max_dave_protocol_version")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let user = _user.parse().unwrap_or(0);
            let dave = (self.shared.config.dave && offers >= 1)
                .then(|| super::dave::ServerDave::new(user, self.shared.config.channel_id))
                .flatten();
            let mut state = self.shared.lock();
            state.dave = dave;
            state.dave_user = (offers >= 1).then_some(user);
        }
        {
            let mut state = self.shared.lock();
            state.session = Some(Session {
                session_id,
                seq: 0,
                buffer: VecDeque::new(),
            });
            state.cipher = None;
        }
        self.go_live();
        let config = &self.shared.config;
        let ready = json!({
            "ssrc": config.ssrc,
            "ip": "127.0.0.1",
            "port": self.shared.udp_port,
            "modes": config.modes,
        });
        self.shared.push(2, ready);
        Ok(())
    }

    async fn on_select(&mut self, d: &Value) -> Result<(), Exit> {
        let data = d.get("data");
        let mode = data
            .and_then(|data| data.get("mode"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if d.get("protocol").and_then(Value::as_str) != Some("udp") {
            return Err(Exit::Close(4012, "Unknown protocol."));
        }
        let key: [u8; 32] = std::array::from_fn(|_| fastrand::u8(..));
        let offered = self.shared.config.modes.contains(&mode);
        let Some(cipher) = ServerCipher::new(&mode, &key).filter(|_| offered) else {
            return Err(Exit::Close(4016, "Unknown encryption mode."));
        };
        let address = data.and_then(|data| {
            let ip = data
                .get("address")?
                .as_str()?
                .parse::<std::net::IpAddr>()
                .ok()?;
            let port = u16::try_from(data.get("port")?.as_u64()?).ok()?;
            Some(std::net::SocketAddr::new(ip, port))
        });
        {
            let mut state = self.shared.lock();
            let session = state.stats.identifies;
            if let (Some(address), Some(opener)) = (address, ServerCipher::new(&mode, &key)) {
                state.keys.retain(|(a, _, _)| *a != address);
                state.keys.push((address, session, opener));
                if state.keys.len() > 16 {
                    state.keys.remove(0);
                }
            }
            state.cipher = Some(cipher);
            state.stats.mode = Some(mode.clone());
        }
        self.shared.notify();
        #[cfg(feature = "dave")]
        let external_sender = self
            .shared
            .lock()
            .dave
            .as_ref()
            .map(|dave| dave.external_sender());
        #[cfg(not(feature = "dave"))]
        let external_sender: Option<Vec<u8>> = None;
        let version = u8::from(external_sender.is_some());
        let d = json!({"mode": mode, "secret_key": key.to_vec(), "dave_protocol_version": version});
        self.shared.push(4, d);
        if let Some(external_sender) = external_sender {
            self.shared.push_binary(25, &external_sender);
        }
        Ok(())
    }

    async fn on_resume(&mut self, d: &Value) -> Result<(), Exit> {
        if self.authed {
            return Err(Exit::Close(4005, "Already authenticated."));
        }
        let seq_ack = d.get("seq_ack").and_then(Value::as_i64);
        self.shared.lock().stats.resumes.push(seq_ack);
        self.shared.notify();
        self.check_token(d)?;
        let session_id = d.get("session_id").and_then(Value::as_str);
        let replay: Vec<Message> = {
            let mut state = self.shared.lock();
            let replay = match &state.session {
                Some(session) if Some(session.session_id.as_str()) == session_id => session
                    .buffer
                    .iter()
                    .filter(|(seq, _)| seq_ack.is_none_or(|ack| *seq > ack))
                    .map(|(_, text)| text.clone())
                    .collect(),
                _ => return Err(Exit::Close(4006, "Session no longer valid.")),
            };
            // Live before RESUMED goes out, so that a test acting on the client's `Resumed` finds
            // this connection; under the snapshot's lock, so that a message pushed from now on is
            // sent after the replay (this task sends it), none twice and none lost.
            state.live = Some((self.id, self.tx.clone()));
            replay
        };
        self.authed = true;
        self.shared.ack_heartbeats.store(true, Ordering::Relaxed);
        let resumed = json!({"op": 9, "d": null}).to_string();
        self.send(Message::text(resumed)).await?;
        for message in replay {
            self.send(message).await?;
        }
        Ok(())
    }
}
