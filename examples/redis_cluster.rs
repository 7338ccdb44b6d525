//! A bot across processes on Redis, all on one machine: two gateway processes (shards 0-1 and 2-3
//! of 4) publish to Redis Streams, two workers answer `!ping` from a consumer group, and shard 1
//! moves from one gateway process to the other without a fresh IDENTIFY.
//!
//! ```sh
//! cargo run --example redis_cluster
//! ```
//!
//! With no arguments it starts everything itself: a `redis-server` on a Unix socket (or uses
//! `REDIS_URL`), the local Discord, and the four processes (this same binary in `gateway` and
//! `worker` mode); it plays a user who says `!ping` in every guild, hands shard 1 over, says
//! `!ping` again, prints the conversation and exits 0 once every ping was answered.
//!
//! On many machines, run the modes yourself with `DISCORD_TOKEN` and `REDIS_URL` set (see the
//! README, "Running on many machines"):
//!
//! ```sh
//! cargo run --release --example redis_cluster -- gateway gw-a 0 1 4   # name, first, last, total
//! cargo run --release --example redis_cluster -- gateway gw-b 2 3 4
//! cargo run --release --example redis_cluster -- worker w1 4          # name, total
//! cargo run --release --example redis_cluster -- handover gw-a 1 gw-b # move shard 1 to gw-b
//! ```

use std::{
    process::{Child, Command, ExitCode, Stdio},
    sync::Arc,
    time::Duration,
};

use nostrum_core::{
    Client, Consumer, Shards,
    cache::CacheConfig,
    gateway::IdentifyLimiter,
    http::Http,
    local::{LocalConfig, LocalDiscord},
    prelude::*,
};
use nostrum_redis::{
    Command as Control, DEFAULT_PREFIX, Handover, PublisherConfig, RedisCache, RedisIdentifyQueue,
    RedisPublisher, RedisRateLimiter, Worker, WorkerConfig, testing::RedisServer,
};
use redis::aio::ConnectionManager;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The bot's logic, run by the workers.
struct Bot {
    worker: String,
}

#[consumer]
impl Bot {
    async fn on_message_create(&self, ctx: Context, msg: Message) -> Result<(), BoxError> {
        if msg.author.bot || msg.content != "!ping" {
            return Ok(());
        }
        // The cache the gateway processes write, read from Redis.
        let guild = msg
            .guild_id
            .and_then(|id| ctx.cache().guild(id))
            .map_or_else(|| "?".to_owned(), |guild| guild.name.to_string());
        ctx.http()
            .create_message(msg.channel_id)
            .content(format!(
                "pong from {} (shard {}, guild {guild})",
                self.worker,
                ctx.shard().id()
            ))
            .await?;
        Ok(())
    }
}

fn env(name: &str) -> Result<String, Error> {
    std::env::var(name).map_err(|_| format!("{name} is not set").into())
}

/// REST through a rate limiter shared by every process of the bot.
async fn http(redis: &redis::Client) -> Result<(Http, Arc<RedisRateLimiter>), Error> {
    let limiter = Arc::new(RedisRateLimiter::new(
        ConnectionManager::new(redis.clone()).await?,
    ));
    let mut http = Http::builder(Some(env("DISCORD_TOKEN")?.into())).shared_ratelimiter(
        Arc::clone(&limiter) as Arc<dyn nostrum_core::http::ratelimit::RateLimiter>,
    );
    if let Ok(base) = std::env::var("NOSTRUM_API_BASE") {
        http = http.api_base(base);
    }
    Ok((http.build(), limiter))
}

async fn gateway(name: String, first: u32, last: u32, total: u32) -> Result<(), Error> {
    let redis = redis::Client::open(env("REDIS_URL")?)?;
    let (http, limiter) = http(&redis).await?;
    let info = http.gateway_bot().await?;
    let queue: Arc<dyn IdentifyLimiter> = Arc::new(
        RedisIdentifyQueue::from_session_start_limit(
            ConnectionManager::new(redis.clone()).await?,
            &info.session_start_limit,
        )
        .await?,
    );
    let publisher = RedisPublisher::new(redis.clone(), PublisherConfig::new(Bot::EVENTS)).await?;
    let cache = RedisCache::new(&env("REDIS_URL")?)?
        .writer(CacheConfig::default())
        .await?;
    let mut client = Client::builder(env("DISCORD_TOKEN")?)
        .shards(Shards::Range { first, last, total })
        .identify_queue(queue)
        .ratelimiter(limiter)
        .sink(publisher.clone())
        .cache_backend(nostrum_core::cache::Cache::new(cache.clone()))
        .add_intents(Intents::MESSAGE_CONTENT);
    if let Ok(url) = std::env::var("NOSTRUM_GATEWAY_URL") {
        client = client.gateway_url(url);
    }
    if let Ok(base) = std::env::var("NOSTRUM_API_BASE") {
        client = client.api_base(base);
    }
    let client = client.build();
    let handover = Handover::new(redis.clone(), DEFAULT_PREFIX)
        .await?
        .with_cache(cache);
    tokio::spawn(handover.serve(redis, name, client.shards().clone(), total, Some(publisher)));
    client.run().await?;
    Ok(())
}

async fn worker(name: String, total: u32) -> Result<(), Error> {
    let redis = redis::Client::open(env("REDIS_URL")?)?;
    let (http, _) = http(&redis).await?;
    let cache = RedisCache::new(&env("REDIS_URL")?)?.reader().await?;
    Worker::new(redis, WorkerConfig::new(name.clone(), total), http)
        .cache(nostrum_core::cache::Cache::new(cache))
        .consumer(Bot { worker: name })
        .run()
        .await?;
    Ok(())
}

/// A child process, killed when dropped.
struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Everything on this machine, as described at the top.
async fn demo() -> Result<(), Error> {
    let server;
    let redis_url = match std::env::var("REDIS_URL") {
        Ok(url) => url,
        Err(_) => {
            server = RedisServer::start()
                .map_err(|err| format!("redis-server: {err} (apt-get install redis-server)"))?;
            server.url()
        }
    };
    let discord = LocalDiscord::start(LocalConfig {
        shards: 4,
        guilds: 4,
        ..LocalConfig::default()
    })
    .await?;
    let exe = std::env::current_exe()?;
    let spawn = |args: &[&str]| -> Result<Node, Error> {
        Ok(Node(
            Command::new(&exe)
                .args(args)
                .env("REDIS_URL", &redis_url)
                .env("DISCORD_TOKEN", discord.token())
                .env("NOSTRUM_GATEWAY_URL", discord.gateway_url())
                .env("NOSTRUM_API_BASE", discord.api_base())
                .stdout(Stdio::inherit())
                .stderr(Stdio::inherit())
                .spawn()?,
        ))
    };
    let _nodes = [
        spawn(&["worker", "w1", "4"])?,
        spawn(&["worker", "w2", "4"])?,
        spawn(&["gateway", "gw-a", "0", "1", "4"])?,
        spawn(&["gateway", "gw-b", "2", "3", "4"])?,
    ];
    println!(
        "* 2 gateway processes, 2 workers; identifying 4 shards through one queue in Redis (5 s apart)"
    );
    for shard in 0..4 {
        if !discord
            .wait_for_ready(shard, 1, Duration::from_secs(60))
            .await
        {
            return Err(format!("shard {shard} never got READY").into());
        }
    }
    let mut conversation = discord.conversation();
    let mut expect = 0;
    for guild in discord.guild_ids() {
        let channel = discord.channel_ids(guild)[0];
        discord.user_message(channel, "alice", "!ping").await;
        expect += 1;
    }
    let answered = wait_answers(&mut conversation, expect).await?;
    println!("* {answered} pings answered; handing shard 1 from gw-a to gw-b");
    send_handover_to(&redis_url, "gw-a", 1, "gw-b").await?;
    if !discord
        .wait_for_resumed(1, 1, Duration::from_secs(30))
        .await
    {
        return Err("shard 1 was not resumed by gw-b".into());
    }
    let guild = discord
        .guild_ids()
        .into_iter()
        .find(|&g| discord.shard_of(g) == 1)
        .ok_or("no guild on shard 1")?;
    discord
        .user_message(discord.channel_ids(guild)[0], "alice", "!ping")
        .await;
    wait_answers(&mut conversation, 1).await?;
    println!(
        "* shard 1 resumed in gw-b with no new IDENTIFY ({} in all); done",
        discord.identifies().len()
    );
    Ok(())
}

async fn send_handover_to(redis_url: &str, from: &str, shard: u32, to: &str) -> Result<(), Error> {
    let redis = redis::Client::open(redis_url)?;
    Handover::new(redis, DEFAULT_PREFIX)
        .await?
        .send(
            from,
            &Control::Give {
                shard,
                to: to.to_owned(),
            },
        )
        .await?;
    Ok(())
}

/// Prints the conversation until `count` answers of the bot came.
async fn wait_answers(
    conversation: &mut tokio::sync::broadcast::Receiver<nostrum_core::local::ConversationLine>,
    count: usize,
) -> Result<usize, Error> {
    let mut answers = 0;
    while answers < count {
        let line = tokio::time::timeout(Duration::from_secs(30), conversation.recv())
            .await
            .map_err(|_| "no answer within 30 s")??;
        println!("  #{} {}: {}", line.channel_id, line.author, line.content);
        if line.from_bot {
            answers += 1;
        }
    }
    Ok(answers)
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,nostrum_redis=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    let num = |i: usize| arg(i).parse::<u32>().unwrap_or(0);
    let result = match arg(0).as_str() {
        "" => demo().await,
        "gateway" => gateway(arg(1), num(2), num(3), num(4)).await,
        "worker" => worker(arg(1), num(2)).await,
        "handover" => match env("REDIS_URL") {
            Ok(url) => send_handover_to(&url, &arg(1), num(2), &arg(3)).await,
            Err(err) => Err(err),
        },
        other => Err(format!("unknown mode {other:?}").into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
