//! A voice connection: the handshake, then the gateway, receive and send tasks behind one handle.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use nostrum_core::Event;
use nostrum_core::event::{VoiceIncomingPacket, VoiceReady, VoiceSpeakingUpdate};
use nostrum_core::model::id::Id;
use nostrum_core::model::id::marker::{ChannelMarker, GuildMarker, UserMarker};
use tokio::sync::{broadcast, mpsc, watch};

use crate::driver::{self, DriverShared, WsCmd};
use crate::error::{VoiceError, VoiceErrorKind};
use crate::gateway;
use crate::input::Track;
use crate::player::{self, PlayerCmd, TrackHandle, TrackState};

/// What a connection needs: VOICE_SERVER_UPDATE's `endpoint` and `token`, VOICE_STATE_UPDATE's
/// `session_id`, and who and where.
#[derive(Clone)]
pub struct ConnectionInfo {
    /// The voice server, `host:port` (`wss://` is assumed) or a URL with its scheme.
    pub endpoint: String,
    /// The session id of the bot's voice state.
    pub session_id: String,
    /// The voice token.
    pub token: String,
    /// The guild.
    pub guild_id: u64,
    /// The bot's user id.
    pub user_id: u64,
    /// The voice channel.
    pub channel_id: u64,
}

impl fmt::Debug for ConnectionInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionInfo")
            .field("endpoint", &self.endpoint)
            .field("session_id", &self.session_id)
            .field("token", &"<redacted>")
            .field("guild_id", &self.guild_id)
            .field("user_id", &self.user_id)
            .field("channel_id", &self.channel_id)
            .finish()
    }
}

/// Something that happened on a voice connection.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum VoiceEvent {
    /// The session is ready (again, after a new handshake).
    Ready(VoiceReady),
    /// Someone started or stopped speaking; their SSRC is now mapped to them.
    Speaking(VoiceSpeakingUpdate),
    /// An audio packet, decrypted.
    Packet(VoiceIncomingPacket),
    /// Users joined the channel (op 11).
    ClientsConnect(Vec<Id<UserMarker>>),
    /// A user left the channel (op 13).
    ClientDisconnect(Id<UserMarker>),
    /// The gateway was resumed after a drop.
    Resumed,
    /// A DAVE transition executed (op 22, or at once for transition id 0): from now on frames
    /// are end-to-end encrypted with the group's new keys, or pass through for protocol version 0.
    DaveTransition {
        /// The transition id.
        transition_id: u16,
        /// The DAVE protocol version from now on (0: no end-to-end encryption).
        protocol_version: u16,
    },
    /// The connection stopped for good.
    Disconnected(Arc<VoiceError>),
}

impl VoiceEvent {
    /// The runtime's event for this one (`VOICE_READY`, `VOICE_SPEAKING_UPDATE`,
    /// `VOICE_INCOMING_PACKET`), to hand to consumers; `None` for the others.
    pub fn into_event(self) -> Option<Event> {
        match self {
            Self::Ready(ready) => Some(Event::VoiceReady(ready)),
            Self::Speaking(update) => Some(Event::VoiceSpeakingUpdate(update)),
            Self::Packet(packet) => Some(Event::VoiceIncomingPacket(packet)),
            _ => None,
        }
    }
}

/// Where a connection is.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ConnectionStatus {
    /// Sending and receiving.
    Connected,
    /// The gateway dropped; resuming or connecting anew.
    Reconnecting,
    /// Over: left (`None`) or stopped by an error.
    Closed(Option<Arc<VoiceError>>),
}

/// A voice connection to one channel. Dropping it leaves (the socket closes, tasks end).
///
/// ```no_run
/// # async fn demo(info: nostrum_voice::ConnectionInfo) -> Result<(), nostrum_voice::VoiceError> {
/// use nostrum_voice::{Track, VoiceConnection};
/// let connection = VoiceConnection::connect(info).await?;
/// let track = connection.play(Track::ogg_opus_file("song.opus").await?);
/// track.ended().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct VoiceConnection {
    shared: Arc<DriverShared>,
    ws: mpsc::UnboundedSender<WsCmd>,
    player: mpsc::UnboundedSender<PlayerCmd>,
    tasks: Vec<tokio::task::AbortHandle>,
    next_track: AtomicU64,
}

fn id<T>(value: u64, what: &str) -> Result<Id<T>, VoiceError> {
    Id::new_checked(value).ok_or_else(|| VoiceError::protocol(format!("{what} must not be 0")))
}

impl VoiceConnection {
    /// Connects: HELLO, IDENTIFY, READY, IP discovery, SELECT PROTOCOL with the best mode,
    /// SESSION DESCRIPTION. Then heartbeats (with `seq_ack`) and resumes in the background.
    ///
    /// # Errors
    /// When a step fails or takes longer than 10 s, the server closes with a fatal code
    /// ([`VoiceErrorKind::FatalClose`]), or offers no supported mode.
    pub async fn connect(info: ConnectionInfo) -> Result<Self, VoiceError> {
        let guild_id: Id<GuildMarker> = id(info.guild_id, "guild_id")?;
        let channel_id: Id<ChannelMarker> = id(info.channel_id, "channel_id")?;
        let _: Id<UserMarker> = id(info.user_id, "user_id")?;
        let established = gateway::establish(&info).await?;
        let transport = Arc::new(established.transport.clone());
        let shared = Arc::new(DriverShared {
            guild_id,
            channel_id: AtomicU64::new(channel_id.get()),
            events: broadcast::channel(4096).0,
            transport: watch::channel(transport.clone()).0,
            users: Mutex::new(HashMap::new()),
            status: watch::channel(ConnectionStatus::Connected).0,
            dave: Mutex::new(None),
            user_id: info.user_id,
            decode: AtomicBool::new(false),
        });
        shared.start_dave(established.dave_version);
        let (ws_tx, ws_rx) = mpsc::unbounded_channel();
        let (player_tx, player_rx) = mpsc::unbounded_channel();
        let receiver = tokio::spawn(driver::run_receiver(shared.clone())).abort_handle();
        let player = tokio::spawn(player::run_player(shared.clone(), player_rx, ws_tx.clone()))
            .abort_handle();
        let others = vec![receiver.clone(), player.clone()];
        let session = tokio::spawn(driver::run_session(
            info,
            established,
            shared.clone(),
            ws_rx,
            others,
        ))
        .abort_handle();
        shared.emit(shared.ready_event(&transport));
        Ok(Self {
            shared,
            ws: ws_tx,
            player: player_tx,
            tasks: vec![session, receiver, player],
            next_track: AtomicU64::new(1),
        })
    }

    /// Events of this connection from now on (speaking, packets, resumes, the end).
    pub fn events(&self) -> broadcast::Receiver<VoiceEvent> {
        self.shared.events.subscribe()
    }

    /// The voice channel it is connected to.
    pub fn channel_id(&self) -> Id<ChannelMarker> {
        self.shared.channel()
    }

    /// Moves to another channel with the answers to op 4 that named it (VOICE_STATE_UPDATE's
    /// session, VOICE_SERVER_UPDATE's endpoint and token): a new voice session is made, then the
    /// old one is closed. The playing track goes on, on the new session, with the same RTP stream
    /// (sequence and timestamp continue; the SSRC is the new session's). [`Voice::join`] does this
    /// when the guild already has a connection.
    ///
    /// [`Voice::join`]: crate::Voice::join
    ///
    /// # Errors
    /// As [`connect`](Self::connect); the old session is kept then.
    /// [`VoiceErrorKind::Closed`] when the connection is closed.
    pub async fn move_to(&self, info: ConnectionInfo) -> Result<(), VoiceError> {
        let _: Id<ChannelMarker> = id(info.channel_id, "channel_id")?;
        if info.guild_id != self.shared.guild_id.get() || info.user_id != self.shared.user_id {
            return Err(VoiceError::protocol(
                "a connection moves within its guild, as the same user",
            ));
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let closed = || VoiceError::new(VoiceErrorKind::Closed);
        self.ws
            .send(WsCmd::Move(Box::new(info), tx))
            .map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }

    /// The SSRC audio is sent with.
    pub fn ssrc(&self) -> u32 {
        self.shared.transport.borrow().ssrc
    }

    /// Whether audio is end-to-end encrypted with DAVE now (needs the `dave` feature).
    pub fn is_e2ee(&self) -> bool {
        self.shared
            .dave()
            .as_ref()
            .is_some_and(|dave| dave.is_active())
    }

    /// The transport encryption mode in use.
    pub fn mode(&self) -> crate::CryptoMode {
        self.shared.transport.borrow().cipher.mode()
    }

    /// Whether received audio is decoded with libopus (one decoder per SSRC), filling
    /// `VoiceIncomingPacket::pcm` with 48 kHz interleaved stereo samples. Off by default.
    pub fn set_decode(&self, decode: bool) {
        self.shared.decode.store(decode, Ordering::Relaxed);
    }

    /// Where the connection is.
    pub fn status(&self) -> ConnectionStatus {
        self.shared.status.borrow().clone()
    }

    /// A watch of [`status`](Self::status).
    pub fn watch_status(&self) -> watch::Receiver<ConnectionStatus> {
        self.shared.status.subscribe()
    }

    /// Plays `track` now, replacing the one playing: SPEAKING first, then a frame every 20 ms,
    /// five silence frames at the end.
    pub fn play(&self, track: Track) -> TrackHandle {
        let id = self.next_track.fetch_add(1, Ordering::Relaxed);
        let (state_tx, state) = watch::channel(TrackState::Playing);
        if self
            .player
            .send(PlayerCmd::Play(id, track, state_tx))
            .is_err()
        {
            tracing::debug!("play on a closed voice connection");
        }
        TrackHandle {
            id,
            cmds: self.player.clone(),
            state,
        }
    }

    /// Leaves: closes the voice socket and ends the tasks. Dropping the connection does the same.
    pub fn leave(self) {}

    /// Waits until the connection is closed, and returns the error that stopped it, if any.
    pub async fn closed(&self) -> Option<Arc<VoiceError>> {
        let mut status = self.shared.status.subscribe();
        loop {
            if let ConnectionStatus::Closed(error) = &*status.borrow_and_update() {
                return error.clone();
            }
            if status.changed().await.is_err() {
                return Some(Arc::new(VoiceError::new(VoiceErrorKind::Closed)));
            }
        }
    }
}

impl Drop for VoiceConnection {
    fn drop(&mut self) {
        let _ = self.ws.send(WsCmd::Leave);
        // The session task ends itself after closing the socket; the others end now.
        for task in &self.tasks[1..] {
            task.abort();
        }
    }
}
