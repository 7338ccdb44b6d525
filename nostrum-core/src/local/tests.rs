//! Tests of the local Discord with a raw websocket client, reqwest and twilight-model.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_websockets::{ClientBuilder, MaybeTlsStream, Message, WebSocketStream};
use twilight_model::gateway::payload::incoming::{GuildCreate, MemberChunk, MessageCreate, Ready};

use super::script::{self, NewMessage, World};
use super::{Fault, LocalConfig, LocalDiscord};

const WAIT: Duration = Duration::from_secs(5);
/// GUILDS | GUILD_MESSAGES | MESSAGE_CONTENT.
const INTENTS: u64 = 1 | (1 << 9) | (1 << 15);

enum Inflater {
    Plain,
    Zlib(flate2::Decompress),
    Zstd(zstd::stream::raw::Decoder<'static>),
}

impl Inflater {
    fn inflate(&mut self, input: &[u8]) -> Vec<u8> {
        use zstd::stream::raw::{InBuffer, Operation, OutBuffer};
        let mut out = Vec::new();
        match self {
            Self::Plain => out.extend_from_slice(input),
            Self::Zlib(d) => {
                assert!(
                    input.ends_with(&[0, 0, 0xff, 0xff]),
                    "zlib message without sync flush"
                );
                let mut pos = 0;
                loop {
                    out.reserve(input.len() * 4 + 4096);
                    let before = d.total_in();
                    d.decompress_vec(&input[pos..], &mut out, flate2::FlushDecompress::Sync)
                        .unwrap();
                    pos += (d.total_in() - before) as usize;
                    if pos >= input.len() && out.len() < out.capacity() {
                        break;
                    }
                }
            }
            Self::Zstd(d) => {
                let mut src = InBuffer::around(input);
                loop {
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut dst = OutBuffer::around(&mut buf[..]);
                    d.run(&mut src, &mut dst).unwrap();
                    let n = dst.pos();
                    out.extend_from_slice(&buf[..n]);
                    if src.pos() >= input.len() && n < buf.len() {
                        break;
                    }
                }
            }
        }
        out
    }
}

struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    inflater: Inflater,
}

impl Client {
    async fn connect(discord: &LocalDiscord, compress: Option<&str>) -> Self {
        let mut url = format!("{}/?v=10&encoding=json", discord.gateway_url());
        if let Some(c) = compress {
            url.push_str("&compress=");
            url.push_str(c);
        }
        let (ws, _) = ClientBuilder::new()
            .uri(&url)
            .unwrap()
            .connect()
            .await
            .unwrap();
        let inflater = match compress {
            None => Inflater::Plain,
            Some("zlib-stream") => Inflater::Zlib(flate2::Decompress::new(true)),
            Some(_) => Inflater::Zstd(zstd::stream::raw::Decoder::new().unwrap()),
        };
        Self { ws, inflater }
    }

    /// The next payload, or Err(close code) when the server closed.
    async fn recv(&mut self) -> Result<Value, Option<u16>> {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("timed out waiting for a frame");
            match msg {
                Some(Ok(m)) if m.is_text() => {
                    assert!(
                        matches!(self.inflater, Inflater::Plain),
                        "text frame on a compressed connection"
                    );
                    return Ok(serde_json::from_str(m.as_text().unwrap()).unwrap());
                }
                Some(Ok(m)) if m.is_binary() => {
                    let payload = m.into_payload();
                    return Ok(serde_json::from_slice(&self.inflater.inflate(&payload)).unwrap());
                }
                Some(Ok(m)) if m.is_close() => {
                    let code = (!m.as_payload().is_empty())
                        .then(|| m.as_close().map(|(code, _)| u16::from(code)))
                        .flatten();
                    return Err(code);
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Err(None),
            }
        }
    }

    async fn send(&mut self, v: Value) {
        self.ws.send(Message::text(v.to_string())).await.unwrap();
    }

    async fn dispatch(&mut self) -> (String, u64, Value) {
        loop {
            let p = self.recv().await.expect("connection closed");
            if p["op"] == 0 {
                return (
                    p["t"].as_str().unwrap().to_owned(),
                    p["s"].as_u64().unwrap(),
                    p["d"].clone(),
                );
            }
        }
    }

    async fn identify(&mut self, token: &str, shard: [u32; 2], intents: u64) {
        let hello = self.recv().await.unwrap();
        assert_eq!(hello["op"], 10);
        assert!(hello["d"]["heartbeat_interval"].as_u64().is_some());
        let d = json!({"token": token, "intents": intents, "shard": shard,
            "properties": {"os": "linux", "browser": "test", "device": "test"}});
        self.send(json!({"op": 2, "d": d})).await;
    }
}

fn example_message(world: &World, guild_id: Option<u64>) -> Value {
    let mentions = vec![world.bot.clone()];
    script::message_json(&NewMessage {
        id: 1_234_567_890_123_456_789,
        channel_id: world.guilds[0].channel_ids[0],
        guild_id,
        author: &world.users[0],
        content: "hi <@!1>",
        mentions: &mentions,
        body: Some(&json!({"embeds": [{"title": "t"}], "nonce": "n", "tts": false})),
    })
}

#[test]
fn payloads_parse_with_twilight() {
    let world = World::new(3);
    let ready = script::ready_json(&world, "abc", [0, 1], "ws://x", true);
    let ready: Ready = serde_json::from_value(ready).unwrap();
    assert_eq!(ready.guilds.len(), 3);
    assert_eq!(ready.user.id.get(), world.bot.id);

    let guild = script::guild_create_json(&world, &world.guilds[1]);
    match serde_json::from_value::<GuildCreate>(guild).unwrap() {
        GuildCreate::Available(g) => {
            assert_eq!(g.id.get(), world.guilds[1].id);
            assert_eq!(g.channels.len(), 1);
            assert_eq!(g.channels[0].guild_id.map(|id| id.get()), Some(g.id.get()));
            assert_eq!(g.roles[0].id.get(), g.id.get());
            assert_eq!(g.members.len(), 4);
        }
        GuildCreate::Unavailable(_) => panic!("parsed as unavailable"),
    }

    let created: MessageCreate =
        serde_json::from_value(example_message(&world, Some(world.guilds[0].id))).unwrap();
    assert!(created.member.is_some() && created.guild_id.is_some());
    assert_eq!(created.mentions.len(), 1);
    assert_eq!(created.embeds[0].kind, "rich");
    let rest: twilight_model::channel::Message =
        serde_json::from_value(example_message(&world, None)).unwrap();
    assert!(rest.guild_id.is_none());

    let me: twilight_model::user::CurrentUser =
        serde_json::from_value(script::current_user_json(&world.bot)).unwrap();
    assert!(me.bot);
    let chunks = script::member_chunks(
        &world,
        &world.guilds[0],
        &json!({"guild_id": "1", "query": "", "limit": 0, "nonce": "x"}),
    );
    assert_eq!(chunks.len(), 2);
    for chunk in chunks {
        let chunk: MemberChunk = serde_json::from_value(chunk).unwrap();
        assert_eq!(chunk.chunk_count, 2);
        assert_eq!(chunk.nonce.as_deref(), Some("x"));
    }
}

#[test]
fn helpers() {
    assert_eq!(script::iso8601(0), "1970-01-01T00:00:00.000000+00:00");
    assert_eq!(
        script::iso8601(1_709_251_199_999),
        "2024-02-29T23:59:59.999000+00:00"
    );
    assert_eq!(script::mentioned_ids("<@1> <@!2> <@1> <@x>"), vec![1, 2]);
    let world = World::new(4);
    let shards: Vec<u32> = world
        .guilds
        .iter()
        .map(|g| script::guild_shard(g.id, 2))
        .collect();
    assert_eq!(shards, vec![0, 1, 0, 1]);
}

async fn handshake(compress: Option<&str>) {
    let discord = LocalDiscord::start(LocalConfig {
        guilds: 2,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut client = Client::connect(&discord, compress).await;
    client.identify(&discord.token(), [0, 1], INTENTS).await;
    let (t, s, d) = client.dispatch().await;
    assert_eq!((t.as_str(), s), ("READY", 1));
    let ready: Ready = serde_json::from_value(d).unwrap();
    assert_eq!(ready.guilds.len(), 2);
    for expected in 2..4 {
        let (t, s, d) = client.dispatch().await;
        assert_eq!((t.as_str(), s), ("GUILD_CREATE", expected));
        assert!(matches!(
            serde_json::from_value::<GuildCreate>(d).unwrap(),
            GuildCreate::Available(_)
        ));
    }
    client.send(json!({"op": 1, "d": 3})).await;
    assert_eq!(client.recv().await.unwrap()["op"], 11);
    assert!(discord.wait_for_ready(0, 1, WAIT).await);
    let identify = &discord.identifies()[0];
    assert_eq!(identify.compress.as_deref(), compress);
    assert_eq!(identify.intents, INTENTS);
    assert_eq!(discord.connections(), 1);

    let channel = discord.channel_ids(discord.guild_ids()[1])[0];
    let id = discord.user_message(channel, "bob", "hello").await;
    let (t, _, d) = client.dispatch().await;
    assert_eq!(t, "MESSAGE_CREATE");
    let msg: MessageCreate = serde_json::from_value(d).unwrap();
    assert_eq!(
        (msg.id.get(), msg.content.as_str(), msg.author.name.as_str()),
        (id, "hello", "bob")
    );
}

#[tokio::test]
async fn handshake_plain() {
    handshake(None).await;
}

#[tokio::test]
async fn handshake_zlib_stream() {
    handshake(Some("zlib-stream")).await;
}

#[tokio::test]
async fn handshake_zstd_stream() {
    handshake(Some("zstd-stream")).await;
}

#[tokio::test]
async fn resume_replays_missed_dispatches() {
    let discord = LocalDiscord::start(LocalConfig::default()).await.unwrap();
    let mut client = Client::connect(&discord, None).await;
    client.identify(&discord.token(), [0, 1], INTENTS).await;
    let (_, _, ready) = client.dispatch().await;
    let (_, last_seen, _) = client.dispatch().await; // GUILD_CREATE
    discord.inject(0, Fault::DropSocket).await;
    assert!(discord.wait_for_connections(0, WAIT).await);
    assert_eq!(client.recv().await, Err(None));

    let a = discord
        .dispatch(0, "TYPING_START", json!({"n": 1}))
        .await
        .unwrap();
    let b = discord
        .dispatch(0, "TYPING_START", json!({"n": 2}))
        .await
        .unwrap();
    assert_eq!((a, b), (last_seen + 1, last_seen + 2));

    let mut client = Client::connect(&discord, Some("zlib-stream")).await;
    assert_eq!(client.recv().await.unwrap()["op"], 10);
    let session_id = ready["session_id"].as_str().unwrap();
    client.send(json!({"op": 6, "d": {"token": discord.token(), "session_id": session_id, "seq": last_seen}})).await;
    assert_eq!(
        client.dispatch().await,
        ("TYPING_START".into(), a, json!({"n": 1}))
    );
    assert_eq!(
        client.dispatch().await,
        ("TYPING_START".into(), b, json!({"n": 2}))
    );
    let (t, s, _) = client.dispatch().await;
    assert_eq!((t.as_str(), s), ("RESUMED", b + 1));
    assert!(discord.wait_for_resumed(0, 1, WAIT).await);
    assert_eq!(discord.resumes()[0].seq, last_seen);

    // An unknown session is answered with op 9, d = false.
    let mut other = Client::connect(&discord, None).await;
    assert_eq!(other.recv().await.unwrap()["op"], 10);
    other
        .send(json!({"op": 6, "d": {"token": discord.token(), "session_id": "nope", "seq": 1}}))
        .await;
    assert_eq!(
        other.recv().await.unwrap(),
        json!({"op": 9, "s": null, "t": null, "d": false})
    );
}

#[tokio::test]
async fn close_codes() {
    let config = LocalConfig {
        privileged_intents: false,
        ..Default::default()
    };
    let discord = LocalDiscord::start(config).await.unwrap();
    let cases: [(&str, [u32; 2], u64, u16); 4] = [
        ("wrong-token", [0, 1], 1, 4004),
        (&discord.token(), [1, 1], 1, 4010),
        (&discord.token(), [0, 1], 1 << 30, 4013),
        (&discord.token(), [0, 1], INTENTS, 4014),
    ];
    for (token, shard, intents, code) in cases {
        let mut client = Client::connect(&discord, None).await;
        client.identify(token, shard, intents).await;
        assert_eq!(client.recv().await, Err(Some(code)));
    }
    let mut client = Client::connect(&discord, None).await;
    assert_eq!(client.recv().await.unwrap()["op"], 10);
    client.send(json!({"op": 3, "d": {}})).await;
    assert_eq!(client.recv().await, Err(Some(4003)));
    let mut client = Client::connect(&discord, None).await;
    assert_eq!(client.recv().await.unwrap()["op"], 10);
    client.ws.send(Message::text("{not json")).await.unwrap();
    assert_eq!(client.recv().await, Err(Some(4002)));
    let mut client = Client::connect(&discord, None).await;
    client.identify(&discord.token(), [0, 1], 1).await;
    client.dispatch().await;
    client.send(json!({"op": 99, "d": null})).await;
    loop {
        match client.recv().await {
            Ok(_) => {}
            Err(code) => break assert_eq!(code, Some(4001)),
        }
    }
}

#[tokio::test]
async fn faults_and_member_chunks() {
    let discord = LocalDiscord::start(LocalConfig::default()).await.unwrap();
    let mut client = Client::connect(&discord, None).await;
    client.identify(&discord.token(), [0, 1], INTENTS | 2).await;
    client.dispatch().await;
    client.dispatch().await;
    let guild = discord.guild_ids()[0];
    client.send(json!({"op": 8, "d": {"guild_id": guild.to_string(), "query": "", "limit": 0, "nonce": "n1"}})).await;
    for index in 0..2 {
        let (t, _, d) = client.dispatch().await;
        assert_eq!(
            (t.as_str(), d["chunk_index"].as_u64(), d["nonce"].as_str()),
            ("GUILD_MEMBERS_CHUNK", Some(index), Some("n1"))
        );
    }
    discord.inject(0, Fault::ServerHeartbeat).await;
    assert_eq!(client.recv().await.unwrap()["op"], 1);
    discord.inject(0, Fault::StopHeartbeatAck).await;
    client.send(json!({"op": 1, "d": 4})).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while discord.heartbeats().last().and_then(|h| h.seq) != Some(4) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "heartbeat not recorded"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    discord.inject(0, Fault::Reconnect).await;
    assert_eq!(
        client.recv().await.unwrap()["op"],
        7,
        "no ACK after StopHeartbeatAck"
    );
    discord.inject(0, Fault::Close(4009)).await;
    assert_eq!(client.recv().await, Err(Some(4009)));
    assert_eq!(
        discord.dispatch(0, "TYPING_START", json!({})).await,
        None,
        "4009 forgets the session"
    );
}

#[tokio::test]
async fn rest_create_message_is_recorded_answered_and_echoed() {
    let discord = LocalDiscord::start(LocalConfig::default()).await.unwrap();
    let mut client = Client::connect(&discord, None).await;
    client.identify(&discord.token(), [0, 1], INTENTS).await;
    client.dispatch().await;
    client.dispatch().await;
    let mut conversation = discord.conversation();
    let channel = discord.channel_ids(discord.guild_ids()[0])[0];
    let http = reqwest::Client::new();
    let url = format!("{}/api/v10/channels/{channel}/messages", discord.api_base());
    let auth = format!("Bot {}", discord.token());
    let resp = http
        .post(&url)
        .header("Authorization", &auth)
        .json(&json!({"content": "pong"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-ratelimit-limit"], "5");
    assert_eq!(resp.headers()["x-ratelimit-remaining"], "4");
    let msg: twilight_model::channel::Message = resp.json().await.unwrap();
    assert_eq!(
        (msg.content.as_str(), msg.author.id.get()),
        ("pong", discord.bot_user_id())
    );

    let recorded = discord
        .wait_for_request(|r| r.method == "POST", WAIT)
        .await
        .unwrap();
    assert_eq!(
        recorded.path,
        format!("/api/v10/channels/{channel}/messages")
    );
    assert_eq!(recorded.body, Some(json!({"content": "pong"})));
    assert!(
        recorded
            .headers
            .contains(&("authorization".into(), "<redacted>".into()))
    );
    let line = conversation.recv().await.unwrap();
    assert!(line.from_bot && line.content == "pong" && line.message_id == msg.id.get());
    let (t, _, d) = client.dispatch().await;
    assert_eq!(
        (t.as_str(), d["id"].as_str(), d["guild_id"].is_string()),
        ("MESSAGE_CREATE", Some(&*msg.id.to_string()), true)
    );

    let status = |r: reqwest::Response| r.status().as_u16();
    let unknown = format!("{}/api/v10/channels/1/messages", discord.api_base());
    let r = http
        .post(&unknown)
        .header("Authorization", &auth)
        .json(&json!({"content": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (
            r.status().as_u16(),
            r.json::<Value>().await.unwrap()["code"].as_u64()
        ),
        (404, Some(10003))
    );
    let r = http
        .post(&url)
        .header("Authorization", "Bot nope")
        .json(&json!({"content": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"message": "401: Unauthorized", "code": 0})
    );
    let r = http
        .get(format!("{}/api/v10/nothing", discord.api_base()))
        .send()
        .await
        .unwrap();
    assert_eq!(status(r), 404);
    let r = http
        .get(format!("{}/api/v10/gateway/bot", discord.api_base()))
        .header("Authorization", &auth)
        .send()
        .await
        .unwrap();
    let bot: Value = r.json().await.unwrap();
    assert_eq!(
        (
            bot["url"].as_str(),
            bot["session_start_limit"]["remaining"].as_u64()
        ),
        (Some(&*discord.gateway_url()), Some(999))
    );
    // The create-message bucket allows 5 per window; the sixth is a 429.
    let mut codes = Vec::new();
    for _ in 0..5 {
        let r = http
            .post(&url)
            .header("Authorization", &auth)
            .json(&json!({"content": "again"}))
            .send()
            .await
            .unwrap();
        codes.push(status(r));
    }
    assert_eq!(codes, [200, 200, 200, 200, 429]);
}

#[tokio::test]
async fn messages_go_to_the_owning_shard_and_obey_intents() {
    let config = LocalConfig {
        shards: 2,
        guilds: 2,
        ..Default::default()
    };
    let discord = LocalDiscord::start(config).await.unwrap();
    let guilds = discord.guild_ids();
    // Shard 0 without MESSAGE_CONTENT, shard 1 with it.
    let mut shard0 = Client::connect(&discord, None).await;
    shard0
        .identify(&discord.token(), [0, 2], 1 | (1 << 9))
        .await;
    let mut shard1 = Client::connect(&discord, Some("zstd-stream")).await;
    shard1.identify(&discord.token(), [1, 2], INTENTS).await;
    for (client, guild) in [(&mut shard0, guilds[0]), (&mut shard1, guilds[1])] {
        let (_, _, ready) = client.dispatch().await;
        assert_eq!(ready["guilds"][0]["id"], guild.to_string());
        let (t, _, d) = client.dispatch().await;
        assert_eq!(
            (t.as_str(), d["id"].as_str()),
            ("GUILD_CREATE", Some(&*guild.to_string()))
        );
    }
    assert_eq!(discord.shard_of(guilds[1]), 1);
    let (c0, c1) = (
        discord.channel_ids(guilds[0])[0],
        discord.channel_ids(guilds[1])[0],
    );
    discord.user_message(c1, "carol", "secret").await;
    let (_, _, d) = shard1.dispatch().await;
    assert_eq!(
        (d["content"].as_str(), d["guild_id"].as_str()),
        (Some("secret"), Some(&*guilds[1].to_string()))
    );
    discord.user_message(c0, "carol", "hidden").await;
    let mention = format!("<@{}> hi", discord.bot_user_id());
    discord.user_message(c0, "dave", &mention).await;
    let (_, _, d) = shard0.dispatch().await;
    assert_eq!(d["content"], "", "no MESSAGE_CONTENT intent");
    let (_, _, d) = shard0.dispatch().await;
    assert_eq!(
        (d["content"].as_str(), d["author"]["username"].as_str()),
        (Some(&*mention), Some("dave"))
    );
    assert_eq!(d["mentions"][0]["id"], discord.bot_user_id().to_string());
}
