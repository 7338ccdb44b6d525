//! Audio inputs: Opus frames, Ogg/Opus pages, PCM, files (symphonia) and ffmpeg, as one `Track`.

use std::collections::VecDeque;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;

use crate::error::VoiceError;
use crate::pcm::{MemoryPcm, OpusEncode, StreamPcm};

/// What a track reads its Opus frames from; PCM sources can also seek and change volume.
pub(crate) trait FrameSource: Send {
    /// The next 20 ms Opus frame; `None` at the end.
    fn next_frame(&mut self) -> Option<Result<Bytes, VoiceError>>;

    /// `Ready` when [`next_frame`](Self::next_frame) will not block; the player awaits it first.
    fn poll_ready(&mut self, _cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        std::task::Poll::Ready(())
    }

    /// Moves to `to` from the start.
    fn seek(&mut self, _to: Duration) -> Result<(), VoiceError> {
        Err(VoiceError::input("this track cannot seek"))
    }

    /// Sets the volume (1.0 unchanged); `false` when the source is pre-encoded.
    fn set_volume(&mut self, _volume: f32) -> bool {
        false
    }
}

struct Frames<I>(I);

impl<I: Iterator<Item = Result<Bytes, VoiceError>> + Send> FrameSource for Frames<I> {
    fn next_frame(&mut self) -> Option<Result<Bytes, VoiceError>> {
        self.0.next()
    }
}

/// Something to play: a source of 20 ms Opus frames (48 kHz, stereo), read as it plays.
///
/// Pre-encoded Opus is sent as it is; PCM (given, decoded from a file, or from ffmpeg) is
/// encoded with libopus as it plays, and can change volume and (when in memory or a file) seek.
pub struct Track {
    source: Box<dyn FrameSource>,
}

impl fmt::Debug for Track {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Track").finish_non_exhaustive()
    }
}

impl Track {
    /// A track of pre-encoded Opus frames, each 20 ms.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use nostrum_voice::Track;
    /// let track = Track::opus_frames(vec![Bytes::from_static(&[0xF8, 0xFF, 0xFE]); 50]);
    /// ```
    pub fn opus_frames(frames: Vec<Bytes>) -> Self {
        Self::from_frames(frames.into_iter().map(Ok))
    }

    /// A track from any source of Opus frames; an `Err` ends the track with that error.
    pub fn from_frames(
        frames: impl Iterator<Item = Result<Bytes, VoiceError>> + Send + 'static,
    ) -> Self {
        Self::from_source(Frames(frames))
    }

    pub(crate) fn from_source(source: impl FrameSource + 'static) -> Self {
        Self {
            source: Box::new(source),
        }
    }

    /// A track of 48 kHz interleaved stereo PCM (left, right, left, ...), encoded with libopus
    /// 20 ms (960 samples a channel) at a time; the last frame is padded with silence. Seekable.
    ///
    /// ```
    /// use nostrum_voice::Track;
    /// let second_of_silence = Track::pcm(vec![0i16; 48_000 * 2]);
    /// ```
    pub fn pcm(samples: Vec<i16>) -> Self {
        Self::from_source(OpusEncode::new(MemoryPcm { samples, pos: 0 }))
    }

    /// As [`pcm`](Self::pcm), from float samples in -1.0..=1.0 (clamped).
    pub fn pcm_f32(samples: &[f32]) -> Self {
        Self::pcm(samples.iter().map(|&s| crate::pcm::f32_to_i16(s)).collect())
    }

    /// A track of 48 kHz interleaved stereo PCM read chunk by chunk as it plays (chunks of any
    /// length), encoded with libopus; an `Err` ends the track with that error. Not seekable.
    pub fn pcm_stream(
        chunks: impl Iterator<Item = Result<Vec<i16>, VoiceError>> + Send + 'static,
    ) -> Self {
        Self::from_source(OpusEncode::new(StreamPcm(chunks)))
    }

    /// A track from an Ogg/Opus stream held in memory: its packets are sent as they are, the
    /// `OpusHead` and `OpusTags` headers skipped. Seeks to the packet nearest the position
    /// (packet durations from their Opus TOC bytes); the volume cannot change.
    ///
    /// # Errors
    /// [`VoiceErrorKind::Input`](crate::VoiceErrorKind::Input) when the stream does not open with
    /// an Ogg page carrying `OpusHead`. Later framing errors end the track.
    pub fn ogg_opus(data: impl Into<Bytes>) -> Result<Self, VoiceError> {
        let mut packets = OggPackets::new(data.into());
        let head = packets
            .next()
            .transpose()?
            .ok_or_else(|| VoiceError::input("empty Ogg stream"))?;
        if !head.starts_with(b"OpusHead") {
            return Err(VoiceError::input("first Ogg packet is not OpusHead"));
        }
        match packets.next().transpose()? {
            Some(tags) if tags.starts_with(b"OpusTags") => {}
            _ => return Err(VoiceError::input("second Ogg packet is not OpusTags")),
        }
        Ok(Self::from_source(OggOpus { packets }))
    }

    /// A track from an Ogg/Opus file (read whole, then played as [`ogg_opus`](Self::ogg_opus)).
    ///
    /// # Errors
    /// When the file cannot be read, or as [`ogg_opus`](Self::ogg_opus).
    pub async fn ogg_opus_file(path: impl AsRef<Path>) -> Result<Self, VoiceError> {
        let data = tokio::fs::read(path.as_ref()).await.map_err(|error| {
            VoiceError::with_source(
                crate::VoiceErrorKind::Input {
                    reason: format!("cannot read {}", path.as_ref().display()),
                },
                error,
            )
        })?;
        Self::ogg_opus(data)
    }

    /// A track decoded in-process with symphonia from a file (MP3, FLAC, WAV, Ogg Vorbis), mixed
    /// to stereo, resampled to 48 kHz if needed and encoded with libopus as it plays. Seekable.
    ///
    /// # Errors
    /// [`VoiceErrorKind::Input`](crate::VoiceErrorKind::Input) when the file cannot be opened or
    /// its format or codec is not supported.
    pub async fn file(path: impl AsRef<Path>) -> Result<Self, VoiceError> {
        let path = path.as_ref().to_owned();
        let opened = tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&path).map_err(|error| {
                VoiceError::with_source(
                    crate::VoiceErrorKind::Input {
                        reason: format!("cannot read {}", path.display()),
                    },
                    error,
                )
            })?;
            let extension = path.extension().and_then(|e| e.to_str());
            crate::decode::FileSource::open(Box::new(file), extension)
        })
        .await
        .map_err(|_| VoiceError::input("opening the file panicked"))??;
        Ok(Self::from_source(OpusEncode::new(opened)))
    }

    /// As [`file`](Self::file), from the bytes of a file held in memory.
    ///
    /// # Errors
    /// As [`file`](Self::file).
    pub fn bytes(data: impl Into<Bytes>) -> Result<Self, VoiceError> {
        let cursor = std::io::Cursor::new(data.into());
        let source = crate::decode::FileSource::open(Box::new(cursor), None)?;
        Ok(Self::from_source(OpusEncode::new(source)))
    }

    /// A track of whatever ffmpeg reads from `input` (a path, a URL, or a stream URL from
    /// `yt-dlp -g`), converted by `ffmpeg -i <input> -f s16le -ar 48000 -ac 2 pipe:1` and encoded
    /// with libopus. Not seekable. The child process is killed when the track is dropped.
    ///
    /// # Errors
    /// [`VoiceErrorKind::MissingProgram`](crate::VoiceErrorKind::MissingProgram) when ffmpeg is
    /// not on `PATH`; later failures (unreadable input) end the track with an error.
    pub fn ffmpeg(input: &str) -> Result<Self, VoiceError> {
        Self::ffmpeg_with("ffmpeg", input)
    }

    /// As [`ffmpeg`](Self::ffmpeg), with the ffmpeg program at `program`.
    ///
    /// # Errors
    /// As [`ffmpeg`](Self::ffmpeg).
    pub fn ffmpeg_with(program: &str, input: &str) -> Result<Self, VoiceError> {
        let source = crate::ffmpeg::FfmpegSource::spawn(program, input)?;
        Ok(Self::from_source(OpusEncode::new(source)))
    }

    pub(crate) fn next_frame(&mut self) -> Option<Result<Bytes, VoiceError>> {
        self.source.next_frame()
    }

    pub(crate) fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        self.source.poll_ready(cx)
    }

    pub(crate) fn seek(&mut self, to: Duration) -> Result<(), VoiceError> {
        self.source.seek(to)
    }

    pub(crate) fn set_volume(&mut self, volume: f32) -> bool {
        self.source.set_volume(volume)
    }
}

/// The Opus packets of an Ogg/Opus stream in memory, past its two header packets.
struct OggOpus {
    packets: OggPackets,
}

impl FrameSource for OggOpus {
    fn next_frame(&mut self) -> Option<Result<Bytes, VoiceError>> {
        self.packets.next()
    }

    /// From the start, skips whole packets while that brings the position nearer to `to`.
    fn seek(&mut self, to: Duration) -> Result<(), VoiceError> {
        let target = to.as_secs_f64() * 48_000.0;
        let mut packets = OggPackets::new(self.packets.data.clone());
        // The headers were checked when the track was made.
        packets.by_ref().take(2).for_each(drop);
        let mut at = 0.0;
        loop {
            let Some(packet) = packets.next() else {
                break;
            };
            let packet = packet?;
            let samples = opus::packet::get_nb_samples(&packet, 48_000).unwrap_or(960) as f64;
            if (at + samples - target).abs() >= (at - target).abs() {
                // Not nearer: put the packet back in front.
                packets.ready.push_front(packet);
                break;
            }
            at += samples;
        }
        self.packets = packets;
        Ok(())
    }
}

/// The packets of the first logical stream of an Ogg byte stream, checked page by page (CRC).
#[derive(Debug)]
pub struct OggPackets {
    data: Bytes,
    pos: usize,
    serial: Option<u32>,
    partial: Vec<u8>,
    ready: VecDeque<Bytes>,
    failed: bool,
}

impl OggPackets {
    /// Reads packets out of `data`.
    pub fn new(data: Bytes) -> Self {
        Self {
            data,
            pos: 0,
            serial: None,
            partial: Vec::new(),
            ready: VecDeque::new(),
            failed: false,
        }
    }

    /// Reads the page at `pos`; `Ok(false)` at the end of the data.
    fn read_page(&mut self) -> Result<bool, VoiceError> {
        let data = &self.data[self.pos..];
        if data.is_empty() {
            return Ok(false);
        }
        if data.len() < 27 {
            return Err(VoiceError::input("truncated Ogg page header"));
        }
        if &data[..4] != b"OggS" || data[4] != 0 {
            return Err(VoiceError::input("not an Ogg page"));
        }
        let flags = data[5];
        let serial = u32::from_le_bytes([data[14], data[15], data[16], data[17]]);
        let stored_crc = u32::from_le_bytes([data[22], data[23], data[24], data[25]]);
        let segments = usize::from(data[26]);
        let table = data
            .get(27..27 + segments)
            .ok_or_else(|| VoiceError::input("truncated Ogg segment table"))?;
        let body_len: usize = table.iter().map(|&l| usize::from(l)).sum();
        let page_len = 27 + segments + body_len;
        let page = data
            .get(..page_len)
            .ok_or_else(|| VoiceError::input("truncated Ogg page"))?;
        if ogg_crc(page) != stored_crc {
            return Err(VoiceError::input("Ogg page checksum mismatch"));
        }
        let start = self.pos;
        self.pos += page_len;
        if *self.serial.get_or_insert(serial) != serial {
            return Ok(true);
        }
        if flags & 0x01 == 0 {
            self.partial.clear();
        }
        let mut at = start + 27 + segments;
        for &len in table {
            let len = usize::from(len);
            self.partial.extend_from_slice(&self.data[at..at + len]);
            at += len;
            if len < 255 {
                self.ready
                    .push_back(Bytes::from(std::mem::take(&mut self.partial)));
            }
        }
        Ok(true)
    }
}

impl Iterator for OggPackets {
    type Item = Result<Bytes, VoiceError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(packet) = self.ready.pop_front() {
                return Some(Ok(packet));
            }
            if self.failed {
                return None;
            }
            match self.read_page() {
                Ok(true) => {}
                Ok(false) => return None,
                Err(error) => {
                    self.failed = true;
                    return Some(Err(error));
                }
            }
        }
    }
}

/// Ogg's CRC-32 (polynomial 0x04C11DB7, no reflection) of a page whose checksum field is zeroed.
fn ogg_crc(page: &[u8]) -> u32 {
    let mut crc = 0u32;
    for (i, &byte) in page.iter().enumerate() {
        let byte = if (22..26).contains(&i) { 0 } else { byte };
        crc ^= u32::from(byte) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(serial: u32, flags: u8, packets: &[&[u8]]) -> Vec<u8> {
        let mut table = Vec::new();
        let mut body = Vec::new();
        for packet in packets {
            let mut rest = packet.len();
            while rest >= 255 {
                table.push(255);
                rest -= 255;
            }
            table.push(rest as u8);
            body.extend_from_slice(packet);
        }
        let mut out = b"OggS".to_vec();
        out.extend_from_slice(&[0, flags]);
        out.extend_from_slice(&0u64.to_le_bytes());
        out.extend_from_slice(&serial.to_le_bytes());
        out.extend_from_slice(&[0; 8]);
        out.push(table.len() as u8);
        out.extend_from_slice(&table);
        out.extend_from_slice(&body);
        let crc = ogg_crc(&out);
        out[22..26].copy_from_slice(&crc.to_le_bytes());
        out
    }

    fn stream() -> Vec<u8> {
        let big = vec![7u8; 600];
        let mut data = page(1, 2, &[b"OpusHead\x01\x02"]);
        data.extend(page(1, 0, &[b"OpusTags...."]));
        data.extend(page(9, 2, &[b"other stream"]));
        data.extend(page(1, 0, &[b"\xFCone", &big, b"\xFCthree"]));
        data
    }

    #[test]
    fn reads_opus_packets() {
        let mut track = Track::ogg_opus(stream()).unwrap();
        let frames: Vec<Bytes> = std::iter::from_fn(|| track.next_frame())
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(frames.len(), 3);
        assert_eq!(&frames[0][..], b"\xFCone");
        assert_eq!(frames[1].len(), 600);
    }

    #[test]
    fn ogg_opus_seeks_to_the_nearest_packet() {
        // 100 packets of 20 ms (TOC 0xFC) numbered, then one of 60 ms (TOC 0xFF: code 3, 3
        // frames) and a last one.
        let mut packets: Vec<Vec<u8>> = (0..100u8).map(|i| vec![0xFC, i]).collect();
        packets.push(vec![0xFF, 0x03, 100]);
        packets.push(vec![0xFC, 101]);
        let mut data = page(1, 2, &[b"OpusHead\x01\x02"]);
        data.extend(page(1, 0, &[b"OpusTags...."]));
        for chunk in packets.chunks(30) {
            let chunk: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
            data.extend(page(1, 0, &chunk));
        }
        let mut track = Track::ogg_opus(data).unwrap();
        let next = |track: &mut Track| track.next_frame().map(|f| f.unwrap()[..].to_vec());
        let mut seek_then_next = |ms: u64| {
            track.seek(Duration::from_millis(ms)).unwrap();
            next(&mut track)
        };
        assert_eq!(seek_then_next(1_000), Some(vec![0xFC, 50]));
        assert_eq!(
            seek_then_next(1_009),
            Some(vec![0xFC, 50]),
            "nearer to 1.00 s"
        );
        assert_eq!(
            seek_then_next(1_011),
            Some(vec![0xFC, 51]),
            "nearer to 1.02 s"
        );
        assert_eq!(seek_then_next(0), Some(vec![0xFC, 0]), "back to the start");
        // The 60 ms packet spans 2.00..2.06 s: 2.02 s is nearer its start, 2.04 s its end.
        assert_eq!(seek_then_next(2_020), Some(vec![0xFF, 0x03, 100]));
        assert_eq!(seek_then_next(2_040), Some(vec![0xFC, 101]));
        assert_eq!(seek_then_next(60_000), None, "past the end");
        assert_eq!(seek_then_next(1_990), Some(vec![0xFC, 99]));
        assert!(!track.set_volume(0.5), "pre-encoded");
    }

    #[test]
    fn rejects_non_opus_and_garbage_without_panic() {
        assert!(Track::ogg_opus(page(1, 2, &[b"Vorbis"])).is_err());
        assert!(Track::ogg_opus(Vec::new()).is_err());
        let good = stream();
        for cut in 0..good.len() {
            let _ = OggPackets::new(Bytes::copy_from_slice(&good[..cut])).count();
        }
        let mut rng = fastrand::Rng::with_seed(11);
        for _ in 0..2_000 {
            let mut bad = good.clone();
            let i = rng.usize(..bad.len());
            bad[i] = rng.u8(..);
            let _ = OggPackets::new(Bytes::from(bad)).count();
            let junk: Vec<u8> = (0..rng.usize(0..100)).map(|_| rng.u8(..)).collect();
            let _ = OggPackets::new(Bytes::from(junk)).count();
        }
    }
}
