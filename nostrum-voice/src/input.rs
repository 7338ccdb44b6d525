//! Audio inputs: pre-encoded Opus frames, and Ogg/Opus streams read page by page without re-encoding.

use std::collections::VecDeque;
use std::fmt;
use std::path::Path;

use bytes::Bytes;

use crate::error::VoiceError;

type Frames = Box<dyn Iterator<Item = Result<Bytes, VoiceError>> + Send>;

/// Something to play: a source of 20 ms Opus frames (48 kHz, stereo), read as it plays.
pub struct Track {
    frames: Frames,
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
        Self {
            frames: Box::new(frames.into_iter().map(Ok)),
        }
    }

    /// A track from any source of Opus frames; an `Err` ends the track with that error.
    pub fn from_frames(
        frames: impl Iterator<Item = Result<Bytes, VoiceError>> + Send + 'static,
    ) -> Self {
        Self {
            frames: Box::new(frames),
        }
    }

    /// A track from an Ogg/Opus stream held in memory: its packets are sent as they are, the
    /// `OpusHead` and `OpusTags` headers skipped.
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
        Ok(Self::from_frames(packets))
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

    pub(crate) fn next_frame(&mut self) -> Option<Result<Bytes, VoiceError>> {
        self.frames.next()
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
