//! The send clock: Opus frames every 20 ms on absolute deadlines, RTP numbering, speaking, silence.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::driver::{DriverShared, WsCmd};
use crate::error::VoiceError;
use crate::input::Track;
use crate::rtp::{self, RtpHeader};

/// Length of one Opus frame.
pub const FRAME: Duration = Duration::from_millis(20);
/// Silence frames sent when audio stops, so decoders do not interpolate.
const SILENCE_FRAMES: u32 = 5;
/// How far behind the clock may fall before it is set to now instead of catching up in a burst.
const MAX_LAG: Duration = Duration::from_millis(200);
/// How long an input (ffmpeg starting, a slow stream) may keep the next frame waiting before the
/// track fails.
const STALL: Duration = Duration::from_secs(10);

/// What woke the player while it waited for its input.
enum Wake {
    Ready,
    Cmd(Option<PlayerCmd>),
    Stalled,
}

/// Where a track is.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum TrackState {
    /// Sending frames.
    Playing,
    /// Paused: no frames until resumed.
    Paused,
    /// Over, and why.
    Ended(TrackEnd),
}

/// Why a track ended.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum TrackEnd {
    /// Its last frame was sent.
    Finished,
    /// [`TrackHandle::stop`] was called.
    Stopped,
    /// Another track was played on the connection.
    Replaced,
    /// Its input failed.
    Failed(Arc<VoiceError>),
    /// The connection closed.
    ConnectionClosed,
}

/// Commands to the player task.
#[derive(Debug)]
pub(crate) enum PlayerCmd {
    Play(u64, Track, watch::Sender<TrackState>),
    Pause(u64),
    Resume(u64),
    Stop(u64),
    Seek(u64, Duration, oneshot::Sender<Result<(), VoiceError>>),
    Volume(u64, f32, oneshot::Sender<bool>),
}

/// A handle to a playing track: pause, resume, stop, and learn when it ends.
#[derive(Clone, Debug)]
pub struct TrackHandle {
    pub(crate) id: u64,
    pub(crate) cmds: mpsc::UnboundedSender<PlayerCmd>,
    pub(crate) state: watch::Receiver<TrackState>,
}

impl TrackHandle {
    /// Pauses it (five silence frames are sent, then nothing).
    pub fn pause(&self) {
        let _ = self.cmds.send(PlayerCmd::Pause(self.id));
    }

    /// Resumes it after [`pause`](Self::pause).
    pub fn resume(&self) {
        let _ = self.cmds.send(PlayerCmd::Resume(self.id));
    }

    /// Stops it for good.
    pub fn stop(&self) {
        let _ = self.cmds.send(PlayerCmd::Stop(self.id));
    }

    /// Moves to `position` from the start (PCM tracks held in memory, files decoded in-process).
    ///
    /// # Errors
    /// [`VoiceErrorKind::Input`](crate::VoiceErrorKind::Input) when the track cannot seek
    /// (pre-encoded Opus, streams, ffmpeg), [`VoiceErrorKind::Closed`](crate::VoiceErrorKind::Closed)
    /// when it is no longer the current track.
    pub async fn seek(&self, position: Duration) -> Result<(), VoiceError> {
        let (tx, rx) = oneshot::channel();
        let _ = self.cmds.send(PlayerCmd::Seek(self.id, position, tx));
        rx.await
            .unwrap_or_else(|_| Err(VoiceError::new(crate::VoiceErrorKind::Closed)))
    }

    /// Sets the volume, a factor on the samples before encoding (1.0 unchanged, 0.5 half);
    /// `false` when the track is pre-encoded Opus (unchanged) or no longer current.
    pub async fn set_volume(&self, volume: f32) -> bool {
        let (tx, rx) = oneshot::channel();
        let _ = self.cmds.send(PlayerCmd::Volume(self.id, volume, tx));
        rx.await.unwrap_or(false)
    }

    /// Its state now.
    pub fn state(&self) -> TrackState {
        self.state.borrow().clone()
    }

    /// Waits until it ends, and says why.
    pub async fn ended(&self) -> TrackEnd {
        let mut state = self.state.clone();
        loop {
            if let TrackState::Ended(end) = &*state.borrow_and_update() {
                return end.clone();
            }
            if state.changed().await.is_err() {
                return TrackEnd::ConnectionClosed;
            }
        }
    }
}

struct Current {
    id: u64,
    track: Track,
    state: watch::Sender<TrackState>,
    paused: bool,
}

/// RTP numbering of the outgoing stream.
struct Counters {
    sequence: u16,
    timestamp: u32,
    nonce: u32,
}

struct Player {
    shared: Arc<DriverShared>,
    ws: mpsc::UnboundedSender<WsCmd>,
    counters: Counters,
    current: Option<Current>,
}

impl Player {
    /// Applies a command; returns whether the current track changed (replaced, stopped, paused).
    fn apply(&mut self, cmd: PlayerCmd) -> bool {
        let is = |current: &Option<Current>, id| current.as_ref().is_some_and(|c| c.id == id);
        match cmd {
            PlayerCmd::Play(id, track, state) => {
                if let Some(old) = self.current.take() {
                    old.state
                        .send_replace(TrackState::Ended(TrackEnd::Replaced));
                }
                state.send_replace(TrackState::Playing);
                self.current = Some(Current {
                    id,
                    track,
                    state,
                    paused: false,
                });
                true
            }
            PlayerCmd::Pause(id) if is(&self.current, id) => {
                if let Some(current) = &mut self.current {
                    current.paused = true;
                    current.state.send_replace(TrackState::Paused);
                }
                true
            }
            PlayerCmd::Resume(id) if is(&self.current, id) => {
                if let Some(current) = &mut self.current {
                    current.paused = false;
                    current.state.send_replace(TrackState::Playing);
                }
                false
            }
            PlayerCmd::Stop(id) if is(&self.current, id) => {
                if let Some(old) = self.current.take() {
                    old.state.send_replace(TrackState::Ended(TrackEnd::Stopped));
                }
                true
            }
            PlayerCmd::Seek(id, to, answer) => {
                let result = match &mut self.current {
                    Some(current) if current.id == id => current.track.seek(to),
                    _ => Err(VoiceError::new(crate::VoiceErrorKind::Closed)),
                };
                let _ = answer.send(result);
                false
            }
            PlayerCmd::Volume(id, volume, answer) => {
                let done = match &mut self.current {
                    Some(current) if current.id == id => current.track.set_volume(volume),
                    _ => false,
                };
                let _ = answer.send(done);
                false
            }
            _ => false,
        }
    }

    fn speaking(&self, flags: u8) -> impl Future<Output = ()> + Send + 'static {
        let ws = self.ws.clone();
        async move { speaking(ws, flags).await }
    }

    async fn send_frame(&mut self, frame: &[u8]) {
        let transport = self.shared.transport.borrow().clone();
        let c = &mut self.counters;
        let header = RtpHeader {
            sequence: c.sequence,
            timestamp: c.timestamp,
            ssrc: transport.ssrc,
        };
        let sealed = self.shared.dave().as_mut().map(|dave| dave.encrypt(frame));
        let frame = sealed.as_deref().unwrap_or(frame);
        let mut packet = Vec::with_capacity(rtp::HEADER_LEN + frame.len() + 20);
        packet.extend_from_slice(&header.to_bytes());
        packet.extend_from_slice(frame);
        match transport.cipher.seal(&mut packet, rtp::HEADER_LEN, c.nonce) {
            Ok(()) => {
                if let Err(error) = transport.socket.send(&packet).await {
                    tracing::debug!(%error, "voice packet not sent");
                }
            }
            Err(error) => tracing::warn!(%error, "voice packet not sealed"),
        }
        c.sequence = c.sequence.wrapping_add(1);
        c.timestamp = c.timestamp.wrapping_add(rtp::TIMESTAMP_STEP);
        c.nonce = c.nonce.wrapping_add(1);
    }

    /// Plays the current track until it ends, is paused, stopped or replaced.
    async fn play(&mut self, cmds: &mut mpsc::UnboundedReceiver<PlayerCmd>) {
        self.speaking(1).await;
        let mut start = Instant::now();
        let mut n: u32 = 0;
        let mut end = None;
        let mut woken_by = None;
        loop {
            let mut changed = false;
            if let Some(cmd) = woken_by.take() {
                changed |= self.apply(cmd);
            }
            while let Ok(cmd) = cmds.try_recv() {
                changed |= self.apply(cmd);
            }
            if changed {
                if self.current.as_ref().is_some_and(|c| !c.paused) {
                    continue;
                }
                break;
            }
            let Some(current) = &mut self.current else {
                break;
            };
            // Wait for the input without blocking the runtime, still taking commands.
            let track = &mut current.track;
            let wake = tokio::select! {
                biased;
                () = std::future::poll_fn(|cx| track.poll_ready(cx)) => Wake::Ready,
                cmd = cmds.recv() => Wake::Cmd(cmd),
                () = tokio::time::sleep(STALL) => Wake::Stalled,
            };
            match wake {
                Wake::Ready => {}
                Wake::Cmd(Some(cmd)) => {
                    woken_by = Some(cmd);
                    continue;
                }
                Wake::Cmd(None) => break,
                Wake::Stalled => {
                    let error = VoiceError::input(format!("the input stalled for {STALL:?}"));
                    end = Some(TrackEnd::Failed(Arc::new(error)));
                    break;
                }
            }
            let frame = match current.track.next_frame() {
                Some(Ok(frame)) => frame,
                Some(Err(error)) => {
                    end = Some(TrackEnd::Failed(Arc::new(error)));
                    break;
                }
                None => {
                    end = Some(TrackEnd::Finished);
                    break;
                }
            };
            self.send_frame(&frame).await;
            n += 1;
            let deadline = start + FRAME * n;
            let now = Instant::now();
            if now > deadline + MAX_LAG {
                start = now;
                n = 0;
                continue;
            }
            tokio::time::sleep_until(deadline).await;
        }
        if let Some(end) = end
            && let Some(current) = self.current.take()
        {
            current.state.send_replace(TrackState::Ended(end));
        }
        for _ in 0..SILENCE_FRAMES {
            self.send_frame(&rtp::SILENCE_FRAME).await;
            n += 1;
            tokio::time::sleep_until(start + FRAME * n).await;
        }
        self.speaking(0).await;
    }
}

/// Sends SPEAKING and waits (up to a second) until it is on the socket, so it precedes audio.
async fn speaking(ws: mpsc::UnboundedSender<WsCmd>, flags: u8) {
    let (tx, rx) = oneshot::channel();
    if ws.send(WsCmd::Speaking(flags, tx)).is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(1), rx).await;
    }
}

/// The player task.
pub(crate) async fn run_player(
    shared: Arc<DriverShared>,
    mut cmds: mpsc::UnboundedReceiver<PlayerCmd>,
    ws: mpsc::UnboundedSender<WsCmd>,
) {
    let mut player = Player {
        shared,
        ws,
        counters: Counters {
            sequence: fastrand::u16(..),
            timestamp: fastrand::u32(..),
            nonce: 0,
        },
        current: None,
    };
    loop {
        if player.current.as_ref().is_some_and(|c| !c.paused) {
            player.play(&mut cmds).await;
            continue;
        }
        match cmds.recv().await {
            Some(cmd) => {
                player.apply(cmd);
            }
            None => break,
        }
    }
    if let Some(current) = player.current.take() {
        current
            .state
            .send_replace(TrackState::Ended(TrackEnd::ConnectionClosed));
    }
}
