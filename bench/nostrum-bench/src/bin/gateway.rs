//! Single-shard gateway throughput over loopback, per transport compression.
//!
//! A feeder speaks just enough of the gateway on 127.0.0.1 (HELLO, wait for IDENTIFY, READY) and then
//! streams N pre-serialized, pre-compressed dispatches (80% MESSAGE_CREATE, 20% TYPING_START) as fast
//! as the socket takes them. The client is `nostrum_core::gateway::Shard`, driven directly.
//!
//! `cd bench && cargo run --release --bin gateway [-- EVENTS RUNS]`

use std::hint::black_box;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use nostrum_bench::{Rng, dispatch_frame, machine, median, message_create, table, typing_start};
use nostrum_core::gateway::{
    Compression, GatewayConfig, IdentifyQueue, Shard, ShardEvent, ShardId,
};
use nostrum_core::{Event, EventKind, Intents};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// The whole server side of one connection, in order: HELLO, READY, then the dispatches. The
/// zlib and zstd streams are stateful, so the frames are compressed once, in this order, by one
/// compressor, and replayed on every connection (each connection has a fresh decompressor).
struct Stream {
    frames: Vec<Message>,
    plain_bytes: usize,
    wire_bytes: usize,
}

enum Compressor {
    Plain,
    /// One persistent zlib stream (flate2's `Compress` inside), sync flush per message: each
    /// message ends with `00 00 FF FF`.
    Zlib(flate2::write::ZlibEncoder<Vec<u8>>),
    /// One persistent zstd stream, flushed (ZSTD_e_flush) per message, never ended.
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
}

impl Compressor {
    fn new(mode: Compression) -> Self {
        match mode {
            Compression::ZlibStream => Self::Zlib(flate2::write::ZlibEncoder::new(
                Vec::new(),
                flate2::Compression::default(),
            )),
            Compression::ZstdStream => {
                Self::Zstd(zstd::stream::write::Encoder::new(Vec::new(), 3).expect("zstd encoder"))
            }
            _ => Self::Plain,
        }
    }

    fn encode(&mut self, text: String) -> Message {
        match self {
            Self::Plain => Message::text(text),
            Self::Zlib(encoder) => {
                encoder.write_all(text.as_bytes()).expect("in memory");
                encoder.flush().expect("in memory");
                let out = std::mem::take(encoder.get_mut());
                debug_assert!(out.ends_with(&[0, 0, 0xFF, 0xFF]));
                Message::binary(out)
            }
            Self::Zstd(encoder) => {
                encoder.write_all(text.as_bytes()).expect("in memory");
                encoder.flush().expect("in memory");
                Message::binary(std::mem::take(encoder.get_mut()))
            }
        }
    }
}

/// The plain texts: HELLO, READY, then `n` dispatches.
fn texts(n: usize) -> Vec<String> {
    let mut rng = Rng::new(7);
    let mut out = Vec::with_capacity(n + 2);
    out.push(
        json!({"op": 10, "d": {"heartbeat_interval": 3_600_000}, "s": null, "t": null}).to_string(),
    );
    let ready = json!({
        "v": 10,
        "user": {"id": "1200000000000000999", "username": "bench", "discriminator": "0", "avatar": null, "bot": true,
                 "global_name": null, "flags": 0, "mfa_enabled": false, "verified": true},
        "guilds": [],
        "session_id": "bench-session",
        "resume_gateway_url": "ws://127.0.0.1:1",
        "application": {"id": "1200000000000000999", "flags": 0},
    });
    out.push(dispatch_frame("READY", 1, &ready));
    for i in 0..n as u64 {
        let seq = i + 2;
        let text = if rng.below(10) < 8 {
            let mention = rng.below(10) == 0;
            dispatch_frame("MESSAGE_CREATE", seq, &message_create(i, &mut rng, mention))
        } else {
            dispatch_frame("TYPING_START", seq, &typing_start(&mut rng))
        };
        out.push(text);
    }
    out
}

fn stream(texts: &[String], mode: Compression) -> Stream {
    let mut compressor = Compressor::new(mode);
    let plain_bytes = texts[2..].iter().map(String::len).sum();
    let frames: Vec<Message> = texts
        .iter()
        .map(|text| compressor.encode(text.clone()))
        .collect();
    let wire_bytes = frames[2..].iter().map(Message::len).sum();
    Stream {
        frames,
        plain_bytes,
        wire_bytes,
    }
}

/// Serves one connection: HELLO, waits for IDENTIFY, READY, then every dispatch.
async fn serve(listener: TcpListener, stream: Arc<Stream>) {
    let Ok((tcp, _)) = listener.accept().await else {
        return;
    };
    let _ = tcp.set_nodelay(true);
    let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    let (mut sink, mut incoming) = ws.split();
    if sink.send(stream.frames[0].clone()).await.is_err() {
        return;
    }
    loop {
        match incoming.next().await {
            Some(Ok(Message::Text(text))) => {
                let op = serde_json::from_str::<serde_json::Value>(text.as_str())
                    .ok()
                    .and_then(|v| v["op"].as_u64());
                if op == Some(2) {
                    break;
                }
            }
            Some(Ok(_)) => {}
            _ => return,
        }
    }
    // Drain whatever the client sends from now on (heartbeats, the close).
    let drain = tokio::spawn(async move { while let Some(Ok(_)) = incoming.next().await {} });
    for frame in &stream.frames[1..] {
        if sink.feed(frame.clone()).await.is_err() {
            return;
        }
    }
    let _ = sink.flush().await;
    let _ = drain.await;
}

/// One run: events per second seen by the shard, from READY to the n-th dispatch after it.
async fn run(stream: Arc<Stream>, mode: Compression, n: usize, typed: bool) -> f64 {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("address");
    let server = tokio::spawn(serve(listener, stream));

    let mut config = GatewayConfig::new(
        "bench-token".into(),
        Intents::GUILD_MESSAGES | Intents::GUILD_MESSAGE_TYPING,
    );
    config.gateway_url = format!("ws://{addr}");
    config.compression = mode;
    config.identify_queue = Arc::new(IdentifyQueue::default());
    let mut shard = Shard::new(ShardId::ONE, Arc::new(config));

    let (mut count, mut unknown, mut bytes) = (0usize, 0usize, 0usize);
    let mut start = None;
    let deadline = Instant::now() + Duration::from_secs(120);
    while count < n {
        assert!(
            Instant::now() < deadline,
            "gateway run timed out after {count} events"
        );
        match shard.next_event().await.expect("shard event") {
            ShardEvent::Dispatch { name: "READY", .. } => start = Some(Instant::now()),
            ShardEvent::Dispatch { name, data, .. } => {
                if typed {
                    // What the runtime does for a wanted event: look the name up, type the payload.
                    black_box(EventKind::from_name(name));
                    let event = Event::from_dispatch(name, data);
                    if matches!(event, Event::Unknown { .. }) {
                        unknown += 1;
                    }
                    drop(black_box(event));
                } else {
                    bytes += black_box(data.get().len());
                }
                count += 1;
            }
            ShardEvent::Disconnected { code, .. } => {
                panic!("disconnected ({code:?}) after {count} events")
            }
            _ => {}
        }
    }
    let elapsed = start.expect("READY came first").elapsed();
    black_box(bytes);
    assert_eq!(unknown, 0, "every payload typed");
    drop(shard);
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    n as f64 / elapsed.as_secs_f64()
}

/// The feeder's ceiling: a bare tokio-tungstenite client that counts frames (no decompression, no
/// JSON), from READY to the n-th dispatch.
async fn ceiling(stream: Arc<Stream>, n: usize) -> f64 {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("address");
    let server = tokio::spawn(serve(listener, stream));
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/?v=10&encoding=json"))
        .await
        .expect("connect");
    let (mut sink, mut incoming) = ws.split();
    let _hello = incoming.next().await;
    sink.send(Message::text(r#"{"op":2,"d":{}}"#))
        .await
        .expect("identify");
    let _ready = incoming.next().await;
    let start = Instant::now();
    let mut count = 0;
    while count < n {
        match incoming.next().await {
            Some(Ok(frame)) => count += usize::from(black_box(frame.len()) > 0),
            other => panic!("feeder stopped after {count}: {other:?}"),
        }
    }
    let elapsed = start.elapsed();
    drop((sink, incoming));
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    n as f64 / elapsed.as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(200_000);
    let runs = args.get(1).copied().unwrap_or(5);

    let texts = texts(n);
    let modes = [
        (Compression::None, "none"),
        (Compression::ZlibStream, "zlib-stream"),
        (Compression::ZstdStream, "zstd-stream"),
    ];
    let mut rows = Vec::new();
    for (mode, label) in modes {
        let stream = Arc::new(stream(&texts, mode));
        let mut medians = Vec::new();
        for typed in [false, true] {
            let mut samples = Vec::new();
            for _ in 0..runs {
                // The shard runs in its own task, as in the runtime.
                let task = tokio::spawn(run(Arc::clone(&stream), mode, n, typed));
                samples.push(task.await.expect("run"));
            }
            medians.push(median(samples));
        }
        let mut samples = Vec::new();
        for _ in 0..runs {
            samples.push(
                tokio::spawn(ceiling(Arc::clone(&stream), n))
                    .await
                    .expect("run"),
            );
        }
        medians.push(median(samples));
        let plain = stream.plain_bytes as f64 / n as f64;
        let wire = stream.wire_bytes as f64 / n as f64;
        rows.push(vec![
            label.to_owned(),
            format!("{:.0}", medians[0]),
            format!("{:.0}", medians[1]),
            format!("{:.2}", 1e6 / medians[0]),
            format!("{:.2}", 1e6 / medians[1]),
            format!("{:.0}", medians[2]),
            format!("{plain:.0} / {wire:.0} ({:.1}x)", plain / wire),
        ]);
        eprintln!("{label}: done");
    }
    println!("# gateway ({})", machine());
    println!();
    println!(
        "One shard, {n} dispatches per run (80% MESSAGE_CREATE, 20% TYPING_START) over loopback from a \
         feeder in the same process (2 tokio workers: the feeder and the shard share the 2 cores), \
         median of {runs} runs."
    );
    println!();
    table(
        &[
            "compression",
            "events/s, raw dispatch",
            "events/s, + Event::from_dispatch",
            "us/event raw",
            "us/event typed",
            "feeder ceiling, events/s (bare tokio-tungstenite client)",
            "bytes/event plain / on the wire",
        ],
        &rows,
    );
}
