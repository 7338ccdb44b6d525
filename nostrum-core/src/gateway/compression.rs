//! Transport compression: zlib-stream and zstd-stream decompressors with a bound on output size.

use std::fmt;

use zstd::stream::raw::{Decoder as ZstdDecoder, InBuffer, Operation, OutBuffer};

/// Transport compression asked of the gateway (`&compress=` in the URL).
///
/// The default is [`ZlibStream`](Self::ZlibStream), like most Discord libraries: it cuts the
/// bandwidth of a busy shard by about ten times at a small CPU cost.
///
/// ```
/// use nostrum_core::gateway::Compression;
///
/// assert_eq!(Compression::default(), Compression::ZlibStream);
/// assert_eq!(Compression::ZstdStream.query(), Some("zstd-stream"));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Compression {
    /// Plain JSON text frames.
    None,
    /// One zlib stream for the whole connection; a message ends with `00 00 FF FF`.
    #[default]
    ZlibStream,
    /// One zstd stream for the whole connection; each binary frame is one message.
    ZstdStream,
}

impl Compression {
    /// The value of the `compress` query parameter, if any.
    pub const fn query(self) -> Option<&'static str> {
        match self {
            Self::None => None,
            Self::ZlibStream => Some("zlib-stream"),
            Self::ZstdStream => Some("zstd-stream"),
        }
    }
}

/// Why a binary frame could not be decompressed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecompressError {
    /// The decompressed message (or the buffered compressed input) exceeds the configured limit.
    #[error("decompressed message exceeds {limit} bytes")]
    TooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// The zlib stream is corrupt.
    #[error("corrupt zlib stream")]
    Zlib(#[source] flate2::DecompressError),
    /// The zstd stream is corrupt, or the context could not be created.
    #[error("corrupt zstd stream")]
    Zstd(#[source] std::io::Error),
}

/// Unconsumed output capacity under which the buffer grows.
const MIN_ROOM: usize = 8 * 1024;
/// First growth step of the output buffer.
const CHUNK: usize = 32 * 1024;
/// The zlib sync-flush suffix that ends every zlib-stream message.
const ZLIB_SUFFIX: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];

/// Makes room in `out` for more output, never past `limit + 1` bytes of content requested.
fn grow(out: &mut Vec<u8>, limit: usize) -> Result<(), DecompressError> {
    if out.len() > limit {
        return Err(DecompressError::TooLarge { limit });
    }
    if out.capacity() - out.len() < MIN_ROOM {
        let wanted = out.len().max(CHUNK).min(limit + 1 - out.len());
        out.reserve(wanted);
    }
    Ok(())
}

/// The decompressor of one connection; a new one is made for every connection.
pub(crate) enum Decompressor {
    /// zlib-stream: the inflater persists across messages of one connection.
    Zlib {
        /// The persistent inflater.
        inflate: flate2::Decompress,
        /// Compressed input of a message split over several frames.
        partial: Vec<u8>,
    },
    /// zstd-stream: the decompression context persists across messages.
    Zstd(Box<ZstdDecoder<'static>>),
}

impl fmt::Debug for Decompressor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Zlib { partial, .. } => f
                .debug_struct("Zlib")
                .field("partial", &partial.len())
                .finish_non_exhaustive(),
            Self::Zstd(_) => f.write_str("Zstd"),
        }
    }
}

impl Decompressor {
    /// A fresh decompressor for `compression`, `None` when frames are plain text.
    pub(crate) fn new(compression: Compression) -> Result<Option<Self>, DecompressError> {
        Ok(match compression {
            Compression::None => None,
            Compression::ZlibStream => Some(Self::Zlib {
                inflate: flate2::Decompress::new(true),
                partial: Vec::new(),
            }),
            Compression::ZstdStream => Some(Self::Zstd(Box::new(
                ZstdDecoder::new().map_err(DecompressError::Zstd)?,
            ))),
        })
    }

    /// Feeds one binary frame, appending the decompressed bytes to `out`.
    ///
    /// Returns `Ok(true)` when `out` holds a whole message, `Ok(false)` when a zlib message
    /// continues in the next frame. `out` never grows much past `limit` bytes: beyond it this
    /// returns [`DecompressError::TooLarge`]. After any error the stream is unusable: reconnect.
    pub(crate) fn push(
        &mut self,
        frame: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<bool, DecompressError> {
        match self {
            Self::Zlib { inflate, partial } => {
                if partial.is_empty() && frame.ends_with(&ZLIB_SUFFIX) {
                    return inflate_all(inflate, frame, out, limit).map(|()| true);
                }
                if partial.len() + frame.len() > limit {
                    partial.clear();
                    return Err(DecompressError::TooLarge { limit });
                }
                partial.extend_from_slice(frame);
                if !partial.ends_with(&ZLIB_SUFFIX) {
                    return Ok(false);
                }
                let result = inflate_all(inflate, partial, out, limit);
                partial.clear();
                result.map(|()| true)
            }
            Self::Zstd(decoder) => zstd_all(decoder, frame, out, limit).map(|()| true),
        }
    }
}

/// Inflates all of `input` (ending in a sync flush) into `out`.
fn inflate_all(
    inflate: &mut flate2::Decompress,
    input: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<(), DecompressError> {
    let mut consumed = 0;
    loop {
        grow(out, limit)?;
        let (in_before, out_before) = (inflate.total_in(), inflate.total_out());
        let status = inflate
            .decompress_vec(&input[consumed..], out, flate2::FlushDecompress::Sync)
            .map_err(DecompressError::Zlib)?;
        let read = usize::try_from(inflate.total_in() - in_before).unwrap_or(usize::MAX);
        let written = inflate.total_out() - out_before;
        consumed = consumed.saturating_add(read).min(input.len());
        if out.len() > limit {
            return Err(DecompressError::TooLarge { limit });
        }
        let room_left = out.len() < out.capacity();
        if (consumed == input.len() && room_left) || status == flate2::Status::StreamEnd {
            return Ok(());
        }
        if read == 0 && written == 0 && room_left {
            // No progress with room to spare: the rest of the input is not inflatable.
            return Ok(());
        }
    }
}

/// Decompresses all of `input` (one zstd-flushed message) into `out`.
fn zstd_all(
    decoder: &mut ZstdDecoder<'static>,
    input: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<(), DecompressError> {
    let mut input = InBuffer::around(input);
    loop {
        grow(out, limit)?;
        let pos = out.len();
        let in_before = input.pos();
        let (room_left, written) = {
            let mut output = OutBuffer::around_pos(out, pos);
            decoder
                .run(&mut input, &mut output)
                .map_err(DecompressError::Zstd)?;
            (output.pos() < output.capacity(), output.pos() - pos)
        };
        if out.len() > limit {
            return Err(DecompressError::TooLarge { limit });
        }
        let read = input.pos() - in_before;
        if input.pos() == input.src.len() && room_left {
            return Ok(());
        }
        if read == 0 && written == 0 && room_left {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Compression, DecompressError, Decompressor};
    use flate2::{Compress, FlushCompress};
    use zstd::stream::raw::{Encoder, InBuffer, Operation, OutBuffer};

    const LIMIT: usize = 1 << 20;

    fn zlib_messages(messages: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut compress = Compress::new(flate2::Compression::default(), true);
        messages
            .iter()
            .map(|message| {
                let mut out = Vec::with_capacity(message.len() + 1024);
                let mut consumed = 0;
                loop {
                    out.reserve(1024);
                    let before = compress.total_in();
                    compress
                        .compress_vec(&message[consumed..], &mut out, FlushCompress::Sync)
                        .unwrap();
                    consumed += (compress.total_in() - before) as usize;
                    if consumed == message.len() && out.ends_with(&[0, 0, 0xFF, 0xFF]) {
                        break out;
                    }
                }
            })
            .collect()
    }

    fn zstd_messages(messages: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut encoder = Encoder::new(3).unwrap();
        messages
            .iter()
            .map(|message| {
                let mut out = Vec::with_capacity(message.len() + 1024);
                let mut input = InBuffer::around(message);
                while input.pos() < message.len() {
                    out.reserve(1024);
                    let pos = out.len();
                    encoder
                        .run(&mut input, &mut OutBuffer::around_pos(&mut out, pos))
                        .unwrap();
                }
                loop {
                    out.reserve(1024);
                    let pos = out.len();
                    let left = encoder
                        .flush(&mut OutBuffer::around_pos(&mut out, pos))
                        .unwrap();
                    if left == 0 {
                        break out;
                    }
                }
            })
            .collect()
    }

    fn big_json(n: usize) -> Vec<u8> {
        let mut s = String::from(r#"{"op":0,"s":1,"t":"X","d":["#);
        for i in 0..n {
            s.push_str(&format!(
                r#"{{"id":"{i}","name":"member {}"}},"#,
                i * 7919 % 1000
            ));
        }
        s.push_str("0]}");
        s.into_bytes()
    }

    fn round_trip(compression: Compression, frames: Vec<Vec<u8>>, expected: &[&[u8]]) {
        let mut decompressor = Decompressor::new(compression).unwrap().unwrap();
        let mut out = Vec::new();
        for (frame, expected) in frames.iter().zip(expected) {
            out.clear();
            assert!(decompressor.push(frame, &mut out, LIMIT).unwrap());
            assert_eq!(&out[..], *expected);
        }
    }

    #[test]
    fn zlib_round_trip_keeps_the_stream() {
        let big = big_json(5_000);
        let messages: [&[u8]; 3] = [
            br#"{"op":10,"d":{"heartbeat_interval":41250}}"#,
            &big,
            b"{}",
        ];
        round_trip(Compression::ZlibStream, zlib_messages(&messages), &messages);
    }

    #[test]
    fn zstd_round_trip_keeps_the_stream() {
        let big = big_json(5_000);
        let messages: [&[u8]; 3] = [
            br#"{"op":10,"d":{"heartbeat_interval":41250}}"#,
            &big,
            b"{}",
        ];
        round_trip(Compression::ZstdStream, zstd_messages(&messages), &messages);
    }

    #[test]
    fn zlib_message_split_over_frames() {
        let big = big_json(2_000);
        let frame = zlib_messages(&[&big]).remove(0);
        let mut decompressor = Decompressor::new(Compression::ZlibStream).unwrap().unwrap();
        let mut out = Vec::new();
        let chunks: Vec<&[u8]> = frame.chunks(frame.len() / 3 + 1).collect();
        for chunk in &chunks[..chunks.len() - 1] {
            assert!(!decompressor.push(chunk, &mut out, LIMIT).unwrap());
            assert!(out.is_empty());
        }
        assert!(
            decompressor
                .push(chunks[chunks.len() - 1], &mut out, LIMIT)
                .unwrap()
        );
        assert_eq!(out, big);
    }

    #[test]
    fn zlib_bomb_is_bounded() {
        let bomb = vec![b' '; 8 << 20];
        let frame = zlib_messages(&[&bomb]).remove(0);
        assert!(frame.len() < 64 * 1024);
        let mut decompressor = Decompressor::new(Compression::ZlibStream).unwrap().unwrap();
        let mut out = Vec::new();
        let error = decompressor.push(&frame, &mut out, LIMIT).unwrap_err();
        assert!(matches!(error, DecompressError::TooLarge { limit: LIMIT }));
        assert!(out.capacity() <= 4 * LIMIT, "capacity {}", out.capacity());
    }

    #[test]
    fn zstd_bomb_is_bounded() {
        let bomb = vec![b' '; 8 << 20];
        let frame = zstd_messages(&[&bomb]).remove(0);
        let mut decompressor = Decompressor::new(Compression::ZstdStream).unwrap().unwrap();
        let mut out = Vec::new();
        let error = decompressor.push(&frame, &mut out, LIMIT).unwrap_err();
        assert!(matches!(error, DecompressError::TooLarge { .. }));
        assert!(out.capacity() <= 4 * LIMIT, "capacity {}", out.capacity());
    }

    #[test]
    fn buffered_zlib_input_is_bounded() {
        let mut decompressor = Decompressor::new(Compression::ZlibStream).unwrap().unwrap();
        let mut out = Vec::new();
        let chunk = vec![1u8; 1000];
        assert!(!decompressor.push(&chunk, &mut out, 1500).unwrap());
        assert!(decompressor.push(&chunk, &mut out, 1500).is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut seed = fastrand::Rng::with_seed(7);
        for compression in [Compression::ZlibStream, Compression::ZstdStream] {
            for len in [0usize, 1, 4, 17, 300, 5000] {
                let mut garbage: Vec<u8> = (0..len).map(|_| seed.u8(..)).collect();
                garbage.extend_from_slice(&[0, 0, 0xFF, 0xFF]);
                let mut decompressor = Decompressor::new(compression).unwrap().unwrap();
                let mut out = Vec::new();
                let _ = decompressor.push(&garbage, &mut out, LIMIT);
                assert!(out.len() <= LIMIT + 1);
            }
        }
        let mut zlib = Decompressor::new(Compression::ZlibStream).unwrap().unwrap();
        assert!(
            zlib.push(b"not zlib\0\0\xFF\xFF", &mut Vec::new(), LIMIT)
                .is_err()
        );
        let mut zstd = Decompressor::new(Compression::ZstdStream).unwrap().unwrap();
        assert!(
            zstd.push(b"not zstd at all", &mut Vec::new(), LIMIT)
                .is_err()
        );
    }

    #[test]
    fn no_compression_has_no_decompressor() {
        assert!(Decompressor::new(Compression::None).unwrap().is_none());
        assert_eq!(Compression::None.query(), None);
    }
}
