//! Gateway transport compression: one persistent zlib or zstd stream per connection, flushed per message.

use std::io::{self, Write};

use flate2::Compression;
use flate2::write::ZlibEncoder;
use tokio_websockets::Message;

/// The transport compression a connection asked for in its URL query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Transport {
    /// Text frames.
    Plain,
    /// `compress=zlib-stream`.
    ZlibStream,
    /// `compress=zstd-stream`.
    ZstdStream,
}

impl Transport {
    /// Parses the `compress` query value; `None` for an unknown one.
    pub(super) fn parse(compress: Option<&str>) -> Option<Self> {
        match compress {
            None | Some("") => Some(Self::Plain),
            Some("zlib-stream") => Some(Self::ZlibStream),
            Some("zstd-stream") => Some(Self::ZstdStream),
            Some(_) => None,
        }
    }
}

/// The compressor of one connection.
pub(super) enum Compressor {
    Plain,
    /// A zlib (not raw deflate) stream; each message ends with a sync flush (`00 00 FF FF`).
    Zlib(ZlibEncoder<Vec<u8>>),
    /// A zstd stream whose frame never ends; each message ends a block (ZSTD_e_flush).
    Zstd(Box<zstd::stream::write::Encoder<'static, Vec<u8>>>),
}

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Plain => "Compressor::Plain",
            Self::Zlib(_) => "Compressor::Zlib",
            Self::Zstd(_) => "Compressor::Zstd",
        })
    }
}

impl Compressor {
    pub(super) fn new(transport: Transport) -> io::Result<Self> {
        Ok(match transport {
            Transport::Plain => Self::Plain,
            Transport::ZlibStream => {
                Self::Zlib(ZlibEncoder::new(Vec::new(), Compression::default()))
            }
            Transport::ZstdStream => {
                Self::Zstd(Box::new(zstd::stream::write::Encoder::new(Vec::new(), 3)?))
            }
        })
    }

    /// Encodes one gateway message into the frame to send.
    pub(super) fn encode(&mut self, text: &str) -> io::Result<Message> {
        match self {
            Self::Plain => Ok(Message::text(text.to_owned())),
            Self::Zlib(encoder) => {
                encoder.write_all(text.as_bytes())?;
                encoder.flush()?;
                Ok(Message::binary(std::mem::take(encoder.get_mut())))
            }
            Self::Zstd(encoder) => {
                encoder.write_all(text.as_bytes())?;
                encoder.flush()?;
                Ok(Message::binary(std::mem::take(encoder.get_mut())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zlib_messages_end_with_sync_flush_and_inflate_in_one_stream() {
        let mut c = Compressor::new(Transport::ZlibStream).unwrap();
        let mut inflate = flate2::Decompress::new(true);
        for text in ["{\"op\":10}", "{\"op\":11}", &"x".repeat(100_000)] {
            let message = c.encode(text).unwrap();
            assert!(message.is_binary(), "not binary");
            let bytes = message.into_payload();
            assert!(bytes.ends_with(&[0, 0, 0xff, 0xff]));
            let mut out = Vec::with_capacity(text.len() + 64);
            inflate
                .decompress_vec(&bytes, &mut out, flate2::FlushDecompress::Sync)
                .unwrap();
            assert_eq!(out, text.as_bytes());
        }
    }

    #[test]
    fn zstd_messages_decode_in_one_stream() {
        use zstd::stream::raw::{Decoder, InBuffer, Operation, OutBuffer};
        let mut c = Compressor::new(Transport::ZstdStream).unwrap();
        let mut dec = Decoder::new().unwrap();
        for text in ["{\"op\":10}", "{\"op\":11}"] {
            let message = c.encode(text).unwrap();
            assert!(message.is_binary(), "not binary");
            let bytes = message.into_payload();
            let mut buf = vec![0u8; 4096];
            let mut input = InBuffer::around(&bytes);
            let mut output = OutBuffer::around(&mut buf[..]);
            dec.run(&mut input, &mut output).unwrap();
            let n = output.pos();
            assert_eq!(&buf[..n], text.as_bytes());
        }
    }
}
