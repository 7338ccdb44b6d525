//! A local voice server on loopback (voice gateway v8 + UDP) for testing voice clients.
//!
//! It shares no code with the client side of this crate: its RTP and crypto helpers are its own,
//! over the RustCrypto crates directly, so a bug in one cannot hide in the other.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use nostrum_voice::local::{LocalVoiceConfig, LocalVoiceServer};
//! let server = LocalVoiceServer::start(LocalVoiceConfig::default()).await?;
//! // connect a client to server.endpoint() with server.token(), then:
//! let packets = server.received();
//! # Ok(()) }
//! ```

#[cfg(feature = "dave")]
mod dave;
mod udp;
mod ws;

#[cfg(feature = "dave")]
pub use self::dave::SIMULATED_MEMBER;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_websockets::Message;

use self::udp::ServerCipher;

/// Configuration of a [`LocalVoiceServer`].
#[derive(Clone, Debug)]
pub struct LocalVoiceConfig {
    /// The voice token the server accepts (default `"local-voice-token"`); another closes with 4004.
    pub token: String,
    /// The modes offered in READY (default: both rtpsize AEAD modes and a retired one).
    pub modes: Vec<String>,
    /// The `heartbeat_interval` sent in HELLO (default 5 s).
    pub heartbeat_interval: Duration,
    /// The SSRC given to the client (default 4242).
    pub ssrc: u32,
    /// The voice channel (default 127121515262115840): the DAVE group id.
    pub channel_id: u64,
    /// Whether to ask for DAVE end-to-end encryption when the client offers it (default false):
    /// the server then runs the MLS handshake with a simulated second member.
    #[cfg(feature = "dave")]
    pub dave: bool,
    /// Whether to hold DAVE transitions back after the client is ready (op 23) until
    /// [`LocalVoiceServer::execute_dave_transition`] (default false), to test passthrough.
    #[cfg(feature = "dave")]
    pub dave_hold_transition: bool,
}

impl Default for LocalVoiceConfig {
    fn default() -> Self {
        Self {
            token: "local-voice-token".to_owned(),
            modes: [
                "aead_aes256_gcm_rtpsize",
                "aead_xchacha20_poly1305_rtpsize",
                "xsalsa20_poly1305_lite_rtpsize",
            ]
            .map(String::from)
            .to_vec(),
            heartbeat_interval: Duration::from_secs(5),
            ssrc: 4242,
            channel_id: 127_121_515_262_115_840,
            #[cfg(feature = "dave")]
            dave: false,
            #[cfg(feature = "dave")]
            dave_hold_transition: false,
        }
    }
}

/// An RTP packet the server received and decrypted.
#[derive(Clone, Debug)]
pub struct ReceivedPacket {
    /// RTP sequence number.
    pub sequence: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// The sender's SSRC.
    pub ssrc: u32,
    /// The voice session whose key opened it: 1 for the one made by the first IDENTIFY, 2 for
    /// the second, and so on.
    pub session: usize,
    /// The decrypted Opus frame.
    pub opus: Vec<u8>,
    /// When it arrived.
    pub at: Instant,
}

/// A heartbeat (op 3) the server received.
#[derive(Clone, Debug)]
pub struct HeartbeatRecord {
    /// Its `t` nonce.
    pub t: Option<u64>,
    /// Its `seq_ack`.
    pub seq_ack: Option<i64>,
    /// When it arrived.
    pub at: Instant,
}

/// What the server has seen, for checks.
#[derive(Clone, Debug, Default)]
pub struct ServerStats {
    /// IDENTIFYs (op 0) received.
    pub identifies: usize,
    /// RESUMEs (op 7) received, with their `seq_ack`.
    pub resumes: Vec<Option<i64>>,
    /// Heartbeats received.
    pub heartbeats: Vec<HeartbeatRecord>,
    /// Speaking flags (op 5) the client sent, in order, with when they arrived.
    pub speaking: Vec<(u64, Instant)>,
    /// The mode the client selected (op 1), if any.
    pub mode: Option<String>,
    /// UDP datagrams that were neither IP discovery nor a packet that opened with the session key.
    pub rejected: usize,
    /// IP discovery requests answered.
    pub discoveries: usize,
    /// Frames the simulated DAVE member decrypted end to end.
    pub e2ee_frames: usize,
    /// Frames that came without DAVE framing while DAVE was on (passthrough, silence).
    pub passthrough_frames: usize,
    /// DAVE transitions executed.
    pub dave_transitions: usize,
    /// Frames the simulated member sent E2EE-encrypted (by [`LocalVoiceServer::send_audio`]).
    pub e2ee_sent: usize,
    /// WebSocket connections open now.
    pub open_connections: usize,
    /// DAVE key packages (op 26) the client sent: one per (re-)join of the MLS group.
    pub dave_key_packages: usize,
    /// The transition ids of the client's DAVE MLS INVALID COMMIT WELCOME messages (op 31).
    pub dave_invalid: Vec<u64>,
}

pub(crate) enum ConnCmd {
    Send(Message),
    Close(u16),
    Drop,
}

struct Session {
    session_id: String,
    seq: i64,
    buffer: VecDeque<(i64, Message)>,
}

#[derive(Default)]
struct State {
    received: Vec<ReceivedPacket>,
    stats: ServerStats,
    client_addr: Option<SocketAddr>,
    cipher: Option<ServerCipher>,
    /// The keys of the sessions described so far, by the client address SELECT PROTOCOL gave,
    /// with their session number: packets of an old session still open with its key (a moving
    /// client's last frames are not lost to the swap).
    keys: Vec<(SocketAddr, usize, ServerCipher)>,
    send_nonce: u32,
    session: Option<Session>,
    live: Option<(u64, mpsc::UnboundedSender<ConnCmd>)>,
    #[cfg(feature = "dave")]
    dave: Option<dave::ServerDave>,
    /// The user of the session, when its IDENTIFY offered DAVE (for an upgrade later).
    #[cfg(feature = "dave")]
    dave_user: Option<u64>,
}

struct Shared {
    config: LocalVoiceConfig,
    ack_heartbeats: AtomicBool,
    udp_port: u16,
    socket: Arc<UdpSocket>,
    state: Mutex<State>,
    changed: watch::Sender<u64>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn notify(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    /// Numbers a server message (v8 buffered resume), keeps it for replay and sends it if a
    /// connection is live.
    fn push(&self, op: u8, d: Value) {
        self.push_with(|seq| Message::text(json!({"op": op, "d": d, "seq": seq}).to_string()));
    }

    /// As [`push`](Self::push) for a binary message: `seq (u16 BE), op, payload`.
    #[cfg_attr(not(feature = "dave"), allow(dead_code))]
    fn push_binary(&self, op: u8, payload: &[u8]) {
        self.push_with(|seq| {
            let mut frame = (seq as u16).to_be_bytes().to_vec();
            frame.push(op);
            frame.extend_from_slice(payload);
            Message::binary(frame)
        });
    }

    fn push_with(&self, make: impl FnOnce(i64) -> Message) {
        let mut state = self.lock();
        let Some(session) = state.session.as_mut() else {
            return;
        };
        session.seq += 1;
        let message = make(session.seq);
        session.buffer.push_back((session.seq, message.clone()));
        if session.buffer.len() > 1_000 {
            session.buffer.pop_front();
        }
        if let Some((_, tx)) = &state.live {
            let _ = tx.send(ConnCmd::Send(message));
        }
    }
}

/// The local voice server: a voice WebSocket gateway (v8) and a UDP socket on 127.0.0.1, port 0.
///
/// It answers IP discovery, decrypts and records every RTP packet with the negotiated mode, and can
/// send audio, speaking and client connect/disconnect messages to the client. Tasks end on drop.
#[derive(Debug)]
pub struct LocalVoiceServer {
    shared: Arc<Shared>,
    endpoint: String,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("udp_port", &self.udp_port)
            .finish_non_exhaustive()
    }
}

impl LocalVoiceServer {
    /// Binds the WebSocket and UDP ports on loopback and starts serving.
    ///
    /// # Errors
    /// When a socket cannot be bound.
    pub async fn start(config: LocalVoiceConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
        let endpoint = format!("ws://{}", listener.local_addr()?);
        let shared = Arc::new(Shared {
            config,
            ack_heartbeats: AtomicBool::new(true),
            udp_port: socket.local_addr()?.port(),
            socket,
            state: Mutex::new(State::default()),
            changed: watch::channel(0).0,
        });
        let tasks = vec![
            tokio::spawn(ws::serve(listener, shared.clone())),
            tokio::spawn(udp::serve(shared.clone())),
        ];
        Ok(Self {
            shared,
            endpoint,
            tasks,
        })
    }

    /// The endpoint to connect to, `ws://127.0.0.1:PORT` (as VOICE_SERVER_UPDATE's `endpoint`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The voice token accepted.
    pub fn token(&self) -> &str {
        &self.shared.config.token
    }

    /// The UDP port audio goes to.
    pub fn udp_port(&self) -> u16 {
        self.shared.udp_port
    }

    /// Every packet received and decrypted so far, in arrival order.
    pub fn received(&self) -> Vec<ReceivedPacket> {
        self.shared.lock().received.clone()
    }

    /// What the server has seen so far.
    pub fn stats(&self) -> ServerStats {
        self.shared.lock().stats.clone()
    }

    /// Waits until `check` holds for the received packets and stats, or `timeout` passes.
    /// Returns whether it held.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&[ReceivedPacket], &ServerStats) -> bool,
    ) -> bool {
        let mut changed = self.shared.changed.subscribe();
        tokio::time::timeout(timeout, async {
            loop {
                {
                    let state = self.shared.lock();
                    if check(&state.received, &state.stats) {
                        return;
                    }
                }
                if changed.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        })
        .await
        .is_ok()
    }

    /// Sends SPEAKING (op 5) for another member: `user_id` speaks with `ssrc`.
    pub fn speaking(&self, user_id: u64, ssrc: u32, speaking: u8) {
        let d = json!({"user_id": user_id.to_string(), "ssrc": ssrc, "speaking": speaking});
        self.shared.push(5, d);
    }

    /// Sends CLIENTS CONNECT (op 11) for `user_ids`.
    pub fn clients_connect(&self, user_ids: &[u64]) {
        let ids: Vec<String> = user_ids.iter().map(u64::to_string).collect();
        self.shared.push(11, json!({"user_ids": ids}));
    }

    /// Sends CLIENT DISCONNECT (op 13) for `user_id`.
    pub fn client_disconnect(&self, user_id: u64) {
        self.shared
            .push(13, json!({"user_id": user_id.to_string()}));
    }

    /// Sends Opus `frames` to the client as RTP from `ssrc` (sequence and timestamp from `first`
    /// upward by 1 and 960), encrypted with the session's mode. Returns how many were sent (0 when
    /// no session is described or the client's address is unknown).
    pub async fn send_audio(&self, ssrc: u32, first: (u16, u32), frames: &[Vec<u8>]) -> usize {
        let mut sent = 0;
        for (i, frame) in frames.iter().enumerate() {
            let Some((packet, addr)) = ({
                let mut state = self.shared.lock();
                let nonce = state.send_nonce;
                state.send_nonce = nonce.wrapping_add(1);
                let seq = first.0.wrapping_add(i as u16);
                let ts = first.1.wrapping_add(960u32.wrapping_mul(i as u32));
                #[cfg(feature = "dave")]
                let sealed = state.dave.as_mut().map(|dave| dave.seal(frame));
                #[cfg(feature = "dave")]
                if sealed
                    .as_ref()
                    .is_some_and(|sealed| sealed.ends_with(&[0xFA, 0xFA]))
                {
                    state.stats.e2ee_sent += 1;
                }
                #[cfg(feature = "dave")]
                let frame = sealed.as_deref().unwrap_or(frame);
                match (&state.cipher, state.client_addr) {
                    (Some(cipher), Some(addr)) => cipher
                        .seal(seq, ts, ssrc, frame, nonce)
                        .map(|packet| (packet, addr)),
                    _ => None,
                }
            }) else {
                return sent;
            };
            if self.shared.socket.send_to(&packet, addr).await.is_ok() {
                sent += 1;
            }
        }
        sent
    }

    /// Stops answering heartbeats (the client should see a zombie connection and resume);
    /// a new connection answers them again.
    pub fn stop_heartbeat_acks(&self) {
        self.shared.ack_heartbeats.store(false, Ordering::Relaxed);
    }

    /// Executes a DAVE transition held back by `dave_hold_transition`; whether there was one.
    #[cfg(feature = "dave")]
    pub fn execute_dave_transition(&self) -> bool {
        let executed = {
            let mut state = self.shared.lock();
            let held = state.dave.as_mut().and_then(|dave| dave.held.take());
            let executed = held.and_then(|id| {
                let dave = state.dave.as_mut()?;
                dave.transition_ready(id)
            });
            if executed.is_some() {
                state.stats.dave_transitions += 1;
            }
            executed
        };
        if let Some(id) = executed {
            self.shared.push(22, json!({"transition_id": id}));
            self.shared.notify();
        }
        executed.is_some()
    }

    /// Upgrades a session that began without DAVE (protocol version 0): the server starts an MLS
    /// group with a simulated second member and sends the external sender package (op 25); the
    /// client answers with a key package and the group is joined as at the start of a DAVE
    /// session (proposals, commit, welcome, transition). Returns false when the session already
    /// has DAVE or the client did not offer it in IDENTIFY.
    #[cfg(feature = "dave")]
    pub fn dave_upgrade(&self) -> bool {
        let external_sender = {
            let mut state = self.shared.lock();
            if state.dave.is_some() {
                return false;
            }
            let Some(user) = state.dave_user else {
                return false;
            };
            state.dave = dave::ServerDave::new(user, self.shared.config.channel_id);
            state.dave.as_ref().map(dave::ServerDave::external_sender)
        };
        match external_sender {
            Some(package) => {
                self.shared.push_binary(25, &package);
                true
            }
            None => false,
        }
    }

    /// Sends DAVE PREPARE EPOCH (op 24) with `protocol_version` and `epoch`; epoch 1 announces a
    /// new MLS group: the client should start over with a new key package (op 26), which the
    /// server answers by adding a fresh simulated member.
    #[cfg(feature = "dave")]
    pub fn dave_prepare_epoch(&self, protocol_version: u16, epoch: u64) {
        let d = json!({"protocol_version": protocol_version, "epoch": epoch});
        self.shared.push(24, d);
    }

    /// Sends DAVE PREPARE TRANSITION (op 21) to protocol version 0 (a downgrade: frames pass
    /// through once it executes); the simulated member prepares it too. Returns the transition id,
    /// `None` without a DAVE session.
    #[cfg(feature = "dave")]
    pub fn dave_downgrade(&self) -> Option<u16> {
        let id = self.shared.lock().dave.as_mut()?.prepare_downgrade()?;
        let d = json!({"transition_id": id, "protocol_version": 0});
        self.shared.push(21, d);
        Some(id)
    }

    /// Sends an announce commit (op 29) or a welcome (op 30) that cannot be processed; the client
    /// should answer with op 31 and a new key package. Returns whether there was a DAVE session.
    #[cfg(feature = "dave")]
    pub fn dave_send_invalid(&self, op: u8) -> bool {
        let payload = match self.shared.lock().dave.as_mut() {
            Some(dave) => dave.invalid_commit_welcome(),
            None => return false,
        };
        self.shared.push_binary(op, &payload);
        true
    }

    /// Drops the live WebSocket without a close frame (the client should resume).
    pub fn drop_connection(&self) {
        if let Some((_, tx)) = self.shared.lock().live.take() {
            let _ = tx.send(ConnCmd::Drop);
        }
    }

    /// Closes the live WebSocket with `code`.
    pub fn close_with(&self, code: u16) {
        if let Some((_, tx)) = self.shared.lock().live.take() {
            let _ = tx.send(ConnCmd::Close(code));
        }
    }
}

impl Drop for LocalVoiceServer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        if let Some((_, tx)) = self.shared.lock().live.take() {
            let _ = tx.send(ConnCmd::Drop);
        }
    }
}
