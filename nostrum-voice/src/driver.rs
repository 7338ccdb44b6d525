//! The driver's background tasks: the voice gateway session (heartbeats, resume) and UDP receive.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nostrum_core::event::{VoiceIncomingPacket, VoiceReady, VoiceSpeakingUpdate};
use nostrum_core::model::id::Id;
use nostrum_core::model::id::marker::{ChannelMarker, GuildMarker, UserMarker};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::AbortHandle;

use crate::connection::{ConnectionInfo, ConnectionStatus, VoiceEvent};
use crate::dave::{Dave, DaveOut};
use crate::gateway::{self, CloseAction, Established, GatewayMsg, Incoming, Ws, op};
use crate::rtp;
use crate::udp::Transport;

/// What the tasks of one connection share.
#[derive(Debug)]
pub(crate) struct DriverShared {
    pub(crate) guild_id: Id<GuildMarker>,
    /// The voice channel (changes when the connection moves).
    pub(crate) channel_id: AtomicU64,
    pub(crate) events: broadcast::Sender<VoiceEvent>,
    pub(crate) transport: watch::Sender<Arc<Transport>>,
    pub(crate) users: Mutex<HashMap<u32, Id<UserMarker>>>,
    pub(crate) status: watch::Sender<ConnectionStatus>,
    /// The DAVE session, when the server asked for end-to-end encryption.
    pub(crate) dave: Mutex<Option<Dave>>,
    pub(crate) user_id: u64,
    /// Whether received Opus is decoded to PCM.
    pub(crate) decode: AtomicBool,
}

impl DriverShared {
    pub(crate) fn emit(&self, event: VoiceEvent) {
        let _ = self.events.send(event);
    }

    fn user_of(&self, ssrc: u32) -> Option<Id<UserMarker>> {
        self.users
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&ssrc)
            .copied()
    }

    pub(crate) fn dave(&self) -> std::sync::MutexGuard<'_, Option<Dave>> {
        self.dave.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The voice channel now.
    pub(crate) fn channel(&self) -> Id<ChannelMarker> {
        Id::new(self.channel_id.load(Ordering::Relaxed))
    }

    /// Starts (or ends) DAVE for a newly described session.
    pub(crate) fn start_dave(&self, version: u16) {
        let channel = self.channel_id.load(Ordering::Relaxed);
        *self.dave() = Dave::new(version, self.user_id, channel);
    }

    /// Takes a newly established session: DAVE, READY, the transport the player and the receiver
    /// use from now on. Returns the socket and the messages that came during the handshake.
    fn adopt(&self, established: Established) -> (Ws, Duration, Option<i64>, Vec<GatewayMsg>) {
        self.start_dave(established.dave_version);
        let transport = Arc::new(established.transport);
        self.emit(self.ready_event(&transport));
        self.transport.send_replace(transport);
        (
            established.ws,
            established.heartbeat,
            established.seq_ack,
            established.backlog,
        )
    }

    pub(crate) fn ready_event(&self, transport: &Transport) -> VoiceEvent {
        VoiceEvent::Ready(VoiceReady {
            guild_id: self.guild_id,
            channel_id: self.channel(),
            ssrc: transport.ssrc,
            mode: transport.cipher.mode().name().to_owned(),
            dave: self.dave().is_some(),
        })
    }
}

/// Commands to the gateway task.
#[derive(Debug)]
pub(crate) enum WsCmd {
    /// Send SPEAKING with these flags, then answer.
    Speaking(u8, oneshot::Sender<()>),
    /// Move to another channel: a new session with these answers to op 4, then the old socket
    /// is closed; the player goes on with the new transport.
    Move(
        Box<ConnectionInfo>,
        oneshot::Sender<Result<(), crate::VoiceError>>,
    ),
    /// Close the socket and stop.
    Leave,
}

type MoveReply = oneshot::Sender<Result<(), crate::VoiceError>>;

enum LoopEnd {
    Leave,
    Move(Box<ConnectionInfo>, MoveReply),
    Closed(Option<u16>),
    Zombie,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn user_id(value: Option<&Value>) -> Option<Id<UserMarker>> {
    let value = value?;
    let id = value
        .as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| value.as_u64())?;
    Id::new_checked(id)
}

/// The DAVE version a message upgrades a session without DAVE to: the external sender package
/// (op 25) or a new group (op 24 with epoch 1) while no DAVE session exists. The session then
/// starts, and the message is handled by it.
fn dave_upgrade(msg: &GatewayMsg) -> Option<u16> {
    match (msg.op, &msg.binary) {
        (25, Some(_)) => Some(crate::dave::MAX_VERSION),
        (24, None) if msg.d.get("epoch").and_then(Value::as_u64) == Some(1) => msg
            .d
            .get("protocol_version")
            .and_then(Value::as_u64)
            .and_then(|v| u16::try_from(v).ok())
            .filter(|&v| v >= 1),
        _ => None,
    }
}

/// Handles a message of the session (not HELLO, not an ACK); returns DAVE's answers to send.
fn handle(shared: &DriverShared, msg: GatewayMsg) -> Vec<DaveOut> {
    if shared.dave().is_none()
        && let Some(version) = dave_upgrade(&msg)
    {
        tracing::info!(version, "DAVE starts on a session that began without it");
        shared.start_dave(version);
    }
    if let Some(payload) = &msg.binary {
        return shared
            .dave()
            .as_mut()
            .map(|dave| dave.on_binary(msg.op, payload))
            .unwrap_or_default();
    }
    match msg.op {
        21..=24 => {
            return shared
                .dave()
                .as_mut()
                .map(|dave| dave.on_json(msg.op, &msg.d))
                .unwrap_or_default();
        }
        op::SPEAKING => {
            let Some(ssrc) = msg
                .d
                .get("ssrc")
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
            else {
                return Vec::new();
            };
            let user_id = user_id(msg.d.get("user_id"));
            if let Some(user) = user_id {
                shared
                    .users
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(ssrc, user);
            }
            let speaking = msg.d.get("speaking").and_then(Value::as_u64).unwrap_or(0) as u8;
            shared.emit(VoiceEvent::Speaking(VoiceSpeakingUpdate {
                guild_id: shared.guild_id,
                user_id,
                ssrc,
                speaking,
            }));
        }
        op::CLIENTS_CONNECT => {
            let users = msg
                .d
                .get("user_ids")
                .and_then(Value::as_array)
                .map(|ids| ids.iter().filter_map(|id| user_id(Some(id))).collect())
                .unwrap_or_default();
            shared.emit(VoiceEvent::ClientsConnect(users));
        }
        op::CLIENT_DISCONNECT => {
            if let Some(user) = user_id(msg.d.get("user_id")) {
                shared
                    .users
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .retain(|_, u| *u != user);
                shared.emit(VoiceEvent::ClientDisconnect(user));
            }
        }
        other => tracing::trace!(op = other, "voice gateway message ignored"),
    }
    Vec::new()
}

/// Handles `msg` and sends what DAVE answers. `false` when the socket failed.
async fn handle_and_reply(ws: &mut Ws, shared: &DriverShared, msg: GatewayMsg) -> bool {
    for out in handle(shared, msg) {
        let sent = match out {
            DaveOut::Binary(op, payload) => gateway::send_binary(ws, op, &payload).await,
            DaveOut::Json(op, d) => gateway::send(ws, op, d).await,
            DaveOut::Transitioned(transition_id, protocol_version) => {
                shared.emit(VoiceEvent::DaveTransition {
                    transition_id,
                    protocol_version,
                });
                Ok(())
            }
        };
        if sent.is_err() {
            return false;
        }
    }
    true
}

async fn session_loop(
    ws: &mut Ws,
    heartbeat: Duration,
    seq_ack: &mut Option<i64>,
    shared: &DriverShared,
    cmds: &mut mpsc::UnboundedReceiver<WsCmd>,
) -> LoopEnd {
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    let mut acked = true;
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if !acked {
                    return LoopEnd::Zombie;
                }
                acked = false;
                let d = json!({"t": unix_ms(), "seq_ack": *seq_ack});
                if gateway::send(ws, op::HEARTBEAT, d).await.is_err() {
                    return LoopEnd::Closed(None);
                }
            }
            incoming = gateway::recv(ws) => match incoming {
                Err(error) => tracing::debug!(%error, "bad voice gateway message skipped"),
                Ok(Incoming::Closed(code)) => return LoopEnd::Closed(code),
                Ok(Incoming::Msg(msg)) => {
                    if msg.seq.is_some() {
                        *seq_ack = msg.seq;
                    }
                    if msg.op == op::HEARTBEAT_ACK {
                        acked = true;
                    } else if !handle_and_reply(ws, shared, msg).await {
                        return LoopEnd::Closed(None);
                    }
                }
            },
            cmd = cmds.recv() => match cmd {
                None | Some(WsCmd::Leave) => return LoopEnd::Leave,
                Some(WsCmd::Move(info, reply)) => return LoopEnd::Move(info, reply),
                Some(WsCmd::Speaking(flags, ack)) => {
                    let ssrc = shared.transport.borrow().ssrc;
                    let d = json!({"speaking": flags, "delay": 0, "ssrc": ssrc});
                    let sent = gateway::send(ws, op::SPEAKING, d).await;
                    let _ = ack.send(());
                    if sent.is_err() {
                        return LoopEnd::Closed(None);
                    }
                }
            },
        }
    }
}

/// The gateway task: runs the session, resumes or re-identifies after a drop, stops on a fatal
/// close (then ends the other tasks of the connection too).
pub(crate) async fn run_session(
    mut info: ConnectionInfo,
    established: Established,
    shared: Arc<DriverShared>,
    mut cmds: mpsc::UnboundedReceiver<WsCmd>,
    others: Vec<AbortHandle>,
) {
    let Established {
        mut ws,
        mut heartbeat,
        mut seq_ack,
        backlog,
        ..
    } = established;
    for msg in backlog {
        handle_and_reply(&mut ws, &shared, msg).await;
    }
    let outcome = loop {
        let end = session_loop(&mut ws, heartbeat, &mut seq_ack, &shared, &mut cmds).await;
        let action = match end {
            LoopEnd::Leave => {
                gateway::close(&mut ws).await;
                break None;
            }
            LoopEnd::Move(new_info, reply) => {
                // Make before break: a failed move leaves the old session as it was.
                match gateway::establish(&new_info).await {
                    Ok(established) => {
                        gateway::close(&mut ws).await;
                        let new_info = *new_info;
                        shared
                            .channel_id
                            .store(new_info.channel_id, Ordering::Relaxed);
                        info = new_info;
                        let (new_ws, new_heartbeat, new_seq_ack, backlog) =
                            shared.adopt(established);
                        (ws, heartbeat, seq_ack) = (new_ws, new_heartbeat, new_seq_ack);
                        for msg in backlog {
                            handle_and_reply(&mut ws, &shared, msg).await;
                        }
                        let _ = reply.send(Ok(()));
                    }
                    Err(error) => {
                        let _ = reply.send(Err(error));
                    }
                }
                continue;
            }
            LoopEnd::Zombie => CloseAction::Resume,
            LoopEnd::Closed(code) => {
                let action = gateway::close_action(code);
                if action == CloseAction::Fatal {
                    break Some(gateway::fatal_close(code));
                }
                action
            }
        };
        shared.status.send_replace(ConnectionStatus::Reconnecting);
        match reconnect(&info, action, &mut seq_ack, &shared).await {
            Ok((new_ws, new_heartbeat)) => {
                ws = new_ws;
                heartbeat = new_heartbeat;
                shared.status.send_replace(ConnectionStatus::Connected);
            }
            Err(error) => break Some(error),
        }
    };
    for task in others {
        task.abort();
    }
    let error = outcome.map(Arc::new);
    if let Some(error) = &error {
        tracing::warn!(%error, "voice connection stopped");
        shared.emit(VoiceEvent::Disconnected(error.clone()));
    }
    shared.status.send_replace(ConnectionStatus::Closed(error));
}

/// Resumes (or, when the session is gone, makes a new one), with backoff, five tries.
async fn reconnect(
    info: &ConnectionInfo,
    mut action: CloseAction,
    seq_ack: &mut Option<i64>,
    shared: &DriverShared,
) -> Result<(Ws, Duration), crate::VoiceError> {
    let mut last = None;
    for attempt in 0..5u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
        }
        if action == CloseAction::Resume {
            let mut backlog = Vec::new();
            match gateway::resume(info, seq_ack, &mut backlog).await {
                Ok((mut ws, heartbeat)) => {
                    for msg in backlog {
                        handle_and_reply(&mut ws, shared, msg).await;
                    }
                    shared.emit(VoiceEvent::Resumed);
                    return Ok((ws, heartbeat));
                }
                Err(error) if error.is_fatal_close() => return Err(error),
                Err(error) => {
                    tracing::debug!(%error, "voice resume failed; identifying anew");
                    action = CloseAction::Reidentify;
                    last = Some(error);
                    continue;
                }
            }
        }
        match gateway::establish(info).await {
            Ok(established) => {
                let (mut ws, heartbeat, new_seq_ack, backlog) = shared.adopt(established);
                *seq_ack = new_seq_ack;
                for msg in backlog {
                    handle_and_reply(&mut ws, shared, msg).await;
                }
                return Ok((ws, heartbeat));
            }
            Err(error) if error.is_fatal_close() => return Err(error),
            Err(error) => last = Some(error),
        }
    }
    Err(last.unwrap_or_else(|| crate::VoiceError::new(crate::VoiceErrorKind::Timeout)))
}

/// One libopus decoder per SSRC, made on first use.
#[derive(Default)]
struct Decoders {
    by_ssrc: HashMap<u32, opus::Decoder>,
    out: Vec<i16>,
}

impl Decoders {
    /// Decodes one packet to 48 kHz interleaved stereo; `None` when libopus refuses it.
    fn decode(&mut self, ssrc: u32, opus: &[u8]) -> Option<Arc<[i16]>> {
        if self.by_ssrc.len() >= 256 && !self.by_ssrc.contains_key(&ssrc) {
            // Speakers come and go: start afresh rather than keep decoders forever.
            self.by_ssrc.clear();
        }
        let decoder = match self.by_ssrc.entry(ssrc) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                entry.insert(opus::Decoder::new(48_000, opus::Channels::Stereo).ok()?)
            }
        };
        // 120 ms, the longest Opus packet, in stereo.
        self.out.resize(5_760 * 2, 0);
        match decoder.decode(opus, &mut self.out, false) {
            Ok(per_channel) => Some(Arc::from(&self.out[..per_channel * 2])),
            Err(error) => {
                tracing::trace!(%error, ssrc, "voice packet not decoded");
                None
            }
        }
    }
}

/// The receive task: opens every RTP packet of the current transport and emits it (decoded to
/// PCM too when the connection asks for it).
pub(crate) async fn run_receiver(shared: Arc<DriverShared>) {
    let mut current = shared.transport.subscribe();
    let mut buf = vec![0u8; 2048];
    let mut decoders = Decoders::default();
    loop {
        let transport = current.borrow_and_update().clone();
        tokio::select! {
            changed = current.changed() => if changed.is_err() { return },
            received = transport.socket.recv(&mut buf) => {
                let Ok(len) = received else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                let data = &buf[..len];
                if rtp::is_rtcp(data) {
                    continue;
                }
                match transport.cipher.open(data) {
                    Ok(opened) if opened.payload_type == rtp::PAYLOAD_TYPE_OPUS => {
                        let ssrc = opened.header.ssrc;
                        let user_id = shared.user_of(ssrc);
                        let opus = match shared.dave().as_mut() {
                            Some(dave) => dave.decrypt(user_id.map(Id::get), &opened.payload),
                            None => Some(opened.payload),
                        };
                        let Some(opus) = opus else { continue };
                        let pcm = if shared.decode.load(Ordering::Relaxed) {
                            decoders.decode(ssrc, &opus)
                        } else {
                            None
                        };
                        shared.emit(VoiceEvent::Packet(VoiceIncomingPacket {
                            guild_id: shared.guild_id,
                            user_id,
                            ssrc,
                            sequence: opened.header.sequence,
                            timestamp: opened.header.timestamp,
                            opus: opus.into(),
                            pcm,
                        }));
                    }
                    Ok(_) => {}
                    Err(error) => tracing::trace!(%error, "voice packet dropped"),
                }
            }
        }
    }
}
