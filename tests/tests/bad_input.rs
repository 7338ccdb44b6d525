//! Bad input through the public API: malformed and odd payloads, unknown events, malformed frames,
//! an oversize frame, a wrong token, disallowed intents. After each the bot keeps serving (a later
//! `!ping` arrives), or stops at once with a typed error that names the cause.
//!
//! The regression inputs of the fuzz targets (`fuzz/`) are at the end.

mod common;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use common::{Bot, WAIT, builder, trace};
use futures::{SinkExt, StreamExt};
use nostrum_core::ClientError;
use nostrum_core::gateway::{
    Compression, GatewayConfig, GatewayErrorKind, IdentifyQueue, Shard, ShardEvent, ShardId,
};
use nostrum_core::http::HttpErrorKind;
use nostrum_core::local::{Fault, LocalConfig, LocalDiscord};
use nostrum_core::prelude::*;
use nostrum_core::{Event, UnknownEvent};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};
use tokio_websockets::{Message as WsMessage, ServerBuilder};

async fn local(config: LocalConfig) -> LocalDiscord {
    LocalDiscord::start(config)
        .await
        .expect("the local Discord starts")
}

/// Counts what arrives typed (MESSAGE_CREATE contents) and what arrives as `Event::Unknown`, through
/// `on_unknown`.
#[derive(Clone, Debug, Default)]
struct Tally {
    typed: Arc<Mutex<Vec<String>>>,
    unknown: Arc<Mutex<Vec<(String, String)>>>,
}

#[consumer]
impl Tally {
    async fn on_message_create(&self, msg: Message) {
        lock(&self.typed).push(msg.content.clone());
    }

    async fn on_unknown(&self, event: UnknownEvent) {
        lock(&self.unknown).push((event.name.to_string(), event.raw.get().to_owned()));
    }
}

/// Sees every event through `on_event`; keeps the names of the unknown ones and counts the typed.
#[derive(Clone, Debug, Default)]
struct CatchAll {
    unknown: Arc<Mutex<Vec<String>>>,
    typed_messages: Arc<Mutex<usize>>,
}

#[consumer]
impl CatchAll {
    async fn on_event(&self, event: Event) {
        match &event {
            Event::Unknown { name, .. } => lock(&self.unknown).push(name.to_string()),
            Event::MessageCreate(_) => *lock(&self.typed_messages) += 1,
            _ => {}
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn wait_until(what: &str, mut pred: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !pred() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A full MESSAGE_CREATE as the local Discord would send it, for channel `channel`.
fn message(discord: &LocalDiscord, id: u64, content: &str) -> Value {
    let guild = discord.guild_ids()[0];
    let channel = discord.channel_ids(guild)[0];
    json!({
        "id": id.to_string(), "channel_id": channel.to_string(), "guild_id": guild.to_string(),
        "author": {"id": "42", "username": "mallory", "discriminator": "0", "avatar": null,
                   "global_name": null, "bot": false, "public_flags": 0},
        "member": {"roles": [], "joined_at": "2021-01-01T00:00:00.000000+00:00", "deaf": false,
                   "mute": false, "flags": 0},
        "content": content, "timestamp": "2024-01-01T00:00:00.000000+00:00",
        "edited_timestamp": null, "tts": false, "mention_everyone": false, "mentions": [],
        "mention_roles": [], "attachments": [], "embeds": [], "pinned": false, "type": 0,
        "flags": 0, "components": []
    })
}

/// JSON nested `depth` levels deep.
fn nested(depth: usize) -> Value {
    (0..depth).fold(json!(1), |inner, _| Value::Array(vec![inner]))
}

/// The bad-input table, end to end: each row is a dispatch the local Discord sends (any JSON `d`),
/// and what the bot must make of it. After all of them a `!ping` from a user still arrives typed.
#[tokio::test]
async fn bad_payloads_become_unknown_and_the_bot_goes_on() {
    trace();
    let discord = local(LocalConfig::default()).await;
    let tally = Tally::default();
    let all = CatchAll::default();
    let _bot = Bot::spawn(
        builder(&discord)
            .add_intents(Intents::MESSAGE_CONTENT)
            .consumer_with(tally.clone(), ConsumerOptions::tasking(Tasking::Inline))
            .consumer_with(all.clone(), ConsumerOptions::tasking(Tasking::Inline)),
    );
    assert!(discord.wait_for_ready(0, 1, WAIT).await, "no READY");

    let mut missing_author = message(&discord, 11, "no author");
    missing_author.as_object_mut().unwrap().remove("author");
    let mut extra_field = message(&discord, 12, "extra field");
    extra_field["a_field_from_2030"] = json!({"nested": [1, 2, 3]});
    extra_field["author"]["another_new_field"] = json!(true);
    let mut wrong_type = message(&discord, 13, "wrong type");
    wrong_type["id"] = json!({"not": "a snowflake"});
    let mut bad_snowflake = message(&discord, 14, "bad snowflake");
    bad_snowflake["id"] = json!("-1");
    let mut zero_id = message(&discord, 15, "zero id");
    zero_id["id"] = json!("0");
    let mut huge_content = message(&discord, 16, "");
    huge_content["content"] = json!("x".repeat(100_000));
    let mut odd_unicode = message(&discord, 17, "\u{0}\u{202e}\u{1F600}\u{FFFF}");
    odd_unicode["author"]["username"] = json!("\u{0}");

    // (t, d, arrives typed as MESSAGE_CREATE?)
    let rows: Vec<(&str, Value, bool)> = vec![
        ("MESSAGE_CREATE", json!("a string, not an object"), false),
        ("MESSAGE_CREATE", json!({"id": "1"}), false),
        ("MESSAGE_CREATE", Value::Null, false),
        ("MESSAGE_CREATE", json!([]), false),
        ("MESSAGE_CREATE", missing_author, false),
        ("MESSAGE_CREATE", extra_field, true),
        ("MESSAGE_CREATE", wrong_type, false),
        ("MESSAGE_CREATE", bad_snowflake, false),
        ("MESSAGE_CREATE", zero_id, false),
        ("MESSAGE_CREATE", huge_content, true),
        ("MESSAGE_CREATE", odd_unicode, true),
        ("MESSAGE_CREATE", nested(1_000), false),
        ("BRAND_NEW_EVENT_2030", json!({"x": 1}), false),
        ("brand_new_lowercase", json!(null), false),
        ("", json!({}), false),
        ("UNKNOWN_DEEP", nested(1_000), false),
        ("GUILD_MEMBER_UPDATE", json!({"guild_id": "nope"}), false),
    ];
    let expected_typed = rows.iter().filter(|row| row.2).count();
    let expected_unknown = rows.len() - expected_typed;
    for (t, d, _) in &rows {
        assert!(discord.dispatch(0, t, d.clone()).await.is_some(), "{t}");
    }
    let guild = discord.guild_ids()[0];
    let channel = discord.channel_ids(guild)[0];
    discord.user_message(channel, "alice", "!ping").await;

    wait_until("the !ping after the bad payloads", || {
        lock(&tally.typed).iter().any(|c| c == "!ping")
    })
    .await;
    let typed = lock(&tally.typed).clone();
    let unknown = lock(&tally.unknown).clone();
    let unknown_names: Vec<&str> = unknown.iter().map(|(n, _)| n.as_str()).collect();
    eprintln!(
        "typed: {:?}",
        typed.iter().map(|c| c.len().min(20)).collect::<Vec<_>>()
    );
    eprintln!("unknown: {unknown_names:?}");
    assert_eq!(typed.len(), expected_typed + 1, "typed: {typed:?}");
    assert_eq!(typed.last().map(String::as_str), Some("!ping"));
    assert_eq!(
        unknown.len(),
        expected_unknown,
        "every row that does not type is delivered as Event::Unknown: {unknown_names:?}"
    );
    let expected_names: Vec<&str> = rows.iter().filter(|r| !r.2).map(|r| r.0).collect();
    assert_eq!(
        unknown_names, expected_names,
        "in gateway order, names kept"
    );
    // The raw JSON is kept as sent.
    assert_eq!(unknown[0].1, r#""a string, not an object""#);
    // The catch-all consumer saw the same.
    assert_eq!(lock(&all.unknown).len(), expected_unknown);
    assert_eq!(*lock(&all.typed_messages), expected_typed + 1);
    assert_eq!(discord.identifies().len(), 1, "no reconnect");
    assert!(discord.resumes().is_empty(), "no reconnect");
}

/// Frames in Discord's layout (`{"t":..,"s":..,"op":0,"d":..}`) are read without walking `d`; the
/// typed parse shows that `d` is JSON and was the last key. Those where it was not: a key after `d`
/// (typed from the true `d`), malformed JSON (skipped, warned), a repeated key (skipped), an
/// unknown name with a key after `d` (`Event::Unknown` with the true `d` as its raw JSON). After them
/// the bot still serves.
#[tokio::test]
async fn frames_in_discords_layout_whose_d_is_not_what_it_seems() {
    trace();
    let discord = local(LocalConfig::default()).await;
    let tally = Tally::default();
    let _bot = Bot::spawn(
        builder(&discord)
            .add_intents(Intents::MESSAGE_CONTENT)
            .consumer_with(tally.clone(), ConsumerOptions::tasking(Tasking::Inline)),
    );
    assert!(discord.wait_for_ready(0, 1, WAIT).await, "no READY");
    let d = |id, content: &str| message(&discord, id, content).to_string();
    let frames = [
        format!(
            r#"{{"t":"MESSAGE_CREATE","s":1001,"op":0,"d":{}}}"#,
            d(21, "plain")
        ),
        format!(
            r#"{{"t":"MESSAGE_CREATE","s":1002,"op":0,"d":{},"x":{{"y":[1,"}}"]}}}}"#,
            d(22, "key after d")
        ),
        r#"{"t":"MESSAGE_CREATE","s":1003,"op":0,"d":{"id":}"#.to_owned(),
        format!(
            r#"{{"t":"MESSAGE_CREATE","s":1004,"op":0,"d":{},"t":"TYPING_START"}}"#,
            d(24, "repeated t")
        ),
        r#"{"t":"BRAND_NEW_2031","s":1005,"op":0,"d":{"a":[1,2]},"z":{"b":null}}"#.to_owned(),
        format!(
            r#"{{"t":"MESSAGE_CREATE","s":1006,"op":0,"d":{} }}  "#,
            d(26, "spaces")
        ),
        r#"{"t":"MESSAGE_CREATE","s":1007,"op":0,"d":[1,2]}"#.to_owned(),
    ];
    for frame in frames {
        discord.inject(0, Fault::RawText(frame)).await;
    }
    let guild = discord.guild_ids()[0];
    let channel = discord.channel_ids(guild)[0];
    discord.user_message(channel, "alice", "!ping").await;
    wait_until("the !ping after the frames", || {
        lock(&tally.typed).iter().any(|c| c == "!ping")
    })
    .await;
    assert_eq!(
        *lock(&tally.typed),
        ["plain", "key after d", "spaces", "!ping"],
        "typed from the true `d`; the malformed and the repeated key skipped"
    );
    assert_eq!(
        *lock(&tally.unknown),
        [
            ("BRAND_NEW_2031".to_owned(), r#"{"a":[1,2]}"#.to_owned()),
            ("MESSAGE_CREATE".to_owned(), "[1,2]".to_owned()),
        ],
        "the raw JSON of `Event::Unknown` is `d`, validated"
    );
    assert_eq!(discord.identifies().len(), 1, "no reconnect");
}

/// A READY whose `d` lacks `session_id` (or `resume_gateway_url`) cannot start a session; it still
/// reaches a consumer that handles READY, as `Event::Unknown` like every other payload that does not
/// parse. (A consumer that handles neither READY nor every event is not sent it: events no consumer
/// wants are skipped before they are parsed.)
#[tokio::test]
async fn malformed_ready_is_delivered_as_unknown() {
    trace();
    let discord = local(LocalConfig::default()).await;
    let unknown = Arc::new(Mutex::new(Vec::new()));
    let catch_all = CatchAll {
        unknown: Arc::clone(&unknown),
        typed_messages: Arc::default(),
    };
    let _bot = Bot::spawn(
        builder(&discord).consumer_with(catch_all, ConsumerOptions::tasking(Tasking::Inline)),
    );
    assert!(discord.wait_for_ready(0, 1, WAIT).await, "no READY");
    discord
        .dispatch(0, "READY", json!({"v": "ten"}))
        .await
        .unwrap();
    discord.dispatch(0, "AFTER_READY", json!({})).await.unwrap();
    wait_until("AFTER_READY", || {
        lock(&unknown).iter().any(|n| n == "AFTER_READY")
    })
    .await;
    let names: Vec<String> = lock(&unknown).clone();
    assert_eq!(names, ["READY", "AFTER_READY"]);
}

/// A gateway on loopback that sends each accepted connection the frames given for it.
async fn frame_server() -> (String, mpsc::UnboundedSender<Vec<WsMessage>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<WsMessage>>();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let frames = rx.recv().await.unwrap_or_default();
            tokio::spawn(async move {
                let Ok((_request, mut ws)) = ServerBuilder::new().accept(stream).await else {
                    return;
                };
                for frame in frames {
                    if ws.send(frame).await.is_err() {
                        return;
                    }
                }
                // Keep the connection open, reading (and ignoring) what the shard sends.
                while let Some(Ok(_)) = ws.next().await {}
            });
        }
    });
    (url, tx)
}

fn shard_config(url: &str, token: &str, compression: Compression) -> GatewayConfig {
    let mut config = GatewayConfig::new(token.into(), Intents::GUILDS | Intents::GUILD_MESSAGES);
    config.gateway_url = url.to_owned();
    config.compression = compression;
    config.identify_queue = Arc::new(IdentifyQueue::new(1, 1000, Duration::from_secs(3600)));
    config.invalid_session_delay = (Duration::from_millis(10), Duration::from_millis(20));
    config
}

/// An owned copy of what a shard yields.
#[derive(Debug, PartialEq)]
enum Ev {
    Dispatch(u64, String, Value),
    Connected,
    Disconnected(Option<u16>, bool),
    Resumed,
    Error(GatewayErrorKind),
}

/// Runs the shard in a task, forwarding owned events.
fn drive(config: GatewayConfig) -> mpsc::UnboundedReceiver<Ev> {
    let mut shard = Shard::new(ShardId::new(0, 1), Arc::new(config));
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let event = match shard.next_event().await {
                Ok(ShardEvent::Dispatch { seq, name, data }) => Ev::Dispatch(
                    seq,
                    name.to_owned(),
                    serde_json::from_str(data.get()).unwrap_or(Value::Null),
                ),
                Ok(ShardEvent::Connected) => Ev::Connected,
                Ok(ShardEvent::Disconnected { code, will_resume }) => {
                    Ev::Disconnected(code, will_resume)
                }
                Ok(ShardEvent::Resumed) => Ev::Resumed,
                Ok(_) => continue,
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
    rx
}

async fn next(events: &mut mpsc::UnboundedReceiver<Ev>) -> Ev {
    timeout(WAIT, events.recv())
        .await
        .expect("no event from the shard")
        .expect("the shard task ended")
}

/// Frames that are not gateway messages at all (not JSON, truncated JSON, a dispatch without `s`
/// or `t`, a HELLO without an interval, an opcode out of range, bytes that are not UTF-8) are
/// skipped: the connection stays up and the next dispatch arrives.
#[tokio::test]
async fn malformed_frames_are_skipped_on_the_same_connection() {
    trace();
    let (url, frames) = frame_server().await;
    let text = |s: &str| WsMessage::text(s.to_owned());
    frames
        .send(vec![
            text(r#"{"op":10,"d":{"heartbeat_interval":45000}}"#),
            text(r#"{"op":0,"s":1,"t":"READY","d":{"session_id":"s","resume_gateway_url":"ws://127.0.0.1:1"}}"#),
            text("{not json"),
            text(r#"{"op":0,"s":2,"t":"MESSAGE_CREATE","d":{"id":"#),
            // Discord's layout, read without walking `d`: checked before it is yielded.
            text(r#"{"t":"MESSAGE_CREATE","s":2,"op":0,"d":{"id":}"#),
            text(r#"{"t":"MESSAGE_CREATE","s":2,"op":0,"d":{},"t":"X"}"#),
            text(r#"{"op":0,"d":{}}"#),
            text(r#"{"op":0,"s":"two","t":"X","d":{}}"#),
            text(r#"{"op":10,"d":{}}"#),
            text(r#"{"op":300}"#),
            text(r#"{"op":42,"d":{}}"#),
            text(""),
            text("null"),
            WsMessage::binary(b"\xff\xfe\x00 not utf-8".as_slice()),
            text(&format!("{}{}", "[".repeat(10_000), "]".repeat(10_000))),
            text(r#"{"t":"TYPING_START","s":3,"op":0,"d":{"marker":3},"x":1}"#),
        ])
        .unwrap();
    let mut events = drive(shard_config(&url, "t", Compression::None));
    assert_eq!(next(&mut events).await, Ev::Connected);
    assert!(matches!(next(&mut events).await, Ev::Dispatch(1, name, _) if name == "READY"));
    assert_eq!(
        next(&mut events).await,
        Ev::Dispatch(3, "TYPING_START".into(), json!({"marker": 3})),
        "every malformed frame was skipped, the connection kept"
    );
}

/// Corrupt compressed frames: the shard drops the connection (resumable) and resumes on the next;
/// nothing after is lost.
#[tokio::test]
async fn corrupt_compressed_frames_reconnect_and_resume() {
    trace();
    for compression in [Compression::ZlibStream, Compression::ZstdStream] {
        let (url, frames) = frame_server().await;
        // The first connection: corrupt bytes only (no HELLO): the shard must not hang on them.
        frames
            .send(vec![WsMessage::binary(
                b"\x78\x9c garbage that is not deflate nor zstd \x00\x00\xff\xff".as_slice(),
            )])
            .unwrap();
        let mut events = drive(shard_config(&url, "t", compression));
        assert_eq!(
            next(&mut events).await,
            Ev::Disconnected(None, false),
            "{compression:?}"
        );
        // The second: plain text frames still work when the transport is compressed.
        frames
            .send(vec![
                WsMessage::text(r#"{"op":10,"d":{"heartbeat_interval":45000}}"#),
                WsMessage::text(r#"{"op":0,"s":1,"t":"TYPING_START","d":{}}"#),
            ])
            .unwrap();
        assert_eq!(next(&mut events).await, Ev::Connected, "{compression:?}");
        assert!(
            matches!(next(&mut events).await, Ev::Dispatch(1, name, _) if name == "TYPING_START"),
            "{compression:?}"
        );
    }
}

/// An oversize frame (over `max_decompressed_frame`) drops the connection, the shard resumes, and
/// the dispatches after it arrive. What happens to the oversize dispatch itself is the question:
/// the session replays it on RESUME (its sequence number was never seen), so it is oversize again.
#[tokio::test]
async fn oversize_frame_resumes_and_nothing_after_is_lost() {
    trace();
    let discord = local(LocalConfig::default()).await;
    let mut config = shard_config(
        &discord.gateway_url(),
        &discord.token(),
        Compression::ZlibStream,
    );
    config.max_decompressed_frame = 64 * 1024;
    let mut events = drive(config);
    assert_eq!(next(&mut events).await, Ev::Connected);
    assert!(matches!(next(&mut events).await, Ev::Dispatch(_, name, _) if name == "READY"));
    let typing = |n: u64| json!({"marker": n});
    for n in 0..3 {
        discord
            .dispatch(0, "TYPING_START", typing(n))
            .await
            .unwrap();
    }
    let big = json!({"pad": "x".repeat(1 << 20)});
    discord.dispatch(0, "OVERSIZE_EVENT", big).await.unwrap();
    for n in 3..6 {
        discord
            .dispatch(0, "TYPING_START", typing(n))
            .await
            .unwrap();
    }
    let mut markers = Vec::new();
    let mut disconnects = Vec::new();
    let mut resumed = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while markers.len() < 6 && Instant::now() < deadline {
        let Ok(Some(event)) = timeout(Duration::from_secs(20), events.recv()).await else {
            break;
        };
        match event {
            Ev::Dispatch(_, name, d) if name == "TYPING_START" => {
                markers.push(d["marker"].as_u64().unwrap());
            }
            Ev::Disconnected(code, resume) => disconnects.push((code, resume)),
            Ev::Resumed => resumed += 1,
            Ev::Error(kind) => panic!("the shard stopped: {kind:?}"),
            _ => {}
        }
    }
    eprintln!(
        "markers {markers:?}, disconnects {disconnects:?}, resumed {resumed}, resumes sent {}",
        discord.resumes().len()
    );
    assert_eq!(
        markers,
        [0, 1, 2, 3, 4, 5],
        "nothing after the oversize frame is lost"
    );
    assert!(
        !disconnects.is_empty() && disconnects.iter().all(|d| d.1),
        "{disconnects:?}"
    );
    assert!(
        resumed >= 1 || !discord.resumes().is_empty(),
        "the shard resumed (RESUMED may come after the replayed markers)"
    );
}

/// The same through `Client` with the transport uncompressed: a text frame over the WebSocket
/// message limit (1 MiB at least) breaks the connection; afterwards the bot must still serve.
#[tokio::test]
async fn oversize_text_frame_through_the_client() {
    trace();
    let discord = local(LocalConfig::default()).await;
    let tally = Tally::default();
    let _bot = Bot::spawn(
        builder(&discord)
            .compression(Compression::None)
            .add_intents(Intents::MESSAGE_CONTENT)
            .consumer_with(tally.clone(), ConsumerOptions::tasking(Tasking::Inline)),
    );
    assert!(discord.wait_for_ready(0, 1, WAIT).await);
    // 64 MiB is the default `max_decompressed_frame`; the client has no setter for it.
    let big = json!({"pad": "x".repeat(65 << 20)});
    discord.dispatch(0, "OVERSIZE_EVENT", big).await.unwrap();
    let guild = discord.guild_ids()[0];
    let channel = discord.channel_ids(guild)[0];
    discord.user_message(channel, "alice", "!ping").await;
    wait_until("the !ping after the oversize frame", || {
        lock(&tally.typed).iter().any(|c| c == "!ping")
    })
    .await;
}

/// A wrong token: REST answers 401 and `Client::run` ends with that typed error, before any shard.
#[tokio::test]
async fn invalid_token_is_a_typed_error() {
    trace();
    let discord = local(LocalConfig::default()).await;
    let started = Instant::now();
    let result = Client::builder("not-the-token")
        .gateway_url(discord.gateway_url())
        .api_base(discord.api_base())
        .consumer(Tally::default())
        .run();
    let result = timeout(WAIT, result).await.expect("run ends");
    match result {
        Err(ClientError::GatewayInfo(error)) => {
            assert!(
                matches!(error.kind(), HttpErrorKind::Status { status: 401, .. }),
                "{error:?}"
            );
            assert_eq!(error.status_code(), Some(401));
            let text = error.to_string();
            assert!(text.contains("401"), "{text}");
            assert!(!text.contains("not-the-token"), "{text}");
        }
        other => panic!("expected a 401, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5), "no retry storm");
    assert!(discord.identifies().is_empty());
    assert_eq!(discord.connections(), 0);

    // At the gateway: IDENTIFY with a wrong token closes 4004, fatal, no reconnect.
    let mut events = drive(shard_config(
        &discord.gateway_url(),
        "not-the-token",
        Compression::ZlibStream,
    ));
    assert_eq!(next(&mut events).await, Ev::Connected);
    assert_eq!(
        next(&mut events).await,
        Ev::Error(GatewayErrorKind::AuthenticationFailed)
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(discord.connections(), 0, "no reconnect after 4004");

    // The server still serves a bot with the right token.
    assert_still_serves(&discord, Intents::MESSAGE_CONTENT, "!ping").await;
}

/// Starts a correct bot on `discord` and checks that a user's message reaches it.
async fn assert_still_serves(discord: &LocalDiscord, intents: Intents, content: &str) {
    let tally = Tally::default();
    let _bot = Bot::spawn(
        builder(discord)
            .add_intents(intents)
            .consumer_with(tally.clone(), ConsumerOptions::tasking(Tasking::Inline)),
    );
    let ready = discord.identifies().len() + 1;
    assert!(discord.wait_for_identifies(ready, WAIT).await);
    let guild = discord.guild_ids()[0];
    let channel = discord.channel_ids(guild)[0];
    // The session may not be ready yet: retry the message until one arrives.
    let deadline = Instant::now() + WAIT;
    loop {
        discord.user_message(channel, "alice", content).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        if !lock(&tally.typed).is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the bot does not serve");
    }
}

/// A bot asking a privileged intent the application lacks: 4014, `DisallowedIntents`, at once.
#[tokio::test]
async fn disallowed_intent_is_a_typed_error() {
    trace();
    let discord = local(LocalConfig {
        privileged_intents: false,
        ..LocalConfig::default()
    })
    .await;
    let mut bot = Bot::spawn(
        builder(&discord)
            .add_intents(Intents::GUILD_MEMBERS)
            .consumer(Tally::default()),
    );
    match bot.finished(WAIT).await {
        Some(Err(ClientError::Gateway { shard, source })) => {
            assert_eq!(shard, ShardId::new(0, 1));
            assert_eq!(source.kind(), &GatewayErrorKind::DisallowedIntents);
            let text = ClientError::Gateway { shard, source }.to_string();
            assert!(text.to_lowercase().contains("intent"), "{text}");
        }
        other => panic!("expected DisallowedIntents, got {other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(discord.connections(), 0, "no reconnect after 4014");
    // Without the privileged intents the same application serves (content is empty without
    // MESSAGE_CONTENT: the message still arrives).
    assert_still_serves(&discord, Intents::empty(), "!ping").await;
}

// Regression inputs found by the fuzz targets (none so far: see fuzz/README in the report).

/// Payloads that once looked dangerous to the lenient parser: deep nesting, huge numbers, duplicate
/// keys, lone surrogates. `Event::from_dispatch` never panics.
#[test]
fn from_dispatch_survives_odd_json() {
    use serde_json::value::RawValue;
    let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_objects = format!("{}1{}", r#"{"a":"#.repeat(50_000), "}".repeat(50_000));
    let inputs = [
        deep.as_str(),
        deep_objects.as_str(),
        r#"{"id":"1","id":"2","channel_id":"3","author":{}}"#,
        r#"{"id":1e999,"channel_id":-0,"author":{"id":"18446744073709551616"}}"#,
        r#"{"id":"1","channel_id":"2","content":"\ud800","author":{"id":"3","username":"\udfff"}}"#,
        r#"{"roles":[],"joined_at":5,"user":{"id":"1","username":"a"}}"#,
        r#"{"permissions":"x","position":{},"name":[]}"#,
        r#"{"verification_level":0,"roles":[{"permissions":"8","position":1,"name":"r"}]}"#,
    ];
    for kind in EventKind::ALL {
        for input in inputs {
            let Ok(raw) = RawValue::from_string(input.to_owned()) else {
                continue;
            };
            let event = Event::from_dispatch(kind.name(), &raw);
            let _ = event.name();
        }
    }
}
