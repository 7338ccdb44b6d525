//! End-to-end tests of the gateway path: a bot (`Client::run`) against the local Discord, one test
//! per path (identify, resume, zombie, op 7, op 9, close codes, compression, shards, the ping bot).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{
    Bot, Recorder, Seen, WAIT, builder, client, expect_typing_in_order, ready_bot, send_typing,
    trace,
};
use nostrum_core::ClientError;
use nostrum_core::gateway::{Compression, GatewayConfig, GatewayErrorKind, Shard, ShardId};
use nostrum_core::http::HttpErrorKind;
use nostrum_core::local::{Fault, LocalConfig, LocalDiscord};
use nostrum_core::prelude::*;
use tokio::time::Instant;

async fn local(config: LocalConfig) -> LocalDiscord {
    LocalDiscord::start(config)
        .await
        .expect("the local Discord starts")
}

fn fast_heartbeats() -> LocalConfig {
    LocalConfig {
        heartbeat_interval: Duration::from_millis(300),
        ..LocalConfig::default()
    }
}

/// After a reconnect, new dispatches still reach the consumer.
async fn events_keep_flowing(discord: &LocalDiscord, recorder: &Recorder, marker: u64) {
    let before = recorder.count("TYPING_START");
    let seq = discord
        .dispatch(0, "TYPING_START", common::typing(discord, marker))
        .await;
    assert!(seq.is_some(), "no session after the reconnect");
    assert!(
        recorder
            .wait_for(WAIT, |seen| seen
                .iter()
                .any(|s| s.name == "TYPING_START" && s.id == marker))
            .await,
        "TYPING_START {marker} did not arrive after the reconnect: {:?}",
        recorder.seen()
    );
    assert_eq!(recorder.count("TYPING_START"), before + 1);
}

// 1.

#[tokio::test]
async fn identify_and_ready() {
    trace();
    let discord = local(LocalConfig {
        guilds: 3,
        ..LocalConfig::default()
    })
    .await;
    let recorder = Recorder::default();
    let _bot = ready_bot(
        &discord,
        client(&discord, &recorder).add_intents(Intents::GUILD_MEMBERS),
        &recorder,
    )
    .await;
    assert!(recorder.wait_count("GUILD_CREATE", 3, WAIT).await);

    let seen = recorder.seen();
    let ready = &recorder.named("READY")[0];
    assert_eq!(ready.shard, 0);
    assert_eq!(ready.id, 3, "READY lists the 3 guilds (unavailable)");
    assert_eq!(ready.text.len(), 32, "session id: {:?}", ready.text);
    // SHARD_CONNECTED, READY, then the guilds.
    let names: Vec<&str> = seen.iter().map(|s| s.name).collect();
    assert_eq!(
        names,
        [
            "SHARD_CONNECTED",
            "READY",
            "GUILD_CREATE",
            "GUILD_CREATE",
            "GUILD_CREATE"
        ]
    );
    let guilds: BTreeSet<u64> = recorder
        .named("GUILD_CREATE")
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(guilds, discord.guild_ids().into_iter().collect());

    let identifies = discord.identifies();
    assert_eq!(identifies.len(), 1, "{identifies:?}");
    let identify = &identifies[0];
    assert_eq!(identify.shard, [0, 1]);
    // The union of the handled events' intents, plus the added ones, and nothing else.
    let handled = EventKind::Ready.intents()
        | EventKind::GuildCreate.intents()
        | EventKind::TypingStart.intents()
        | EventKind::MessageCreate.intents()
        | EventKind::ShardConnected.intents()
        | EventKind::ShardDisconnected.intents()
        | EventKind::ShardResumed.intents();
    assert_eq!(handled, <Recorder as Consumer>::INTENTS);
    let expected = Intents::GUILDS
        | Intents::GUILD_MESSAGE_TYPING
        | Intents::DIRECT_MESSAGE_TYPING
        | Intents::GUILD_MESSAGES
        | Intents::DIRECT_MESSAGES
        | Intents::GUILD_MEMBERS;
    assert_eq!(handled | Intents::GUILD_MEMBERS, expected);
    assert_eq!(
        Intents::from_bits_retain(identify.intents),
        expected,
        "IDENTIFY intents {:#x}",
        identify.intents
    );
    assert_eq!(identify.compress.as_deref(), Some("zlib-stream"));
    assert_eq!(identify.large_threshold, Some(50));
    assert!(discord.resumes().is_empty());
    assert_eq!(discord.connections(), 1);
}

// 2.

#[tokio::test]
async fn resume_after_dropped_socket_loses_nothing() {
    trace();
    let discord = local(LocalConfig::default()).await;
    let recorder = Recorder::default();
    let _bot = ready_bot(&discord, client(&discord, &recorder), &recorder).await;
    let session = recorder.named("READY")[0].text.clone();

    send_typing(&discord, 0..100).await;
    discord.inject(0, Fault::DropSocket).await;
    // The socket is gone: these are buffered in the session and replayed on RESUME.
    send_typing(&discord, 100..200).await;
    assert!(discord.wait_for_resumed(0, 1, WAIT).await, "no RESUMED");
    send_typing(&discord, 200..250).await;
    expect_typing_in_order(&recorder, 250).await;

    assert_eq!(discord.identifies().len(), 1, "no fresh IDENTIFY");
    let resumes = discord.resumes();
    assert_eq!(resumes.len(), 1, "{resumes:?}");
    assert_eq!(resumes[0].shard, [0, 1]);
    assert_eq!(resumes[0].session_id, session);
    // READY and GUILD_CREATE are 1 and 2; the last TYPING_START before the drop is 102.
    assert!(resumes[0].seq <= 102, "resumed from {}", resumes[0].seq);
    assert!(resumes[0].seq >= 2, "resumed from {}", resumes[0].seq);

    let disconnected = recorder.named("SHARD_DISCONNECTED");
    assert_eq!(disconnected.len(), 1, "{disconnected:?}");
    assert_eq!(disconnected[0].text, "will_resume=true");
    assert_eq!(recorder.count("SHARD_RESUMED"), 1);
    assert_eq!(recorder.count("READY"), 1);
}

// 3.

#[tokio::test]
async fn zombie_connection_is_detected() {
    trace();
    let discord = local(fast_heartbeats()).await;
    let recorder = Recorder::default();
    let _bot = ready_bot(&discord, client(&discord, &recorder), &recorder).await;

    let injected = Instant::now();
    discord.inject(0, Fault::StopHeartbeatAck).await;
    assert!(discord.wait_for_resumed(0, 1, WAIT).await, "no RESUMED");
    let took = injected.elapsed();
    eprintln!("zombie detected and resumed {took:?} after the ACKs stopped");
    // One heartbeat within an interval, and the next timer finds it unacknowledged: under 2
    // intervals, well before the server's own timeout (1.5 intervals + 1 s after the last beat).
    assert!(
        took < Duration::from_millis(1_000),
        "zombie detected after {took:?}"
    );
    assert_eq!(discord.resumes().len(), 1);
    assert_eq!(discord.identifies().len(), 1);
    let disconnected = recorder.named("SHARD_DISCONNECTED");
    assert_eq!(disconnected.len(), 1, "{disconnected:?}");
    assert_eq!(disconnected[0].text, "will_resume=true");
    events_keep_flowing(&discord, &recorder, 7).await;

    // The new connection is acknowledged: heartbeats go on without another reconnect.
    let beats = discord.heartbeats().len();
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(discord.heartbeats().len() >= beats + 2);
    assert_eq!(discord.resumes().len(), 1);
    assert_eq!(discord.connections(), 1);
}

// 4.

#[tokio::test]
async fn op7_reconnect_resumes() {
    trace();
    let discord = local(LocalConfig::default()).await;
    let recorder = Recorder::default();
    let _bot = ready_bot(&discord, client(&discord, &recorder), &recorder).await;
    send_typing(&discord, 0..10).await;
    discord.inject(0, Fault::Reconnect).await;
    send_typing(&discord, 10..20).await;
    assert!(discord.wait_for_resumed(0, 1, WAIT).await, "no RESUMED");
    expect_typing_in_order(&recorder, 20).await;
    assert_eq!(discord.resumes().len(), 1);
    assert_eq!(discord.identifies().len(), 1);
    assert_eq!(recorder.count("SHARD_RESUMED"), 1);
    events_keep_flowing(&discord, &recorder, 1_000).await;
}

// 5.

#[tokio::test]
async fn op9_true_resumes() {
    trace();
    let discord = local(LocalConfig::default()).await;
    let recorder = Recorder::default();
    let _bot = ready_bot(&discord, client(&discord, &recorder), &recorder).await;
    send_typing(&discord, 0..10).await;
    discord
        .inject(0, Fault::InvalidSession { resumable: true })
        .await;
    assert!(discord.wait_for_resumed(0, 1, WAIT).await, "no RESUMED");
    send_typing(&discord, 10..20).await;
    expect_typing_in_order(&recorder, 20).await;
    assert_eq!(discord.resumes().len(), 1);
    assert_eq!(discord.identifies().len(), 1);
    assert_eq!(recorder.count("READY"), 1);
}

#[tokio::test]
async fn op9_false_identifies_afresh() {
    trace();
    let discord = local(LocalConfig::default()).await;
    let recorder = Recorder::default();
    let _bot = ready_bot(&discord, client(&discord, &recorder), &recorder).await;
    let first = recorder.named("READY")[0].text.clone();

    let injected = Instant::now();
    discord
        .inject(0, Fault::InvalidSession { resumable: false })
        .await;
    // 1-5 s of Discord's wait, and the identify queue's 5 s since the first IDENTIFY.
    assert!(
        discord.wait_for_ready(0, 2, Duration::from_secs(12)).await,
        "no second READY"
    );
    let identifies = discord.identifies();
    assert_eq!(identifies.len(), 2, "{identifies:?}");
    assert!(
        identifies[1].at - injected >= Duration::from_secs(1),
        "identified again {:?} after op 9",
        identifies[1].at - injected
    );
    assert!(identifies[1].at - identifies[0].at >= Duration::from_secs(5));
    assert!(discord.resumes().is_empty(), "{:?}", discord.resumes());
    assert!(recorder.wait_count("READY", 2, WAIT).await);
    let second = recorder.named("READY")[1].text.clone();
    assert_ne!(first, second, "a new session");
    let disconnected = recorder.named("SHARD_DISCONNECTED");
    assert_eq!(disconnected.len(), 1, "{disconnected:?}");
    assert_eq!(disconnected[0].text, "will_resume=false");
    events_keep_flowing(&discord, &recorder, 5).await;
}

// 6.

/// Closes the live connection with `code` after READY; returns how long `Client::run` took to
/// return, and what it returned.
async fn close_after_ready(code: u16) -> (Duration, Result<(), ClientError>, LocalDiscord) {
    let discord = local(LocalConfig::default()).await;
    let recorder = Recorder::default();
    let mut bot = ready_bot(&discord, client(&discord, &recorder), &recorder).await;
    let start = Instant::now();
    let (_, finished) = tokio::join!(
        discord.inject(0, Fault::Close(code)),
        bot.finished(Duration::from_secs(5))
    );
    let took = start.elapsed();
    let result =
        finished.unwrap_or_else(|| panic!("Client::run still runs 5 s after close {code}"));
    (took, result, discord)
}

#[tokio::test]
async fn fatal_close_codes_end_run_with_typed_error() {
    trace();
    let cases = [
        (4004, GatewayErrorKind::AuthenticationFailed),
        (4010, GatewayErrorKind::InvalidShard),
        (4011, GatewayErrorKind::ShardingRequired),
        (4012, GatewayErrorKind::InvalidApiVersion),
        (4013, GatewayErrorKind::InvalidIntents),
        (4014, GatewayErrorKind::DisallowedIntents),
    ];
    let results =
        futures::future::join_all(cases.iter().map(|(code, _)| close_after_ready(*code))).await;
    // Give a wrongly retrying shard time to show itself.
    tokio::time::sleep(Duration::from_millis(700)).await;
    for ((code, kind), (took, result, discord)) in cases.iter().zip(results) {
        match result {
            Err(ClientError::Gateway { shard, source }) => {
                assert_eq!(shard, ShardId::new(0, 1), "close {code}");
                assert_eq!(source.kind(), kind, "close {code}");
                assert_eq!(source.kind().close_code(), Some(*code));
            }
            other => panic!("close {code}: Client::run returned {other:?}"),
        }
        eprintln!("close {code}: Client::run returned {kind:?} after {took:?}");
        assert!(
            took < Duration::from_secs(1),
            "close {code}: run returned after {took:?}"
        );
        assert_eq!(
            discord.identifies().len(),
            1,
            "close {code}: IDENTIFY again"
        );
        assert!(discord.resumes().is_empty(), "close {code}: RESUME");
        assert_eq!(discord.connections(), 0, "close {code}: still connected");
    }
}

#[tokio::test]
async fn wrong_token_fails_at_get_gateway_bot() {
    trace();
    let discord = local(LocalConfig {
        token: "the-right-token".into(),
        ..LocalConfig::default()
    })
    .await;
    let recorder = Recorder::default();
    let mut bot = Bot::spawn(
        Client::builder("a-wrong-token")
            .gateway_url(discord.gateway_url())
            .api_base(discord.api_base())
            .consumer(recorder.clone()),
    );
    let start = Instant::now();
    let result = bot.finished(WAIT).await.expect("Client::run returns");
    assert!(start.elapsed() < Duration::from_secs(1));
    // `GET /gateway/bot` is authenticated: the run ends there, before any connection.
    match result {
        Err(ClientError::GatewayInfo(error)) => assert!(
            matches!(error.kind(), HttpErrorKind::Status { status: 401, .. }),
            "{error:?}"
        ),
        other => panic!("Client::run returned {other:?}"),
    }
    let requests = discord.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].path, "/api/v10/gateway/bot");
    assert!(discord.identifies().is_empty());
    assert!(recorder.seen().is_empty());
}

/// The gateway half of a wrong token, which `Client::run` cannot reach (see above): a shard alone.
#[tokio::test]
async fn wrong_token_at_the_gateway_is_authentication_failed() {
    trace();
    let discord = local(LocalConfig::default()).await;
    let mut config = GatewayConfig::new("a-wrong-token".into(), Intents::GUILDS);
    config.gateway_url = discord.gateway_url();
    let mut shard = Shard::new(ShardId::ONE, std::sync::Arc::new(config));
    let start = Instant::now();
    let error = tokio::time::timeout(WAIT, async {
        loop {
            if let Err(error) = shard.next_event().await {
                return error;
            }
        }
    })
    .await
    .expect("the shard stops");
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(error.kind(), &GatewayErrorKind::AuthenticationFailed);
    // Every later call returns the same error, without reconnecting.
    let Err(again) = shard.next_event().await else {
        panic!("an event after the fatal close");
    };
    assert_eq!(again.kind(), &GatewayErrorKind::AuthenticationFailed);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(discord.identifies().len(), 1);
    assert!(discord.resumes().is_empty());
}

// 7.

/// Closes with `code` after READY and checks the bot resumes (or identifies afresh).
async fn close_and_recover(code: u16, resumes: bool) {
    let discord = local(LocalConfig::default()).await;
    let recorder = Recorder::default();
    let mut bot = ready_bot(&discord, client(&discord, &recorder), &recorder).await;
    send_typing(&discord, 0..10).await;
    discord.inject(0, Fault::Close(code)).await;
    if resumes {
        assert!(
            discord.wait_for_resumed(0, 1, WAIT).await,
            "close {code}: no RESUMED"
        );
        send_typing(&discord, 10..20).await;
        expect_typing_in_order(&recorder, 20).await;
        assert_eq!(discord.resumes().len(), 1, "close {code}");
        assert_eq!(discord.identifies().len(), 1, "close {code}");
    } else {
        // The identify queue holds the new IDENTIFY until 5 s after the first.
        assert!(
            discord.wait_for_ready(0, 2, Duration::from_secs(12)).await,
            "close {code}: no second READY"
        );
        assert_eq!(discord.identifies().len(), 2, "close {code}");
        assert!(discord.resumes().is_empty(), "close {code}: RESUME");
        assert!(recorder.wait_count("READY", 2, WAIT).await);
    }
    let disconnected = recorder.named("SHARD_DISCONNECTED");
    assert_eq!(
        disconnected,
        [Seen {
            shard: 0,
            name: "SHARD_DISCONNECTED",
            id: u64::from(code),
            text: format!("will_resume={resumes}")
        }],
        "close {code}"
    );
    events_keep_flowing(&discord, &recorder, 10_000 + u64::from(code)).await;
    assert!(bot.is_running());
    assert!(bot.finished(Duration::from_millis(1)).await.is_none());
}

#[tokio::test]
async fn non_fatal_close_codes_resume() {
    trace();
    tokio::join!(close_and_recover(4000, true), close_and_recover(4008, true));
}

#[tokio::test]
async fn session_close_codes_identify_afresh() {
    trace();
    tokio::join!(
        close_and_recover(4007, false),
        close_and_recover(4009, false)
    );
}

// 8.

async fn compression(compression: Compression, expected: Option<&str>) {
    let discord = local(LocalConfig::default()).await;
    let recorder = Recorder::default();
    let _bot = ready_bot(
        &discord,
        client(&discord, &recorder).compression(compression),
        &recorder,
    )
    .await;
    send_typing(&discord, 0..100).await;
    // A 2 MiB message that barely compresses: the decompressor's buffer must grow.
    let mut big = common::typing(&discord, 100);
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let padding: String = (0..2 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(b'!' + (state % 90) as u8)
        })
        .collect();
    big["padding"] = padding.into();
    assert!(discord.dispatch(0, "TYPING_START", big).await.is_some());
    send_typing(&discord, 101..110).await;
    expect_typing_in_order(&recorder, 110).await;
    let identifies = discord.identifies();
    assert_eq!(identifies.len(), 1);
    assert_eq!(identifies[0].compress.as_deref(), expected);
    assert!(
        discord.resumes().is_empty(),
        "no reconnect on a decompression error"
    );
}

#[tokio::test]
async fn compression_zlib_stream() {
    trace();
    compression(Compression::ZlibStream, Some("zlib-stream")).await;
}

#[tokio::test]
async fn compression_zstd_stream() {
    trace();
    compression(Compression::ZstdStream, Some("zstd-stream")).await;
}

#[tokio::test]
async fn compression_none() {
    trace();
    compression(Compression::None, None).await;
}

// 9.

#[tokio::test]
async fn shards_and_ranges() {
    trace();
    let config = LocalConfig {
        shards: 4,
        guilds: 8,
        max_concurrency: 4, // all four identify at once
        ..LocalConfig::default()
    };

    // Shards::Fixed(4): every shard, every guild on its own shard.
    let discord = local(config.clone()).await;
    let recorder = Recorder::default();
    let _bot = Bot::spawn(client(&discord, &recorder).shards(Shards::Fixed(4)));
    for shard in 0..4 {
        assert!(
            discord.wait_for_ready(shard, 1, WAIT).await,
            "no READY on {shard}"
        );
    }
    assert!(recorder.wait_count("READY", 4, WAIT).await);
    assert!(recorder.wait_count("GUILD_CREATE", 8, WAIT).await);
    let ready_shards: BTreeSet<u32> = recorder.named("READY").iter().map(|s| s.shard).collect();
    assert_eq!(ready_shards, (0..4).collect());
    for seen in recorder.named("GUILD_CREATE") {
        assert_eq!(seen.shard as u64, (seen.id >> 22) % 4, "{seen:?}");
        assert_eq!(seen.shard, discord.shard_of(seen.id));
    }
    let guilds: BTreeSet<u64> = recorder
        .named("GUILD_CREATE")
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(guilds, discord.guild_ids().into_iter().collect());
    let mut identified: Vec<[u32; 2]> = discord.identifies().iter().map(|i| i.shard).collect();
    identified.sort_unstable();
    assert_eq!(identified, [[0, 4], [1, 4], [2, 4], [3, 4]]);

    // Shards::Range { 2..=3 of 4 }: only those two.
    let discord = local(config).await;
    let recorder = Recorder::default();
    let _bot = Bot::spawn(client(&discord, &recorder).shards(Shards::Range {
        first: 2,
        last: 3,
        total: 4,
    }));
    for shard in 2..4 {
        assert!(
            discord.wait_for_ready(shard, 1, WAIT).await,
            "no READY on {shard}"
        );
    }
    let owned: BTreeSet<u64> = discord
        .guild_ids()
        .into_iter()
        .filter(|g| (g >> 22) % 4 >= 2)
        .collect();
    assert!(recorder.wait_count("GUILD_CREATE", owned.len(), WAIT).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut identified: Vec<[u32; 2]> = discord.identifies().iter().map(|i| i.shard).collect();
    identified.sort_unstable();
    assert_eq!(identified, [[2, 4], [3, 4]]);
    let guilds: BTreeSet<u64> = recorder
        .named("GUILD_CREATE")
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(guilds, owned);
    let ready_shards: BTreeSet<u32> = recorder.named("READY").iter().map(|s| s.shard).collect();
    assert_eq!(ready_shards, [2, 3].into_iter().collect());
}

// 10.

#[tokio::test]
async fn many_shards_identify_spacing_with_max_concurrency() {
    trace();
    let discord = local(LocalConfig {
        shards: 4,
        max_concurrency: 2,
        // Shards 2 and 3 wait 5 s in the queue: they must heartbeat meanwhile.
        heartbeat_interval: Duration::from_millis(500),
        ..LocalConfig::default()
    })
    .await;
    let recorder = Recorder::default();
    // Shards::Auto: the 4 shards `GET /gateway/bot` recommends.
    let _bot = Bot::spawn(client(&discord, &recorder));
    assert!(
        discord
            .wait_for_identifies(4, Duration::from_secs(12))
            .await,
        "{:?}",
        discord.identifies()
    );
    let identifies = discord.identifies();
    let mut buckets: BTreeMap<u32, Vec<Instant>> = BTreeMap::new();
    for identify in &identifies {
        assert_eq!(identify.shard[1], 4);
        buckets
            .entry(identify.shard[0] % 2)
            .or_default()
            .push(identify.at);
    }
    assert_eq!(buckets.len(), 2);
    for (bucket, times) in &buckets {
        assert_eq!(times.len(), 2, "bucket {bucket}");
        let gap = times[1] - times[0];
        eprintln!("bucket {bucket}: IDENTIFYs {gap:?} apart");
        // The client spaces its queue passes by 5 s; the server records receipt, so allow the
        // send latency of the first.
        assert!(
            gap >= Duration::from_millis(4_950),
            "bucket {bucket}: {gap:?}"
        );
    }
    // The two buckets go side by side: shards 0 and 1 at once, then 2 and 3.
    let first = identifies[0].at;
    let mut order: Vec<(Duration, u32)> = identifies
        .iter()
        .map(|i| (i.at - first, i.shard[0]))
        .collect();
    order.sort();
    assert!(order[1].0 < Duration::from_secs(1), "{order:?}");
    assert!(order[3].0 < Duration::from_secs(6), "{order:?}");
    let firsts: BTreeSet<u32> = order[..2].iter().map(|(_, s)| *s).collect();
    assert_eq!(firsts, [0, 1].into_iter().collect());
    for shard in 0..4 {
        assert!(discord.wait_for_ready(shard, 1, WAIT).await);
    }
    let waiting_beats = discord
        .heartbeats()
        .iter()
        .filter(|b| b.shard.is_none())
        .count();
    assert!(
        waiting_beats >= 10,
        "{waiting_beats} heartbeats before IDENTIFY"
    );
    assert!(discord.resumes().is_empty());
    assert_eq!(discord.identifies().len(), 4, "no connection was lost");
    assert_eq!(discord.connections(), 4);
}

// 11.

/// The consumer of examples/ping.rs.
struct PingBot;

#[consumer]
impl PingBot {
    async fn on_message_create(&self, ctx: Context, msg: Message) -> Result<(), BoxError> {
        if msg.author.bot {
            return Ok(());
        }
        match msg.content.as_str() {
            "!ping" => {
                ctx.http()
                    .create_message(msg.channel_id)
                    .content("pyongyang!")
                    .await?;
            }
            "!sleep" => {
                tokio::time::sleep(Duration::from_secs(3)).await;
                ctx.http()
                    .create_message(msg.channel_id)
                    .content("Slept for 3 seconds.")
                    .await?;
            }
            "!raise" => panic!("No problems here!"),
            _ => {}
        }
        Ok(())
    }
}

/// The bot's lines of the conversation until `count` were seen (or the timeout).
async fn bot_lines(
    conversation: &mut tokio::sync::broadcast::Receiver<nostrum_core::local::ConversationLine>,
    count: usize,
    timeout: Duration,
) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut lines = Vec::new();
    while lines.len() < count {
        match tokio::time::timeout_at(deadline, conversation.recv()).await {
            Ok(Ok(line)) if line.from_bot => lines.push(line.content),
            Ok(Ok(_)) => {}
            _ => break,
        }
    }
    lines
}

#[tokio::test]
async fn ping_example_answers_while_sleeping_and_survives_a_panic() {
    trace();
    let discord = local(LocalConfig::default()).await;
    let client = builder(&discord)
        .add_intents(Intents::MESSAGE_CONTENT)
        .consumer(PingBot)
        .build();
    let consumers = client.consumers().clone();
    let _bot = Bot::run(client);
    assert!(discord.wait_for_ready(0, 1, WAIT).await);
    let identify = &discord.identifies()[0];
    assert_eq!(
        Intents::from_bits_retain(identify.intents),
        Intents::GUILD_MESSAGES | Intents::DIRECT_MESSAGES | Intents::MESSAGE_CONTENT
    );

    let channel = discord.channel_ids(discord.guild_ids()[0])[0];
    let mut conversation = discord.conversation();
    let start = Instant::now();
    for content in ["!sleep", "!ping", "!raise", "!ping"] {
        discord.user_message(channel, "alice", content).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let lines = bot_lines(&mut conversation, 3, Duration::from_secs(10)).await;
    assert_eq!(
        lines,
        ["pyongyang!", "pyongyang!", "Slept for 3 seconds."],
        "both pings are answered while !sleep sleeps"
    );
    assert!(start.elapsed() >= Duration::from_secs(3));
    assert_eq!(consumers.stats().panics, 1, "the !raise handler panicked");

    // The panic stopped nothing: a later message is still answered.
    discord.user_message(channel, "bob", "!ping").await;
    let lines = bot_lines(&mut conversation, 1, WAIT).await;
    assert_eq!(lines, ["pyongyang!"]);

    let posts: Vec<_> = discord
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(posts.len(), 4);
    for post in &posts {
        assert_eq!(post.path, format!("/api/v10/channels/{channel}/messages"));
    }
    assert_eq!(
        posts[2].body.as_ref().and_then(|b| b["content"].as_str()),
        Some("Slept for 3 seconds.")
    );
    assert_eq!(discord.identifies().len(), 1);
    assert!(discord.resumes().is_empty());
}

#[tokio::test]
async fn without_message_content_the_bot_sees_empty_content() {
    trace();
    let discord = local(LocalConfig::default()).await;
    let recorder = Recorder::default();
    let _bot = ready_bot(&discord, client(&discord, &recorder), &recorder).await;
    let channel = discord.channel_ids(discord.guild_ids()[0])[0];
    let id = discord.user_message(channel, "alice", "!ping").await;
    assert!(recorder.wait_count("MESSAGE_CREATE", 1, WAIT).await);
    let seen = &recorder.named("MESSAGE_CREATE")[0];
    assert_eq!(seen.id, id);
    assert_eq!(seen.text, "", "content without MESSAGE_CONTENT");
    let intents = Intents::from_bits_retain(discord.identifies()[0].intents);
    assert!(!intents.contains(Intents::MESSAGE_CONTENT));
}

// More paths.

/// Op 1 from the server: the shard answers with a heartbeat at once, carrying the last sequence.
#[tokio::test]
async fn server_heartbeat_request_is_answered_at_once() {
    trace();
    let discord = local(LocalConfig::default()).await; // 41.25 s interval: no heartbeat of its own soon
    let recorder = Recorder::default();
    let _bot = ready_bot(&discord, client(&discord, &recorder), &recorder).await;
    send_typing(&discord, 0..5).await;
    expect_typing_in_order(&recorder, 5).await;
    let before = discord.heartbeats().len();
    let start = Instant::now();
    discord.inject(0, Fault::ServerHeartbeat).await;
    let mut beats = discord.heartbeats();
    while beats.len() == before && start.elapsed() < Duration::from_secs(1) {
        tokio::time::sleep(Duration::from_millis(5)).await;
        beats = discord.heartbeats();
    }
    let took = start.elapsed();
    assert!(beats.len() > before, "no heartbeat after op 1");
    assert!(took < Duration::from_millis(500), "answered after {took:?}");
    let beat = beats.last().expect("a heartbeat");
    // READY, GUILD_CREATE and the 5 TYPING_STARTs.
    assert_eq!(beat.seq, Some(7));
    assert_eq!(beat.shard, Some([0, 1]));
    assert_eq!(discord.connections(), 1);
}

/// A real 4014: privileged intents the application may not use.
#[tokio::test]
async fn disallowed_intents_at_identify_are_fatal() {
    trace();
    let discord = local(LocalConfig {
        privileged_intents: false,
        ..LocalConfig::default()
    })
    .await;
    let recorder = Recorder::default();
    let mut bot = Bot::spawn(client(&discord, &recorder).add_intents(Intents::MESSAGE_CONTENT));
    let result = bot.finished(WAIT).await.expect("Client::run returns");
    match result {
        Err(ClientError::Gateway { shard, source }) => {
            assert_eq!(shard, ShardId::ONE);
            assert_eq!(source.kind(), &GatewayErrorKind::DisallowedIntents);
        }
        other => panic!("Client::run returned {other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(discord.identifies().len(), 1);
    assert!(recorder.named("READY").is_empty());
}

/// A real 4013: an intent bit Discord does not know.
#[tokio::test]
async fn invalid_intents_at_identify_are_fatal() {
    trace();
    let discord = local(LocalConfig::default()).await;
    let recorder = Recorder::default();
    let mut bot = Bot::spawn(
        client(&discord, &recorder).intents(Intents::GUILDS | Intents::from_bits_retain(1 << 18)),
    );
    let result = bot.finished(WAIT).await.expect("Client::run returns");
    match result {
        Err(ClientError::Gateway { source, .. }) => {
            assert_eq!(source.kind(), &GatewayErrorKind::InvalidIntents);
        }
        other => panic!("Client::run returned {other:?}"),
    }
    let identifies = discord.identifies();
    assert_eq!(identifies.len(), 1);
    assert_eq!(
        identifies[0].intents,
        1 | (1 << 18),
        "intents() replaces the default"
    );
}

/// No session start left (`session_start_limit.remaining` 0): the shard waits for the reset
/// instead of identifying.
#[tokio::test]
async fn exhausted_session_starts_wait_for_the_reset() {
    trace();
    let discord = local(LocalConfig {
        session_start_remaining: 0,
        ..LocalConfig::default()
    })
    .await;
    let recorder = Recorder::default();
    let bot = Bot::spawn(client(&discord, &recorder));
    assert!(recorder.wait_count("SHARD_CONNECTED", 1, WAIT).await);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(
        discord.identifies().is_empty(),
        "{:?}",
        discord.identifies()
    );
    assert!(bot.is_running());
    assert_eq!(discord.connections(), 1);
}

#[tokio::test]
async fn impossible_shard_plans_are_rejected() {
    trace();
    for shards in [
        Shards::Range {
            first: 3,
            last: 2,
            total: 4,
        },
        Shards::Range {
            first: 0,
            last: 4,
            total: 4,
        },
    ] {
        let discord = local(LocalConfig::default()).await;
        let mut bot = Bot::spawn(client(&discord, &Recorder::default()).shards(shards));
        let result = bot.finished(WAIT).await.expect("Client::run returns");
        assert!(
            matches!(result, Err(ClientError::InvalidShards(_))),
            "{shards:?}: {result:?}"
        );
        assert_eq!(discord.connections(), 0);
        assert!(discord.identifies().is_empty());
    }
}

/// A fatal close on one shard of two: `Client::run` names that shard and stops the other.
#[tokio::test]
async fn fatal_close_on_one_shard_stops_every_shard() {
    trace();
    let discord = local(LocalConfig {
        shards: 2,
        max_concurrency: 2,
        ..LocalConfig::default()
    })
    .await;
    let recorder = Recorder::default();
    let mut bot = Bot::spawn(client(&discord, &recorder));
    for shard in 0..2 {
        assert!(discord.wait_for_ready(shard, 1, WAIT).await);
    }
    let (_, finished) = tokio::join!(
        discord.inject(1, Fault::Close(4004)),
        bot.finished(Duration::from_secs(2))
    );
    match finished.expect("Client::run returns") {
        Err(ClientError::Gateway { shard, source }) => {
            assert_eq!(shard, ShardId::new(1, 2));
            assert_eq!(source.kind(), &GatewayErrorKind::AuthenticationFailed);
        }
        other => panic!("Client::run returned {other:?}"),
    }
    assert!(
        discord
            .wait_for_connections(0, Duration::from_secs(2))
            .await,
        "shard 0 still connected"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(discord.identifies().len(), 2);
    assert!(discord.resumes().is_empty());
}

/// `ShardManager::shutdown` makes `Client::run` return `Ok(())` and ends every session the way
/// `ShardManager::stop` documents: a close 1000, after which Discord forgets the session.
#[tokio::test]
async fn shutdown_ends_every_session_with_close_1000() {
    trace();
    let discord = local(LocalConfig {
        shards: 2,
        max_concurrency: 2,
        ..LocalConfig::default()
    })
    .await;
    let recorder = Recorder::default();
    let client = client(&discord, &recorder).build();
    let manager = client.shards().clone();
    let mut bot = Bot::run(client);
    for shard in 0..2 {
        assert!(discord.wait_for_ready(shard, 1, WAIT).await);
    }
    manager.shutdown().await;
    let result = bot.finished(Duration::from_secs(2)).await;
    assert!(matches!(result, Some(Ok(()))), "{result:?}");
    assert!(
        discord
            .wait_for_connections(0, Duration::from_secs(3))
            .await,
        "still connected"
    );
    // A session ended with close 1000 is forgotten: nothing can be sent to it any more.
    for shard in 0..2 {
        let seq = discord
            .dispatch(shard, "TYPING_START", common::typing(&discord, 1))
            .await;
        assert_eq!(
            seq, None,
            "shard {shard}: the session is still alive (no close 1000 was sent)"
        );
    }
}

/// `ShardManager::stop` ends one session with a close 1000.
#[tokio::test]
async fn stop_ends_the_session_with_close_1000() {
    trace();
    let discord = local(LocalConfig::default()).await;
    let recorder = Recorder::default();
    let client = client(&discord, &recorder).build();
    let manager = client.shards().clone();
    let bot = Bot::run(client);
    assert!(discord.wait_for_ready(0, 1, WAIT).await);
    assert!(manager.stop(0));
    assert!(
        discord
            .wait_for_connections(0, Duration::from_secs(3))
            .await,
        "still connected"
    );
    let seq = discord
        .dispatch(0, "TYPING_START", common::typing(&discord, 1))
        .await;
    assert_eq!(seq, None, "the session is still alive");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(discord.identifies().len(), 1);
    assert!(discord.resumes().is_empty());
    assert!(bot.is_running(), "only shutdown() ends Client::run");
}

/// More dispatches than the session's replay buffer (10 000) while the socket is down: the RESUME
/// is answered with op 9 (not resumable), and the shard identifies afresh.
#[tokio::test]
async fn resume_too_late_identifies_afresh() {
    trace();
    let discord = local(LocalConfig::default()).await;
    let recorder = Recorder::default();
    let _bot = ready_bot(&discord, client(&discord, &recorder), &recorder).await;
    discord.inject(0, Fault::DropSocket).await;
    // No await point in `dispatch`: the shard cannot reconnect before these are all buffered.
    send_typing(&discord, 0..10_050).await;
    assert!(
        discord.wait_for_ready(0, 2, Duration::from_secs(12)).await,
        "no second READY"
    );
    let resumes = discord.resumes();
    assert_eq!(resumes.len(), 1, "{resumes:?}");
    assert_eq!(resumes[0].shard, [0, 1], "the session was known");
    assert_eq!(discord.identifies().len(), 2);
    assert!(recorder.wait_count("READY", 2, WAIT).await);
    assert_eq!(recorder.count("SHARD_RESUMED"), 0);
    assert!(recorder.typing().is_empty(), "the lost session's events");
    events_keep_flowing(&discord, &recorder, 20_000).await;
}
