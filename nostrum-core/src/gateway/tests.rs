//! End-to-end tests of the shard against small WebSocket servers on loopback.

use std::{sync::Arc, time::Duration};

use flate2::{Compress, FlushCompress};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::mpsc,
    time::timeout,
};
use tokio_websockets::{CloseCode, Message, ServerBuilder, WebSocketStream};
use twilight_model::gateway::Intents;
use zstd::stream::raw::{Encoder, InBuffer, Operation, OutBuffer};

use super::{
    Compression, GatewayConfig, GatewayErrorKind, IdentifyQueue, Shard, ShardEvent, ShardId,
    ShardSender, ShardState, ShardStatus,
};

const TOKEN: &str = "test-token-value";
const WAIT: Duration = Duration::from_secs(5);

/// A gateway on port 0 that hands every accepted connection (and its request URI) to the test.
struct Server {
    url: String,
    connections: mpsc::UnboundedReceiver<Conn>,
}

/// One accepted connection, with the server's side of the compression.
struct Conn {
    ws: WebSocketStream<TcpStream>,
    uri: String,
    zlib: Compress,
    zstd: Encoder<'static>,
    compression: Compression,
}

impl Server {
    async fn start(compression: Compression) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}", listener.local_addr().unwrap());
        let (tx, connections) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let Ok((request, ws)) = ServerBuilder::new().accept(stream).await else {
                    continue;
                };
                let conn = Conn {
                    ws,
                    uri: request.uri().to_string(),
                    zlib: Compress::new(flate2::Compression::default(), true),
                    zstd: Encoder::new(3).unwrap(),
                    compression,
                };
                if tx.send(conn).is_err() {
                    break;
                }
            }
        });
        Self { url, connections }
    }

    async fn accept(&mut self) -> Conn {
        timeout(WAIT, self.connections.recv())
            .await
            .expect("no connection")
            .unwrap()
    }

    /// Asserts that no connection arrives for `wait`.
    async fn no_connection(&mut self, wait: Duration) {
        assert!(
            timeout(wait, self.connections.recv()).await.is_err(),
            "unexpected connection"
        );
    }
}

impl Conn {
    async fn send(&mut self, value: Value) {
        let text = value.to_string();
        self.send_text(&text).await;
    }

    async fn send_text(&mut self, text: &str) {
        let message = match self.compression {
            Compression::ZlibStream => {
                let mut out = Vec::with_capacity(text.len() + 64);
                let mut consumed = 0;
                loop {
                    out.reserve(1024);
                    let before = self.zlib.total_in();
                    self.zlib
                        .compress_vec(&text.as_bytes()[consumed..], &mut out, FlushCompress::Sync)
                        .unwrap();
                    consumed += (self.zlib.total_in() - before) as usize;
                    if consumed == text.len() && out.ends_with(&[0, 0, 0xFF, 0xFF]) {
                        break;
                    }
                }
                Message::binary(out)
            }
            Compression::ZstdStream => {
                let mut out = Vec::with_capacity(text.len() + 64);
                let mut input = InBuffer::around(text.as_bytes());
                while input.pos() < text.len() {
                    out.reserve(1024);
                    let pos = out.len();
                    self.zstd
                        .run(&mut input, &mut OutBuffer::around_pos(&mut out, pos))
                        .unwrap();
                }
                loop {
                    out.reserve(1024);
                    let pos = out.len();
                    if self
                        .zstd
                        .flush(&mut OutBuffer::around_pos(&mut out, pos))
                        .unwrap()
                        == 0
                    {
                        break;
                    }
                }
                Message::binary(out)
            }
            _ => Message::text(text.to_owned()),
        };
        self.ws.send(message).await.unwrap();
    }

    async fn hello(&mut self, interval_ms: u64) {
        self.send(
            json!({"op": 10, "d": {"heartbeat_interval": interval_ms}, "s": null, "t": null}),
        )
        .await;
    }

    async fn dispatch(&mut self, seq: u64, name: &str, d: Value) {
        self.send(json!({"op": 0, "s": seq, "t": name, "d": d}))
            .await;
    }

    /// HELLO, IDENTIFY, READY with session `session` resuming at `resume_url`.
    async fn handshake(&mut self, session: &str, resume_url: &str) -> Value {
        self.hello(45_000).await;
        let identify = self.expect_op(2).await;
        let d =
            json!({"v": 10, "session_id": session, "resume_gateway_url": resume_url, "guilds": []});
        self.dispatch(1, "READY", d).await;
        identify
    }

    /// The next client message with opcode `op`, skipping heartbeats when waiting for another.
    async fn expect_op(&mut self, op: u64) -> Value {
        loop {
            let message = timeout(WAIT, self.ws.next()).await.expect("client silent");
            match message {
                Some(Ok(message)) if message.is_text() => {
                    let value: Value = serde_json::from_str(message.as_text().unwrap()).unwrap();
                    if value["op"] == op {
                        return value;
                    }
                    assert_eq!(value["op"], 1, "unexpected message {value}");
                }
                Some(Ok(message)) if message.is_close() => {
                    panic!("client closed: {:?}", message.as_close())
                }
                Some(Ok(_)) => {}
                other => panic!("connection ended: {other:?}"),
            }
        }
    }

    /// The client's close code (None if the socket ended without one).
    async fn expect_close(&mut self) -> Option<u16> {
        loop {
            match timeout(WAIT, self.ws.next()).await.expect("client silent") {
                Some(Ok(message)) if message.is_close() => {
                    if message.as_payload().is_empty() {
                        return None;
                    }
                    return message.as_close().map(|(code, _)| u16::from(code));
                }
                Some(Ok(_)) => {}
                _ => return None,
            }
        }
    }

    async fn close(&mut self, code: u16) {
        let code = CloseCode::try_from(code).unwrap();
        let _ = self.ws.send(Message::close(Some(code), "test")).await;
    }
}

/// An owned copy of a shard event, or the error that ended the shard.
#[derive(Debug, PartialEq)]
enum Ev {
    Dispatch(u64, String, Value),
    Connected,
    Disconnected(Option<u16>, bool),
    Resumed,
    Error(GatewayErrorKind),
}

/// Runs the shard in a task, forwarding owned events.
struct Driven {
    events: mpsc::UnboundedReceiver<Ev>,
    sender: ShardSender,
    state: Arc<ShardState>,
}

impl Driven {
    fn start(config: GatewayConfig) -> Self {
        Self::run(Shard::new(ShardId::new(0, 1), Arc::new(config)))
    }

    fn run(mut shard: Shard) -> Self {
        let (sender, state) = (shard.sender(), shard.state());
        let (tx, events) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let event = match shard.next_event().await {
                    Ok(ShardEvent::Dispatch { seq, name, data }) => Ev::Dispatch(
                        seq,
                        name.to_owned(),
                        serde_json::from_str(data.get()).unwrap(),
                    ),
                    Ok(ShardEvent::Connected) => Ev::Connected,
                    Ok(ShardEvent::Disconnected { code, will_resume }) => {
                        Ev::Disconnected(code, will_resume)
                    }
                    Ok(ShardEvent::Resumed) => Ev::Resumed,
                    Err(error) => {
                        let _ = tx.send(Ev::Error(*error.kind()));
                        break;
                    }
                };
                if tx.send(event).is_err() {
                    break;
                }
            }
        });
        Self {
            events,
            sender,
            state,
        }
    }

    async fn next(&mut self) -> Ev {
        timeout(WAIT, self.events.recv())
            .await
            .expect("no event")
            .expect("shard task ended")
    }

    /// The next event: a dispatch as its name, anything else as its Debug text.
    async fn next_name(&mut self) -> String {
        match self.next().await {
            Ev::Dispatch(_, name, _) => name,
            other => format!("{other:?}"),
        }
    }
}

fn config(url: &str, compression: Compression) -> GatewayConfig {
    let mut config = GatewayConfig::new(TOKEN.into(), Intents::GUILDS | Intents::GUILD_MESSAGES);
    config.gateway_url = url.to_owned();
    config.compression = compression;
    config.identify_queue = Arc::new(IdentifyQueue::new(1, 1000, Duration::from_secs(3600)));
    config.invalid_session_delay = (Duration::from_millis(10), Duration::from_millis(20));
    config
}

async fn identify_ready_and_dispatch(compression: Compression) {
    let mut server = Server::start(compression).await;
    let mut shard = Driven::start(config(&server.url, compression));
    let mut conn = server.accept().await;
    assert!(conn.uri.contains("v=10&encoding=json"), "{}", conn.uri);
    match compression.query() {
        Some(query) => assert!(
            conn.uri.ends_with(&format!("&compress={query}")),
            "{}",
            conn.uri
        ),
        None => assert!(!conn.uri.contains("compress"), "{}", conn.uri),
    }
    let identify = conn.handshake("s1", &server.url).await;
    let d = &identify["d"];
    assert_eq!(d["token"], TOKEN);
    assert_eq!(d["shard"], json!([0, 1]));
    assert_eq!(
        d["intents"],
        (Intents::GUILDS | Intents::GUILD_MESSAGES).bits()
    );
    assert_eq!(d["compress"], false);
    assert_eq!(d["large_threshold"], 50);
    assert_eq!(d["properties"]["browser"], "nostrum-rs");
    conn.dispatch(2, "MESSAGE_CREATE", json!({"content": "hi"}))
        .await;
    // A big message, to cross buffer growth in the decompressors.
    let content = "x".repeat(300_000);
    conn.dispatch(3, "MESSAGE_CREATE", json!({"content": content}))
        .await;

    assert_eq!(shard.next().await, Ev::Connected);
    assert_eq!(shard.next_name().await, "READY");
    assert_eq!(
        shard.next().await,
        Ev::Dispatch(2, "MESSAGE_CREATE".into(), json!({"content": "hi"}))
    );
    let Ev::Dispatch(3, _, data) = shard.next().await else {
        panic!("no big dispatch")
    };
    assert_eq!(data["content"].as_str().unwrap().len(), 300_000);
    assert_eq!(shard.state.status(), ShardStatus::Connected);
    assert_eq!(shard.state.session_id().as_deref(), Some("s1"));
    assert_eq!(shard.state.sequence(), Some(3));
    assert_eq!(
        shard.state.resume_url().as_deref(),
        Some(server.url.as_str())
    );
}

#[tokio::test]
async fn identify_and_dispatch_plain() {
    identify_ready_and_dispatch(Compression::None).await;
}

#[tokio::test]
async fn identify_and_dispatch_zlib_stream() {
    identify_ready_and_dispatch(Compression::ZlibStream).await;
}

#[tokio::test]
async fn identify_and_dispatch_zstd_stream() {
    identify_ready_and_dispatch(Compression::ZstdStream).await;
}

#[tokio::test]
async fn reconnect_op_resumes_the_session() {
    let mut server = Server::start(Compression::ZlibStream).await;
    let mut shard = Driven::start(config(&server.url, Compression::ZlibStream));
    let mut conn = server.accept().await;
    conn.handshake("s1", &server.url).await;
    conn.dispatch(2, "TYPING_START", json!({})).await;
    conn.send(json!({"op": 7, "d": null})).await;
    assert_eq!(conn.expect_close().await, Some(4000));

    let mut conn = server.accept().await;
    conn.hello(45_000).await;
    let resume = conn.expect_op(6).await;
    assert_eq!(
        resume["d"],
        json!({"token": TOKEN, "session_id": "s1", "seq": 2})
    );
    conn.dispatch(3, "RESUMED", json!(null)).await;

    assert_eq!(shard.next().await, Ev::Connected);
    assert_eq!(shard.next_name().await, "READY");
    assert_eq!(shard.next_name().await, "TYPING_START");
    assert_eq!(shard.next().await, Ev::Disconnected(None, true));
    assert_eq!(shard.next().await, Ev::Connected);
    assert_eq!(
        shard.next().await,
        Ev::Dispatch(3, "RESUMED".into(), Value::Null)
    );
    assert_eq!(shard.next().await, Ev::Resumed);
    assert_eq!(shard.state.status(), ShardStatus::Connected);
}

#[tokio::test]
async fn fatal_close_code_stops_without_reconnecting() {
    for (code, kind) in [
        (4004, GatewayErrorKind::AuthenticationFailed),
        (4014, GatewayErrorKind::DisallowedIntents),
    ] {
        let mut server = Server::start(Compression::None).await;
        let mut shard = Driven::start(config(&server.url, Compression::None));
        let mut conn = server.accept().await;
        conn.hello(45_000).await;
        conn.expect_op(2).await;
        conn.close(code).await;
        assert_eq!(shard.next().await, Ev::Connected);
        let started = std::time::Instant::now();
        assert_eq!(shard.next().await, Ev::Error(kind));
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(shard.state.status(), ShardStatus::FatallyClosed);
        server.no_connection(Duration::from_millis(700)).await;
    }
}

#[tokio::test]
async fn session_timeout_identifies_anew_and_other_codes_resume() {
    let mut server = Server::start(Compression::None).await;
    let mut shard = Driven::start(config(&server.url, Compression::None));
    let mut conn = server.accept().await;
    conn.handshake("s1", &server.url).await;
    conn.close(4000).await;
    let mut conn = server.accept().await;
    conn.hello(45_000).await;
    conn.expect_op(6).await;
    conn.close(4009).await;
    let mut conn = server.accept().await;
    conn.handshake("s2", &server.url).await;

    assert_eq!(shard.next().await, Ev::Connected);
    assert_eq!(shard.next_name().await, "READY");
    assert_eq!(shard.next().await, Ev::Disconnected(Some(4000), true));
    assert_eq!(shard.next().await, Ev::Connected);
    assert_eq!(shard.next().await, Ev::Disconnected(Some(4009), false));
    assert_eq!(shard.next().await, Ev::Connected);
    assert_eq!(shard.next_name().await, "READY");
    assert_eq!(shard.state.session_id().as_deref(), Some("s2"));
}

#[tokio::test]
async fn invalid_session_waits_then_identifies() {
    let mut server = Server::start(Compression::None).await;
    let mut shard = Driven::start(config(&server.url, Compression::None));
    let mut conn = server.accept().await;
    conn.handshake("s1", &server.url).await;
    conn.send(json!({"op": 9, "d": false})).await;
    assert_eq!(conn.expect_close().await, Some(1000));
    let mut conn = server.accept().await;
    conn.handshake("s2", &server.url).await;

    assert_eq!(shard.next().await, Ev::Connected);
    assert_eq!(shard.next_name().await, "READY");
    assert_eq!(shard.next().await, Ev::Disconnected(None, false));
    assert_eq!(shard.next().await, Ev::Connected);
    assert_eq!(shard.next_name().await, "READY");
}

#[tokio::test]
async fn zombie_connection_is_closed_and_resumed() {
    let mut server = Server::start(Compression::None).await;
    let mut shard = Driven::start(config(&server.url, Compression::None));
    let mut conn = server.accept().await;
    conn.hello(100).await;
    conn.expect_op(2).await;
    conn.dispatch(
        1,
        "READY",
        json!({"session_id": "s1", "resume_gateway_url": server.url}),
    )
    .await;
    // The first heartbeat is answered, the second is not.
    let heartbeat = conn.expect_op(1).await;
    assert_eq!(heartbeat["d"], 1);
    conn.send(json!({"op": 11})).await;
    conn.expect_op(1).await;
    assert_eq!(conn.expect_close().await, Some(4000));
    let mut conn = server.accept().await;
    conn.hello(45_000).await;
    assert_eq!(conn.expect_op(6).await["d"]["session_id"], "s1");

    assert_eq!(shard.next().await, Ev::Connected);
    assert_eq!(shard.next_name().await, "READY");
    assert_eq!(shard.next().await, Ev::Disconnected(None, true));
    assert!(shard.state.latency().is_some());
}

#[tokio::test]
async fn heartbeat_request_is_answered_at_once() {
    let mut server = Server::start(Compression::None).await;
    let _shard = Driven::start(config(&server.url, Compression::None));
    let mut conn = server.accept().await;
    conn.handshake("s1", &server.url).await;
    conn.dispatch(5, "TYPING_START", json!({})).await;
    conn.send(json!({"op": 1, "d": null})).await;
    let started = std::time::Instant::now();
    assert_eq!(conn.expect_op(1).await["d"], 5);
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn malformed_messages_are_skipped() {
    let mut server = Server::start(Compression::ZlibStream).await;
    let mut shard = Driven::start(config(&server.url, Compression::ZlibStream));
    let mut conn = server.accept().await;
    conn.handshake("s1", &server.url).await;
    conn.send_text("{not json").await;
    conn.send_text(r#"{"op":0,"d":{}}"#).await;
    conn.dispatch(2, "TYPING_START", json!({"ok": true})).await;

    assert_eq!(shard.next().await, Ev::Connected);
    assert_eq!(shard.next_name().await, "READY");
    assert_eq!(
        shard.next().await,
        Ev::Dispatch(2, "TYPING_START".into(), json!({"ok": true}))
    );
}

#[tokio::test]
async fn oversized_message_reconnects_and_resumes() {
    let mut server = Server::start(Compression::ZstdStream).await;
    let mut config = config(&server.url, Compression::ZstdStream);
    config.max_decompressed_frame = 64 * 1024;
    let mut shard = Driven::start(config);
    let mut conn = server.accept().await;
    conn.handshake("s1", &server.url).await;
    conn.dispatch(2, "GUILD_CREATE", json!({"pad": " ".repeat(1 << 20)}))
        .await;
    assert_eq!(conn.expect_close().await, Some(4000));
    let mut conn = server.accept().await;
    conn.hello(45_000).await;
    conn.expect_op(6).await;

    assert_eq!(shard.next().await, Ev::Connected);
    assert_eq!(shard.next_name().await, "READY");
    assert_eq!(shard.next().await, Ev::Disconnected(None, true));
}

#[tokio::test]
async fn commands_wait_for_ready_and_close_is_graceful() {
    let mut server = Server::start(Compression::None).await;
    let mut shard = Driven::start(config(&server.url, Compression::None));
    shard
        .sender
        .update_presence(json!({"status": "idle"}))
        .unwrap();
    let mut conn = server.accept().await;
    conn.hello(45_000).await;
    conn.expect_op(2).await;
    // Nothing may precede READY: the presence update waits for it.
    assert!(
        timeout(Duration::from_millis(200), conn.ws.next())
            .await
            .is_err()
    );
    conn.dispatch(
        1,
        "READY",
        json!({"session_id": "s1", "resume_gateway_url": server.url}),
    )
    .await;
    assert_eq!(conn.expect_op(3).await["d"]["status"], "idle");
    shard
        .sender
        .update_voice_state(1, Some(2), false, true)
        .unwrap();
    assert_eq!(conn.expect_op(4).await["d"]["channel_id"], "2");

    assert_eq!(shard.next().await, Ev::Connected);
    assert_eq!(shard.next_name().await, "READY");
    shard.sender.close().unwrap();
    assert_eq!(conn.expect_close().await, Some(1000));
    assert_eq!(shard.next().await, Ev::Error(GatewayErrorKind::Closed));
    assert_eq!(shard.state.status(), ShardStatus::Stopped);
    assert_eq!(
        *shard.sender.command(3, json!({})).unwrap_err().kind(),
        GatewayErrorKind::Closed
    );
}

#[tokio::test]
async fn unreachable_gateway_retries_until_closed() {
    // A port that was just free: connecting fails, the shard backs off and keeps trying.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    drop(listener);
    let mut shard = Driven::start(config(&url, Compression::None));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(matches!(
        shard.state.status(),
        ShardStatus::Connecting | ShardStatus::Disconnected
    ));
    shard.sender.close().unwrap();
    assert_eq!(shard.next().await, Ev::Error(GatewayErrorKind::Closed));
}

#[tokio::test]
async fn unwanted_dispatches_are_counted_but_not_yielded() {
    let mut server = Server::start(Compression::None).await;
    let mut shard = Shard::new(
        ShardId::new(0, 1),
        Arc::new(config(&server.url, Compression::None)),
    );
    // READY is refused too, but the shard always needs (and yields) it.
    shard.set_wanted(|name| name == "MESSAGE_CREATE");
    let mut shard = Driven::run(shard);
    let mut conn = server.accept().await;
    conn.handshake("s1", &server.url).await;
    // Discord's key order (t, s, op, d): `d` is never read, so a malformed one does no harm.
    conn.send_text(r#"{"t":"TYPING_START","s":2,"op":0,"d":{"broken":]}"#)
        .await;
    conn.send_text(r#"{"t":"TYPING_START","s":3,"op":0,"d":{"ok":true}}"#)
        .await;
    conn.send_text(r#"{"t":"MESSAGE_CREATE","s":4,"op":0,"d":{"content":"hi"}}"#)
        .await;
    // `d` first: parsed in full as before, and still not yielded.
    conn.send_text(r#"{"d":{"ok":true},"op":0,"s":5,"t":"TYPING_START"}"#)
        .await;
    conn.send_text(r#"{"d":{"content":"yo"},"op":0,"s":6,"t":"MESSAGE_CREATE"}"#)
        .await;
    conn.send_text(r#"{"t":"PRESENCE_UPDATE","s":7,"op":0,"d":{}}"#)
        .await;
    conn.send(json!({"op": 1, "d": null})).await;

    assert_eq!(shard.next().await, Ev::Connected);
    assert_eq!(shard.next_name().await, "READY");
    assert_eq!(
        shard.next().await,
        Ev::Dispatch(4, "MESSAGE_CREATE".into(), json!({"content": "hi"}))
    );
    assert_eq!(
        shard.next().await,
        Ev::Dispatch(6, "MESSAGE_CREATE".into(), json!({"content": "yo"}))
    );
    // The skipped dispatches' sequences count: the heartbeat (and a RESUME) carries 7.
    loop {
        let heartbeat = conn.expect_op(1).await;
        if heartbeat["d"] == 7 {
            break;
        }
    }
    assert_eq!(shard.state.sequence(), Some(7));
    assert_eq!(shard.state.status(), ShardStatus::Connected);
    // The connection is intact: a wanted dispatch still arrives.
    conn.send_text(r#"{"t":"MESSAGE_CREATE","s":8,"op":0,"d":{}}"#)
        .await;
    assert_eq!(
        shard.next().await,
        Ev::Dispatch(8, "MESSAGE_CREATE".into(), json!({}))
    );
}

/// While the server floods dispatches as fast as the shard reads them (it then finds a message
/// buffered at almost every turn and skips the select), heartbeats still leave on time, commands go
/// out, and a close is still graceful: the close frame reaches the server although the shard drops a
/// socket with unread data (this failed about one run in eight before the shard awaited the
/// server's close). tokio's cooperative budget also sends the shard through the select now and
/// then, so the heartbeat and command checks of the fast path are a second guard here, not the only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_dispatches_holds_up_no_heartbeat_command_or_close() {
    const INTERVAL_MS: u64 = 200;
    /// How far the server runs ahead of what the shard has yielded: enough that a message is
    /// always buffered, little enough that a heartbeat ACK behind them arrives in time.
    const AHEAD: u64 = 2_000;
    let mut server = Server::start(Compression::None).await;
    let mut shard = Driven::start(config(&server.url, Compression::None));
    let mut conn = server.accept().await;
    conn.hello(INTERVAL_MS).await;
    conn.expect_op(2).await;
    conn.dispatch(
        1,
        "READY",
        json!({"session_id": "s1", "resume_gateway_url": server.url}),
    )
    .await;
    assert_eq!(shard.next().await, Ev::Connected);
    assert_eq!(shard.next_name().await, "READY");
    let yielded = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = Arc::clone(&yielded);
    let events = tokio::spawn(async move {
        while let Some(event) = shard.events.recv().await {
            if matches!(event, Ev::Dispatch(..)) {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        counter.load(std::sync::atomic::Ordering::Relaxed)
    });

    let (mut sink, mut stream) = conn.ws.split();
    let (ack_tx, mut ack_rx) = mpsc::unbounded_channel::<()>();
    let ahead = Arc::clone(&yielded);
    let flood = tokio::spawn(async move {
        let yielded = ahead;
        let content = "flood ".repeat(40);
        let mut seq = 2u64;
        loop {
            while ack_rx.try_recv().is_ok() {
                let ack = json!({"op": 11, "d": null}).to_string();
                if sink.send(Message::text(ack)).await.is_err() {
                    return seq;
                }
            }
            if seq > yielded.load(std::sync::atomic::Ordering::Relaxed) + AHEAD {
                if ack_rx.is_closed() {
                    return seq;
                }
                tokio::task::yield_now().await;
                continue;
            }
            // Batches of frames, flushed together: the socket stays full.
            for _ in 0..64 {
                let text = format!(
                    r#"{{"t":"MESSAGE_CREATE","s":{seq},"op":0,"d":{{"content":"{content}"}}}}"#
                );
                if sink.feed(Message::text(text)).await.is_err() {
                    return seq;
                }
                seq += 1;
            }
            if sink.flush().await.is_err() {
                return seq;
            }
        }
    });

    let started = tokio::time::Instant::now();
    let mut heartbeats = 0;
    let mut presence_sent = false;
    let mut presence_seen = false;
    let close_code = loop {
        let message = timeout(WAIT, stream.next())
            .await
            .expect("client silent during the flood");
        let Some(Ok(message)) = message else {
            panic!("connection ended during the flood: {message:?}");
        };
        if message.is_close() {
            break message.as_close().map(|(code, _)| u16::from(code));
        }
        let Some(text) = message.as_text() else {
            continue;
        };
        let value: Value = serde_json::from_str(text).unwrap();
        match value["op"].as_u64() {
            Some(1) => {
                heartbeats += 1;
                ack_tx.send(()).unwrap();
            }
            Some(3) => presence_seen = true,
            other => panic!("unexpected op {other:?}: {value}"),
        }
        let elapsed = started.elapsed();
        if !presence_sent && elapsed > Duration::from_millis(5 * INTERVAL_MS) {
            shard
                .sender
                .update_presence(json!({"status": "idle"}))
                .unwrap();
            presence_sent = true;
        }
        if elapsed > Duration::from_millis(15 * INTERVAL_MS) && presence_seen {
            shard.sender.close().unwrap();
        }
    };
    let elapsed = started.elapsed();
    drop(ack_tx);
    assert_eq!(close_code, Some(1000), "a graceful close during the flood");
    assert!(presence_seen, "the command went out during the flood");
    // One heartbeat per interval (the first one jittered); a starved timer would send none.
    let expected = elapsed.as_millis() as u64 / INTERVAL_MS;
    assert!(
        heartbeats + 3 >= expected,
        "{heartbeats} heartbeats in {elapsed:?} at {INTERVAL_MS} ms"
    );
    let sent = flood.await.unwrap();
    let dispatches = events.await.unwrap();
    assert!(
        dispatches > 1_000,
        "a flood: {dispatches} dispatches read, {sent} sent"
    );
}

/// A shard reading a backlog of buffered frames still lets the other tasks of its thread run (here
/// a current-thread runtime; on a multi-thread one, the task a handler spawns waits in the worker's
/// unstealable LIFO slot until the shard yields): tokio's budget is spent per message, not only per
/// socket read, so the shard yields every 128 or so messages.
#[tokio::test]
async fn a_backlog_of_buffered_frames_lets_other_tasks_run() {
    const BACKLOG: u64 = 20_000;
    let mut server = Server::start(Compression::ZlibStream).await;
    let mut shard = Shard::new(
        ShardId::new(0, 1),
        Arc::new(config(&server.url, Compression::ZlibStream)),
    );
    // The server side runs on its own thread, so that it writes while this thread reads.
    let (conn_tx, conn_rx) = std::sync::mpsc::channel();
    let (sent_tx, sent_rx) = tokio::sync::oneshot::channel();
    let server_thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let mut conn: Conn = conn_rx.recv().unwrap();
            conn.handshake("s1", "ws://127.0.0.1:9").await;
            // Small frames compress to a few bytes each: the socket buffers thousands.
            for seq in 2..BACKLOG + 2 {
                conn.send_text(&format!(
                    r#"{{"t":"TYPING_START","s":{seq},"op":0,"d":{{}}}}"#
                ))
                .await;
            }
            let _ = sent_tx.send(());
            // Hold the connection open until the shard has read everything.
            let _ = timeout(WAIT, conn.ws.next()).await;
        });
    });
    let accept = async { conn_tx.send(server.accept().await).unwrap() };
    let ready = async {
        loop {
            if let ShardEvent::Dispatch { name: "READY", .. } = shard.next_event().await.unwrap() {
                break;
            }
        }
    };
    tokio::join!(accept, ready);
    // The whole backlog in the socket's buffers before the first read (it fits: ~15 bytes a frame).
    let sent = timeout(WAIT, sent_rx).await.is_ok();

    let read = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let probe = tokio::spawn({
        let read = Arc::clone(&read);
        async move { read.load(std::sync::atomic::Ordering::SeqCst) }
    });
    while read.load(std::sync::atomic::Ordering::SeqCst) < BACKLOG {
        if let ShardEvent::Dispatch { .. } = shard.next_event().await.unwrap() {
            read.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let ran_after = probe.await.unwrap();
    assert!(
        ran_after <= 1_000,
        "the other task ran only after {ran_after} of {BACKLOG} buffered messages"
    );
    assert!(sent, "the server could not buffer the backlog");
    shard.sender().close().unwrap();
    let _ = timeout(WAIT, shard.next_event()).await;
    server_thread.join().unwrap();
}
