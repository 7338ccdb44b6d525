//! The token is never printed: a bot is driven through its error paths (a wrong token at REST, a
//! fatal 4004, a failing and a panicking handler, reconnects of every kind, a webhook call) while a
//! subscriber captures every log line of every crate at TRACE (the `log` records of the
//! dependencies included); then neither the log nor any error's Display or Debug may hold the token,
//! in plain text or in hex.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use common::{Bot, WAIT};
use nostrum_core::gateway::{
    Compression, GatewayConfig, GatewayErrorKind, IdentifyQueue, Shard, ShardEvent, ShardId,
};
use nostrum_core::http::Http;
use nostrum_core::local::{Fault, LocalConfig, LocalDiscord};
use nostrum_core::prelude::*;
use nostrum_core::{ClientError, Token};
use tokio::time::{Instant, timeout};

/// The bot token: distinctive, so that any trace of it is found.
const TOKEN: &str = "SECRET-TOKEN-abc.def.ghi";
/// A wrong bot token: it must not be printed either.
const WRONG_TOKEN: &str = "SECRET-TOKEN-abc.def.WRONG";
/// A webhook token.
const WEBHOOK_TOKEN: &str = "SECRET-WEBHOOK-TOKEN-xyz";
/// What no output may contain (the common prefix of the tokens, and the webhook token).
const NEEDLES: [&str; 2] = ["SECRET-TOKEN", "SECRET-WEBHOOK"];

/// Everything logged by any test of this binary, at TRACE, from every crate and every target
/// (nothing is filtered out: see `trace_logs_hold_no_token`).
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::fmt::format::FmtSpan;
    use tracing_subscriber::prelude::*;
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::default();
        let all = Arc::clone(&logs);
        tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_span_events(FmtSpan::FULL)
                    .with_writer(move || Sink(Arc::clone(&all)))
                    .with_filter(LevelFilter::TRACE),
            )
            .try_init()
            .expect("the first subscriber of this test binary (with the `log` bridge)");
        logs
    })
}

/// Starts the capture.
fn log() {
    logs();
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

/// Fails if any of `texts` or the whole log so far holds a token, plain or in hex.
fn assert_no_secret(texts: &[String]) {
    let logged = String::from_utf8_lossy(&logs().lock().unwrap_or_else(PoisonError::into_inner))
        .into_owned();
    assert!(
        logged.len() > 1000,
        "the capture works: {} bytes",
        logged.len()
    );
    for needle in NEEDLES {
        let hex_needle = hex(needle);
        for (what, text) in
            std::iter::once(("the log", &logged)).chain(texts.iter().map(|t| ("an error", t)))
        {
            for form in [needle, hex_needle.as_str()] {
                if let Some(at) = text.find(form) {
                    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
                    let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
                    panic!("{what} holds a token ({form}): {}", &text[start..end]);
                }
            }
        }
    }
}

/// Display, Debug and the source chain of an error.
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = format!("{error} | {error:?}");
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(&format!(" | caused by {inner} | {inner:?}"));
        source = inner.source();
    }
    text
}

async fn local(config: LocalConfig) -> LocalDiscord {
    LocalDiscord::start(LocalConfig {
        token: TOKEN.to_owned(),
        ..config
    })
    .await
    .expect("the local Discord starts")
}

fn builder(discord: &LocalDiscord, token: &str) -> nostrum_core::ClientBuilder {
    Client::builder(token)
        .gateway_url(discord.gateway_url())
        .api_base(discord.api_base())
        .add_intents(Intents::MESSAGE_CONTENT)
}

/// Answers `!ping`, fails on `!fail` (with the context's Debug in the error), panics on `!panic`.
#[derive(Clone, Debug, Default)]
struct Pinger {
    pongs: Arc<Mutex<usize>>,
}

#[consumer]
impl Pinger {
    async fn on_message_create(&self, ctx: Context, msg: Message) -> Result<(), BoxError> {
        match msg.content.as_str() {
            "!ping" => {
                *self.pongs.lock().unwrap_or_else(PoisonError::into_inner) += 1;
                ctx.http()
                    .create_message(msg.channel_id)
                    .content("pong")
                    .await?;
            }
            "!fail" => return Err(format!("handler failed with context {ctx:?}").into()),
            "!panic" => panic!("handler panicked with context {ctx:?}"),
            "!rest" => {
                // A REST error inside a handler, returned to the runtime to log.
                ctx.http()
                    .create_message(Id::new(1))
                    .content("to a channel that does not exist")
                    .await?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// Sends `!ping` (again every second: a message posted while the session is being re-identified
/// is not replayed) until the bot has seen one more.
async fn ping_answered(discord: &LocalDiscord, bot: &Pinger) {
    let before = *bot.pongs.lock().unwrap_or_else(PoisonError::into_inner);
    let channel = discord.channel_ids(discord.guild_ids()[0])[0];
    let deadline = Instant::now() + WAIT;
    let mut next_send = Instant::now();
    while *bot.pongs.lock().unwrap_or_else(PoisonError::into_inner) == before {
        assert!(Instant::now() < deadline, "!ping not seen");
        if Instant::now() >= next_send {
            discord.user_message(channel, "alice", "!ping").await;
            next_send = Instant::now() + Duration::from_secs(1);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn wrong_token_at_rest_is_not_printed() {
    log();
    let discord = local(LocalConfig::default()).await;
    let mut texts = Vec::new();
    let result = timeout(
        WAIT,
        builder(&discord, WRONG_TOKEN)
            .consumer(Pinger::default())
            .run(),
    )
    .await
    .expect("run ends");
    match &result {
        Err(error @ ClientError::GatewayInfo(_)) => texts.push(describe(error)),
        other => panic!("expected a 401, got {other:?}"),
    }
    let http = Http::builder(Some(Token::new(WRONG_TOKEN)))
        .api_base(discord.api_base())
        .build();
    texts.push(format!("{http:?}"));
    let error = http.current_user().await.expect_err("401");
    assert_eq!(error.status_code(), Some(401));
    texts.push(describe(&error));
    texts.push(format!("{:?}", error.into_parts()));
    assert_no_secret(&texts);
}

#[tokio::test]
async fn fatal_close_and_wrong_token_at_the_gateway_are_not_printed() {
    log();
    let discord = local(LocalConfig::default()).await;
    let bot = Pinger::default();
    let client = builder(&discord, TOKEN).consumer(bot.clone()).build();
    let mut texts = vec![format!("{client:?}")];
    let mut running = Bot::run(client);
    assert!(discord.wait_for_ready(0, 1, WAIT).await);
    ping_answered(&discord, &bot).await;
    discord.inject(0, Fault::Close(4004)).await;
    match running.finished(WAIT).await {
        Some(Err(error)) => texts.push(describe(&error)),
        other => panic!("expected a fatal error, got {other:?}"),
    }

    // A shard identifying with a wrong token.
    let mut config = GatewayConfig::new(WRONG_TOKEN.into(), Intents::GUILDS);
    config.gateway_url = discord.gateway_url();
    config.compression = Compression::ZstdStream;
    config.identify_queue = Arc::new(IdentifyQueue::new(1, 1000, Duration::from_secs(3600)));
    texts.push(format!("{config:?}"));
    let mut shard = Shard::new(ShardId::ONE, Arc::new(config));
    texts.push(format!("{shard:?}"));
    let error = loop {
        match timeout(WAIT, shard.next_event())
            .await
            .expect("the shard ends")
        {
            Ok(ShardEvent::Dispatch { name, .. }) => texts.push(name.to_owned()),
            Ok(other) => texts.push(format!("{other:?}")),
            Err(error) => break error,
        }
    };
    assert_eq!(error.kind(), &GatewayErrorKind::AuthenticationFailed);
    texts.push(describe(&error));
    texts.push(format!("{shard:?}"));
    assert_no_secret(&texts);
}

#[tokio::test]
async fn failing_and_panicking_handlers_and_reconnects_are_not_printed() {
    log();
    let discord = local(LocalConfig {
        heartbeat_interval: Duration::from_millis(300),
        ..LocalConfig::default()
    })
    .await;
    let bot = Pinger::default();
    let client = builder(&discord, TOKEN)
        .consumer(bot.clone())
        .compression(Compression::ZlibStream)
        .build();
    let mut texts = vec![
        format!("{client:?}"),
        format!("{:?}", client.http()),
        format!("{:?}", client.shards()),
    ];
    let running = Bot::run(client);
    assert!(discord.wait_for_ready(0, 1, WAIT).await);
    ping_answered(&discord, &bot).await;
    let channel = discord.channel_ids(discord.guild_ids()[0])[0];
    for content in ["!fail", "!panic", "!rest"] {
        discord.user_message(channel, "alice", content).await;
    }
    ping_answered(&discord, &bot).await;

    let faults = [
        Fault::DropSocket,
        Fault::Reconnect,
        Fault::InvalidSession { resumable: true },
        Fault::Close(4000),
        Fault::ServerHeartbeat,
        Fault::StopHeartbeatAck,
        Fault::InvalidSession { resumable: false },
        Fault::Close(4009),
    ];
    for fault in faults {
        texts.push(format!("{fault:?}"));
        discord.inject(0, fault).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        ping_answered(&discord, &bot).await;
    }
    assert!(running.is_running());
    assert!(!discord.resumes().is_empty(), "resumed at least once");
    assert!(
        discord.identifies().len() >= 2,
        "identified afresh at least once"
    );
    // Let the logs of the last handlers land.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let logged = String::from_utf8_lossy(&logs().lock().unwrap_or_else(PoisonError::into_inner))
        .into_owned();
    assert!(logged.contains("panicked"), "the panic is logged");
    assert!(logged.contains("handler failed"), "the error is logged");
    assert_no_secret(&texts);
}

#[tokio::test]
async fn webhook_token_is_not_printed() {
    log();
    let discord = local(LocalConfig::default()).await;
    let http = Http::builder(None).api_base(discord.api_base()).build();
    let mut texts = Vec::new();
    let request = http
        .execute_webhook(Id::new(1), WEBHOOK_TOKEN)
        .content("hi");
    texts.push(format!("{request:?}"));
    match request.await {
        Ok(answer) => texts.push(format!("{answer:?}")),
        Err(error) => texts.push(describe(&error)),
    }
    // A request that fails validation before it is sent.
    let error = http
        .execute_webhook(Id::new(1), WEBHOOK_TOKEN)
        .content("x".repeat(5000))
        .await
        .expect_err("content over 2000 characters");
    texts.push(describe(&error));
    // And one to a server that is not there (a transport error, whose URL holds the token).
    let gone = Http::builder(None)
        .api_base("http://127.0.0.1:1")
        .retries(0)
        .build();
    let error = gone
        .execute_webhook(Id::new(1), WEBHOOK_TOKEN)
        .content("hi")
        .await
        .expect_err("nothing listens on port 1");
    texts.push(describe(&error));
    assert_no_secret(&texts);
}

/// The whole log at TRACE, every target, the `log` records of the dependencies included, while the
/// bot identifies and then resumes (the two payloads that carry the token), both ends of the socket
/// in this process (the local Discord reads them too).
///
/// This test failed while the gateway and the local Discord used tokio-tungstenite: tungstenite logs
/// every frame it writes and reads (`log::trace!` under target `tungstenite::protocol`: "Sending
/// frame", "received frame", "Received message", the payload in plain or as bytes), so IDENTIFY
/// and RESUME printed the token. Both ends now use tokio-websockets, which logs nothing; the test guards that no
/// dependency of the gateway starts logging frames again.
#[tokio::test]
async fn trace_logs_hold_no_token() {
    log();
    let discord = local(LocalConfig::default()).await;
    let bot = Pinger::default();
    let _running = Bot::spawn(builder(&discord, TOKEN).consumer(bot.clone()));
    assert!(discord.wait_for_ready(0, 1, WAIT).await);
    discord.inject(0, Fault::DropSocket).await;
    assert!(discord.wait_for_resumed(0, 1, WAIT).await);
    assert!(
        !discord.identifies().is_empty() && !discord.resumes().is_empty(),
        "the token went over the socket in IDENTIFY and in RESUME"
    );
    assert_no_secret(&[]);
}
