//! The seed's example consumer. `!ping` answers "pyongyang!", `!sleep` sleeps 3 s without blocking
//! other events, `!raise` panics without stopping anything.
//!
//! With `DISCORD_TOKEN` set it runs against Discord until Ctrl-C. Without it, it starts the local
//! Discord on loopback, plays a user who sends `!sleep`, `!ping`, `!raise`, `!ping`, prints the
//! conversation as it happens, and exits 0 once both pings were answered while the sleep still ran.

use std::process::ExitCode;
use std::time::Duration;

use nostrum_core::local::{LocalConfig, LocalDiscord};
use nostrum_core::prelude::*;

struct Bot;

#[consumer]
impl Bot {
    async fn on_ready(&self, ctx: Context, ready: Ready) {
        println!(
            "* {} is ready on shard {}",
            ready.user.name,
            ctx.shard().id()
        );
    }

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
                tokio::time::sleep(Duration::from_secs(3)).await; // blocks no other event
                ctx.http()
                    .create_message(msg.channel_id)
                    .content("Slept for 3 seconds.")
                    .await?;
            }
            "!raise" => panic!("No problems here!"), // crashes nothing
            _ => {}
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(
                    "warn,nostrum_core=info,nostrum_core::local=warn",
                )
            }),
        )
        .init();
    match std::env::var("DISCORD_TOKEN") {
        Ok(token) if !token.trim().is_empty() => against_discord(token).await,
        _ => against_the_local_discord().await,
    }
}

async fn against_discord(token: String) -> ExitCode {
    let client = Client::builder(token)
        .consumer(Bot)
        .add_intents(Intents::MESSAGE_CONTENT);
    tokio::select! {
        result = client.run() => match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("error: {err}");
                ExitCode::FAILURE
            }
        },
        _ = tokio::signal::ctrl_c() => ExitCode::SUCCESS,
    }
}

async fn against_the_local_discord() -> ExitCode {
    println!("DISCORD_TOKEN is not set: running against the local Discord on 127.0.0.1.");
    let discord = match LocalDiscord::start(LocalConfig::default()).await {
        Ok(discord) => discord,
        Err(err) => {
            eprintln!("error: the local Discord did not start: {err}");
            return ExitCode::FAILURE;
        }
    };
    let client = Client::builder(discord.token())
        .gateway_url(discord.gateway_url())
        .api_base(discord.api_base())
        .add_intents(Intents::MESSAGE_CONTENT)
        .consumer(Bot);
    let bot = tokio::spawn(client.run());
    if !discord.wait_for_ready(0, 1, Duration::from_secs(10)).await {
        eprintln!("error: the bot did not connect");
        return ExitCode::FAILURE;
    }

    let mut conversation = discord.conversation();
    let channel = discord.channel_ids(discord.guild_ids()[0])[0];
    for content in ["!sleep", "!ping", "!raise", "!ping"] {
        discord.user_message(channel, "alice", content).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (mut pongs, mut slept) = (0, false);
    let mut pongs_before_sleep_ended = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !(pongs == 2 && slept) {
        let line = match tokio::time::timeout_at(deadline, conversation.recv()).await {
            Ok(Ok(line)) => line,
            _ => break,
        };
        let who = if line.from_bot {
            "bot"
        } else {
            line.author.as_str()
        };
        println!("[{who}] {}", line.content);
        if line.from_bot && line.content == "pyongyang!" {
            pongs += 1;
            if !slept {
                pongs_before_sleep_ended += 1;
            }
        }
        if line.from_bot && line.content.starts_with("Slept") {
            slept = true;
        }
    }
    bot.abort();
    if pongs == 2 && pongs_before_sleep_ended == 2 && slept {
        println!(
            "* both pings were answered while !sleep was still sleeping, and !raise stopped nothing"
        );
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "error: pongs {pongs} (before the sleep ended: {pongs_before_sleep_ended}), sleep answered: {slept}"
        );
        ExitCode::FAILURE
    }
}
