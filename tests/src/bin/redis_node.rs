//! One process of the multi-process test (tests/tests/redis_cluster.rs): a gateway process that
//! runs a shard range and publishes to Redis, or a worker that handles events from the consumer
//! group and records each one it handled in Redis.
//!
//! ```text
//! redis_node gateway --redis URL --gateway WS --api HTTP --token T --first 0 --last 1 --total 4 --name gw-a
//! redis_node worker  --redis URL --api HTTP --token T --total 4 --name w1 [--claim-idle-ms 2000]
//! ```

use std::{collections::HashMap, sync::Arc, time::Duration};

use nostrum_core::{
    Client, EventKind, EventSet, Shards, cache::Cache, gateway::IdentifyLimiter, http::Http,
    model::gateway::payload::incoming::TypingStart, prelude::*,
};
use nostrum_redis::{
    Handover, PublisherConfig, RedisIdentifyQueue, RedisPublisher, Worker, WorkerConfig,
};
use redis::aio::ConnectionManager;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// `--key value` pairs.
fn args() -> (String, HashMap<String, String>) {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_default();
    let mut map = HashMap::new();
    while let (Some(key), Some(value)) = (args.next(), args.next()) {
        map.insert(key.trim_start_matches("--").to_owned(), value);
    }
    (mode, map)
}

fn get(args: &HashMap<String, String>, key: &str) -> Result<String, Error> {
    args.get(key)
        .cloned()
        .ok_or_else(|| format!("--{key} is required").into())
}

fn number(args: &HashMap<String, String>, key: &str) -> Result<u32, Error> {
    Ok(get(args, key)?.parse()?)
}

/// Records every TYPING_START it handles: `seen` counts each event number (so duplicates show),
/// `by:{worker}` counts per worker.
struct Recorder {
    name: String,
    redis: ConnectionManager,
}

#[consumer]
impl Recorder {
    async fn on_typing_start(&self, typing: TypingStart) -> Result<(), BoxError> {
        let mut redis = self.redis.clone();
        redis::pipe()
            .hincr("test:seen", typing.timestamp, 1)
            .ignore()
            .incr(format!("test:by:{}", self.name), 1)
            .ignore()
            .query_async::<()>(&mut redis)
            .await?;
        Ok(())
    }
}

/// The events the workers handle, which the gateway processes publish.
const EVENTS: EventSet = EventSet::EMPTY.with(EventKind::TypingStart);

async fn gateway(args: HashMap<String, String>) -> Result<(), Error> {
    let redis = redis::Client::open(get(&args, "redis")?)?;
    let token = get(&args, "token")?;
    let name = get(&args, "name")?;
    let (first, last, total) = (
        number(&args, "first")?,
        number(&args, "last")?,
        number(&args, "total")?,
    );
    let http = Http::builder(Some(token.clone().into()))
        .api_base(get(&args, "api")?)
        .build();
    let info = http.gateway_bot().await?;
    let queue = RedisIdentifyQueue::from_session_start_limit(
        ConnectionManager::new(redis.clone()).await?,
        &info.session_start_limit,
    )
    .await?;
    let queue: Arc<dyn IdentifyLimiter> = Arc::new(queue);
    let publisher = RedisPublisher::new(redis.clone(), PublisherConfig::new(EVENTS)).await?;
    let client = Client::builder(token)
        .gateway_url(get(&args, "gateway")?)
        .api_base(get(&args, "api")?)
        .shards(Shards::Range { first, last, total })
        .cache_backend(Cache::none())
        .identify_queue(queue)
        .sink(publisher.clone())
        .build();
    let handover = Handover::new(redis.clone(), nostrum_redis::DEFAULT_PREFIX).await?;
    tokio::spawn(handover.serve(redis, name, client.shards().clone(), total, Some(publisher)));
    client.run().await?;
    Ok(())
}

async fn worker(args: HashMap<String, String>) -> Result<(), Error> {
    let redis = redis::Client::open(get(&args, "redis")?)?;
    let name = get(&args, "name")?;
    let http = Http::builder(Some(get(&args, "token")?.into()))
        .api_base(get(&args, "api")?)
        .build();
    let mut config = WorkerConfig::new(name.clone(), number(&args, "total")?);
    if let Some(ms) = args.get("claim-idle-ms") {
        config.claim_idle = Duration::from_millis(ms.parse()?);
    }
    let recorder = Recorder {
        name,
        redis: ConnectionManager::new(redis.clone()).await?,
    };
    Worker::new(redis, config, http)
        .consumer(recorder)
        .run()
        .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,nostrum_redis=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let (mode, args) = args();
    match mode.as_str() {
        "gateway" => gateway(args).await,
        "worker" => worker(args).await,
        other => Err(format!("unknown mode {other:?}: gateway or worker").into()),
    }
}
