//! Voice for nostrum-core: the voice gateway (v8), UDP/RTP with AEAD transport encryption, DAVE
//! end-to-end encryption, audio out (Opus, Ogg/Opus, PCM, files via symphonia, ffmpeg; PCM encoded
//! with libopus) and in (Opus, decoded to PCM on request).
//!
//! Layout (after songbird's `driver/`): [`crypto`] and [`rtp`] are the packet layer; the client is
//! `gateway` (voice WebSocket), `udp` (IP discovery), `driver` (session and receive tasks),
//! `player` (the 20 ms send clock), `dave` (feature `dave`, on by default) and
//! [`VoiceConnection`] over them; [`Voice`] joins channels through the main gateway; [`local`] is
//! a voice server on loopback for tests that shares no code with the client.
//!
//! ```no_run
//! # async fn demo(client: &nostrum_core::Client, ctx: nostrum_core::Context) -> Result<(), nostrum_voice::VoiceError> {
//! use nostrum_voice::{Track, Voice};
//! let voice = Voice::subscribed(client.consumers()); // once, before `client.run()`
//! // in a handler:
//! let connection = voice.join(&ctx, 41771983423143937, 127121515262115840).await?;
//! let track = connection.play(Track::ogg_opus_file("song.opus").await?);
//! track.ended().await;
//! // PCM, MP3/FLAC/WAV/Vorbis (decoded in-process) and ffmpeg inputs are encoded with libopus:
//! let track = connection.play(Track::file("song.flac").await?);
//! track.set_volume(0.5).await;
//! track.seek(std::time::Duration::from_secs(30)).await?;
//! track.ended().await;
//! # Ok(()) }
//! ```

mod connection;
pub mod crypto;
mod dave;
mod decode;
mod driver;
mod error;
mod ffmpeg;
#[doc(hidden)]
pub mod fuzz;
mod gateway;
mod input;
pub mod local;
mod manager;
mod pcm;
mod player;
pub mod rtp;
mod udp;

pub use connection::{ConnectionInfo, ConnectionStatus, VoiceConnection, VoiceEvent};
pub use crypto::{Cipher, CryptoMode};
pub use error::{VoiceError, VoiceErrorKind};
pub use input::{OggPackets, Track};
pub use manager::Voice;
pub use player::{FRAME, TrackEnd, TrackHandle, TrackState};
