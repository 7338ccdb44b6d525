//! Shards and consumers across processes, on Redis.
//!
//! Nostrum grows past one node with Erlang distribution; this crate gives a Rust bot the same on
//! Redis:
//!
//! - [`RedisIdentifyQueue`]: one identify queue for every gateway process of a bot, so at most one
//!   IDENTIFY per 5 s per `max_concurrency` bucket leaves across all of them, within the session
//!   start limit.
//! - [`RedisRateLimiter`]: the REST rate limiter's buckets and global limit in Redis, so many
//!   processes with one token stay under Discord's limits together.
//! - [`RedisCache`]: a cache backend every worker reads: the gateway processes write it.
//! - event streams: a gateway process publishes each dispatch to a Redis Stream per shard; worker
//!   processes run consumers from a consumer group, acknowledge each event after its handlers end
//!   and claim the pending events of a worker that died.
//! - shard handover: stop a shard in one process and resume its session in another.

#![warn(missing_docs)]

mod cache;
mod handover;
mod identify;
mod ratelimit;
mod stream;
pub use cache::{
    RedisCache, RedisCacheError, RedisCacheErrorKind, RedisCacheReader, RedisCacheWriter,
};
pub mod testing;

pub use handover::{Command, Handover};
pub use identify::{RedisIdentifyQueue, RedisIdentifyQueueBuilder};
pub use ratelimit::{RedisRateLimiter, RedisRateLimiterBuilder};
pub use stream::{
    DEFAULT_PREFIX, PublisherConfig, RedisPublisher, Worker, WorkerConfig, WorkerError,
    WorkerStats, WorkerStop, stream_key,
};
