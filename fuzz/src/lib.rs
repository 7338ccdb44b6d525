//! Harnesses shared by the fuzz targets: everything goes through nostrum-core's PUBLIC API.
//!
//! The decompressors and the envelope parser are `pub(crate)`, so the gateway targets feed a real
//! [`Shard`] from an in-process WebSocket server on loopback: the fuzz input becomes the frames the
//! server sends, then a 4004 close ends the shard. A panic, a hang (no end within
//! [`ITERATION_LIMIT`]) or unbounded memory (libFuzzer's `-rss_limit_mb`) is a finding.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use flate2::{Compress, FlushCompress};
use futures::{SinkExt, StreamExt};
use nostrum_core::Event;
use nostrum_core::dispatch::EventKeys;
use nostrum_core::gateway::{
    Compression, GatewayConfig, IdentifyQueue, Shard, ShardEvent, ShardId,
};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio_websockets::{CloseCode, Message, ServerBuilder};
use twilight_model::gateway::Intents;
use zstd::stream::raw::{Encoder, InBuffer, Operation, OutBuffer};

/// Longest time one input may take before it counts as a hang.
pub const ITERATION_LIMIT: Duration = Duration::from_secs(30);

/// The shard's `max_decompressed_frame` in the harness: small, so bombs hit it fast.
pub const FRAME_LIMIT: usize = 16 * 1024;

/// Splits `data` into chunks, each prefixed by a little-endian u16 length (the last one may be short).
pub fn chunks(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while data.len() >= 2 && out.len() < 64 {
        let len = usize::from(u16::from_le_bytes([data[0], data[1]]));
        let rest = &data[2..];
        let len = len.min(rest.len());
        out.push(&rest[..len]);
        data = &rest[len..];
    }
    out
}

/// Encodes chunks in the format [`chunks`] reads (for seed corpora).
pub fn encode_chunks(flags: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![flags];
    for part in parts {
        let len = u16::try_from(part.len()).expect("chunk under 64 KiB");
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(part);
    }
    out
}

/// One zlib-stream: every message compressed and sync-flushed (ends with `00 00 FF FF`).
pub fn zlib_messages(messages: &[&[u8]]) -> Vec<Vec<u8>> {
    let mut compress = Compress::new(flate2::Compression::default(), true);
    messages
        .iter()
        .map(|message| {
            let mut out = Vec::with_capacity(message.len() + 1024);
            let mut consumed = 0;
            loop {
                out.reserve(1024);
                let (before_in, before_out) = (compress.total_in(), compress.total_out());
                compress
                    .compress_vec(&message[consumed..], &mut out, FlushCompress::Sync)
                    .expect("zlib compresses");
                consumed += usize::try_from(compress.total_in() - before_in).unwrap_or(0);
                let done = consumed == message.len();
                // An empty message right after a flush makes no output at all: nothing to wait for.
                if done
                    && (out.ends_with(&[0, 0, 0xFF, 0xFF]) || compress.total_out() == before_out)
                {
                    break out;
                }
            }
        })
        .collect()
}

/// One zstd stream: every message compressed and flushed.
pub fn zstd_messages(messages: &[&[u8]]) -> Vec<Vec<u8>> {
    let mut encoder = Encoder::new(3).expect("zstd encoder");
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
                    .expect("zstd compresses");
            }
            loop {
                out.reserve(1024);
                let pos = out.len();
                let left = encoder
                    .flush(&mut OutBuffer::around_pos(&mut out, pos))
                    .expect("zstd flushes");
                if left == 0 {
                    break out;
                }
            }
        })
        .collect()
}

/// Turns a fuzz input into the frames the fake gateway sends.
///
/// Byte 0 is flags: bit 0 set = the chunks are plain messages the server compresses itself (one
/// stream, as Discord does), clear = the chunks are sent as they are (raw, possibly corrupt,
/// compressed data); bit 1 = split every frame in two (zlib messages may span frames); bit 2 = send
/// as text frames where the bytes are UTF-8.
pub fn frames(compression: Compression, data: &[u8]) -> Vec<Message> {
    let Some((&flags, rest)) = data.split_first() else {
        return Vec::new();
    };
    let parts = chunks(rest);
    let payloads: Vec<Vec<u8>> = if flags & 1 == 1 {
        match compression {
            Compression::ZlibStream => zlib_messages(&parts),
            Compression::ZstdStream => zstd_messages(&parts),
            _ => parts.iter().map(|p| p.to_vec()).collect(),
        }
    } else {
        parts.iter().map(|p| p.to_vec()).collect()
    };
    let mut out = Vec::new();
    for payload in payloads {
        let pieces: Vec<Vec<u8>> = if flags & 2 == 2 && payload.len() > 1 {
            let mid = payload.len() / 2;
            vec![payload[..mid].to_vec(), payload[mid..].to_vec()]
        } else {
            vec![payload]
        };
        for piece in pieces {
            if flags & 4 == 4 {
                match String::from_utf8(piece) {
                    Ok(text) => out.push(Message::text(text)),
                    Err(err) => out.push(Message::binary(err.into_bytes())),
                }
            } else {
                out.push(Message::binary(piece));
            }
        }
    }
    out
}

/// A fake gateway on loopback and the runtime that drives it and the shard.
#[derive(Debug)]
pub struct FakeGateway {
    rt: Runtime,
    slot: Arc<Mutex<Option<Vec<Message>>>>,
    config: Arc<GatewayConfig>,
}

impl FakeGateway {
    /// Binds the server; shards connect with `compression`.
    pub fn new(compression: Compression) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let slot: Arc<Mutex<Option<Vec<Message>>>> = Arc::default();
        let listener = rt
            .block_on(TcpListener::bind(("127.0.0.1", 0)))
            .expect("bind");
        let url = format!("ws://{}", listener.local_addr().expect("addr"));
        let server_slot = Arc::clone(&slot);
        rt.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let frames = server_slot
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take()
                    .unwrap_or_default();
                tokio::spawn(serve(stream, frames));
            }
        });
        let mut config = GatewayConfig::new("fuzz-token".into(), Intents::GUILDS);
        config.gateway_url = url;
        config.compression = compression;
        config.max_decompressed_frame = FRAME_LIMIT;
        config.identify_queue = Arc::new(IdentifyQueue::new(16, 1_000_000, Duration::from_secs(1)));
        config.invalid_session_delay = (Duration::ZERO, Duration::ZERO);
        Self {
            rt,
            slot,
            config: Arc::new(config),
        }
    }

    /// Serves `frames` to a fresh shard and drives it until it disconnects or stops.
    /// Panics if that takes longer than [`ITERATION_LIMIT`].
    pub fn run(&self, frames: Vec<Message>) {
        *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(frames);
        let config = Arc::clone(&self.config);
        self.rt.block_on(async move {
            let mut shard = Shard::new(ShardId::ONE, config);
            let driven = async {
                loop {
                    match shard.next_event().await {
                        Ok(ShardEvent::Dispatch { name, data, .. }) => {
                            // The client's own pipeline: keys, then the typed event.
                            std::hint::black_box(EventKeys::scan(name, data));
                            std::hint::black_box(Event::from_dispatch(name, data));
                        }
                        Ok(ShardEvent::Disconnected { .. }) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            };
            if tokio::time::timeout(ITERATION_LIMIT, driven).await.is_err() {
                panic!("the shard neither stopped nor disconnected within {ITERATION_LIMIT:?}");
            }
        });
    }
}

/// The server side of one connection: the frames, then a 4004 close.
async fn serve(stream: tokio::net::TcpStream, frames: Vec<Message>) {
    let Ok((_request, mut ws)) = ServerBuilder::new().accept(stream).await else {
        return;
    };
    for frame in frames {
        if ws.feed(frame).await.is_err() {
            return;
        }
    }
    let close = Message::close(CloseCode::try_from(4004).ok(), "fuzz");
    if ws.send(close).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}
