//! `Client`: builds the shards, runs each shard's pipeline in its own task, and stops on a fatal error.
//!
//! Per shard, one direction: frame -> (gateway) raw dispatch -> skip what no one wants -> typed event
//! -> the consumers' tasking. There is no central dispatcher that every event must cross.

mod manager;
mod members;
mod sink;

pub use manager::{ShardInfo, ShardManager};
pub(crate) use members::MemberRequests;
pub use members::{GuildMembers, MembersError, MembersRequest};
pub use sink::EventSink;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use twilight_model::gateway::Intents;

use crate::dispatch::{ConsumerGroup, ConsumerOptions, EventKeys};
use crate::gateway::{
    Compression, DispatchSpan, GatewayConfig, GatewayError, IdentifyLimiter, IdentifyQueue, Next,
    Shard, ShardEvent, ShardId,
};
use crate::http::{Http, HttpError};
use serde_json::value::RawValue;
use twilight_model::gateway::payload::incoming::GuildCreate;

use crate::cache::{Cache, CacheConfig};
use crate::{Consumer, Context, Event, EventKind, EventSet, ShardContext, Token};

/// How many shards, and which of them this process runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Shards {
    /// Discord's recommendation, from `GET /gateway/bot`.
    #[default]
    Auto,
    /// This many, all in this process.
    Fixed(u32),
    /// Shards `first..=last` of `total`, for one process of many.
    Range {
        /// The first shard this process runs.
        first: u32,
        /// The last shard this process runs.
        last: u32,
        /// The total across processes.
        total: u32,
    },
}

/// Why [`Client::run`] stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A shard stopped on a fatal gateway error (bad token, disallowed intents, ...).
    #[error("shard {shard} stopped: {source}")]
    Gateway {
        /// The shard.
        shard: ShardId,
        /// The gateway's error, which names the cause.
        #[source]
        source: GatewayError,
    },
    /// `GET /gateway/bot` failed, so the shards could not be planned.
    #[error("could not get the gateway's information: {0}")]
    GatewayInfo(#[source] HttpError),
    /// The shard plan is impossible (`first > last` or `last >= total`, or no shard).
    #[error("invalid shard plan: {0}")]
    InvalidShards(String),
}

/// Builds a [`Client`].
#[derive(Debug)]
#[must_use]
pub struct ClientBuilder {
    token: Token,
    intents: Option<Intents>,
    extra_intents: Intents,
    shards: Shards,
    compression: Compression,
    gateway_url: Option<String>,
    api_base: Option<String>,
    large_threshold: u8,
    presence: Option<serde_json::Value>,
    group: ConsumerGroup,
    cache: Cache,
    identify_queue: Option<Arc<dyn IdentifyLimiter>>,
    sink: Option<Arc<dyn EventSink>>,
    ratelimiter: Option<Arc<dyn crate::http::ratelimit::RateLimiter>>,
}

impl ClientBuilder {
    /// The identify queue the shards wait on (default: one for this process, built from
    /// `GET /gateway/bot`'s session start limit). Give several processes of one bot the same
    /// shared limiter (in Redis, say) so their IDENTIFYs are spaced together.
    pub fn identify_queue(mut self, queue: Arc<dyn IdentifyLimiter>) -> Self {
        self.identify_queue = Some(queue);
        self
    }

    /// The REST rate limiter (default: one for this process). Give the processes of one bot a shared
    /// one (in Redis, say) so that together they stay under Discord's limits.
    pub fn ratelimiter(mut self, limiter: Arc<dyn crate::http::ratelimit::RateLimiter>) -> Self {
        self.ratelimiter = Some(limiter);
        self
    }

    /// Sends every dispatch `sink` wants to it, as well as to the local consumers (a gateway
    /// process that publishes to other processes may have none). Its intents are added.
    pub fn sink(mut self, sink: impl EventSink) -> Self {
        self.sink = Some(Arc::new(sink));
        self
    }

    /// Caches what `config` says (default: [`CacheConfig::default`], everything that needs no
    /// privileged intent). The client adds the intents the cached resources need.
    pub fn cache(mut self, config: CacheConfig) -> Self {
        self.cache = Cache::in_memory(config);
        self
    }

    /// Uses another cache store (a shared one, or [`Cache::none`] to cache nothing and pay nothing).
    pub fn cache_backend(mut self, cache: Cache) -> Self {
        self.cache = cache;
        self
    }

    /// Adds a consumer with the default tasking (a task per event).
    pub fn consumer<C: Consumer>(self, consumer: C) -> Self {
        self.group.join(consumer);
        self
    }

    /// Adds a consumer with its own tasking options.
    pub fn consumer_with<C: Consumer>(self, consumer: C, options: ConsumerOptions) -> Self {
        self.group.join_with(consumer, options);
        self
    }

    /// Sets the intents, replacing the default (the union the consumers need).
    pub fn intents(mut self, intents: Intents) -> Self {
        self.intents = Some(intents);
        self
    }

    /// Adds intents to the default, such as `MESSAGE_CONTENT`, which no event implies.
    pub fn add_intents(mut self, intents: Intents) -> Self {
        self.extra_intents |= intents;
        self
    }

    /// Which shards to run (default: Discord's recommendation).
    pub fn shards(mut self, shards: Shards) -> Self {
        self.shards = shards;
        self
    }

    /// Transport compression (default zlib-stream).
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Where shards connect (`ws://127.0.0.1:PORT` for the local Discord or a gateway proxy); the
    /// client adds `?v=10&encoding=json` and the compression. Default: what `GET /gateway/bot` says.
    pub fn gateway_url(mut self, url: impl Into<String>) -> Self {
        self.gateway_url = Some(url.into());
        self
    }

    /// Replaces `https://discord.com` in every REST URL (paths stay `/api/v10/...`).
    pub fn api_base(mut self, base: impl Into<String>) -> Self {
        self.api_base = Some(base.into());
        self
    }

    /// Members above which a guild counts as large, 50..=250.
    pub fn large_threshold(mut self, threshold: u8) -> Self {
        self.large_threshold = threshold.clamp(50, 250);
        self
    }

    /// The presence sent in IDENTIFY (the `d` of op 3).
    pub fn presence(mut self, presence: serde_json::Value) -> Self {
        self.presence = Some(presence);
        self
    }

    /// The client.
    pub fn build(self) -> Client {
        let mut http = Http::builder(Some(self.token.clone()));
        if let Some(base) = &self.api_base {
            http = http.api_base(base.clone());
        }
        if let Some(limiter) = &self.ratelimiter {
            http = http.shared_ratelimiter(Arc::clone(limiter));
        }
        Client {
            http: http.build(),
            manager: ShardManager::new(),
            builder: self,
        }
    }

    /// Builds the client and runs it: see [`Client::run`].
    ///
    /// # Errors
    /// See [`Client::run`].
    pub async fn run(self) -> Result<(), ClientError> {
        self.build().run().await
    }
}

/// A bot: its shards, its consumers and its REST client.
///
/// ```no_run
/// use nostrum_core::prelude::*;
///
/// struct Bot;
/// #[consumer]
/// impl Bot {
///     async fn on_ready(&self, ready: Ready) {
///         println!("ready as {}", ready.user.name);
///     }
/// }
///
/// # async fn run() -> Result<(), nostrum_core::ClientError> {
/// Client::builder(std::env::var("DISCORD_TOKEN").unwrap_or_default()).consumer(Bot).run().await
/// # }
/// ```
#[derive(Debug)]
pub struct Client {
    http: Http,
    manager: ShardManager,
    builder: ClientBuilder,
}

impl Client {
    /// A builder with a bot token.
    pub fn builder(token: impl Into<Token>) -> ClientBuilder {
        ClientBuilder {
            token: token.into(),
            intents: None,
            extra_intents: Intents::empty(),
            shards: Shards::Auto,
            compression: Compression::default(),
            gateway_url: None,
            api_base: None,
            large_threshold: 50,
            presence: None,
            group: ConsumerGroup::new(),
            cache: Cache::in_memory(CacheConfig::default()),
            identify_queue: None,
            sink: None,
            ratelimiter: None,
        }
    }

    /// The REST client.
    pub fn http(&self) -> &Http {
        &self.http
    }

    /// The consumers; they can join and leave while the client runs.
    pub fn consumers(&self) -> &ConsumerGroup {
        &self.builder.group
    }

    /// The shards: their state and latency; start, stop and restart them at run time.
    pub fn shards(&self) -> &ShardManager {
        &self.manager
    }

    /// The intents the shards identify with.
    pub fn intents(&self) -> Intents {
        let sink = self
            .builder
            .sink
            .as_ref()
            .map_or(Intents::empty(), |sink| sink.intents());
        self.builder
            .intents
            .unwrap_or_else(|| self.builder.group.intents() | sink)
            | self.builder.extra_intents
    }

    /// Connects every shard and runs until a shard stops on a fatal error (returned) or
    /// [`ShardManager::shutdown`] is called (`Ok`).
    ///
    /// # Errors
    /// [`ClientError::Gateway`] names the shard and the cause of a fatal close (4004 bad token,
    /// 4014 disallowed intents, ...); [`ClientError::GatewayInfo`] when `GET /gateway/bot` fails.
    pub async fn run(self) -> Result<(), ClientError> {
        let info = self
            .http
            .gateway_bot()
            .await
            .map_err(ClientError::GatewayInfo)?;
        let (first, last, total) = match self.builder.shards {
            Shards::Auto => (0, info.shards.max(1) - 1, info.shards.max(1)),
            Shards::Fixed(total) => (0, total.max(1) - 1, total.max(1)),
            Shards::Range { first, last, total } => (first, last, total),
        };
        if first > last || last >= total {
            return Err(ClientError::InvalidShards(format!(
                "{first}..={last} of {total}"
            )));
        }
        let limit = &info.session_start_limit;
        let queue: Arc<dyn IdentifyLimiter> = match &self.builder.identify_queue {
            Some(queue) => Arc::clone(queue),
            None => Arc::new(IdentifyQueue::with_total(
                limit.max_concurrency.max(1) as u32,
                limit.total as u32,
                limit.remaining as u32,
                Duration::from_millis(limit.reset_after),
            )),
        };
        let mut config = GatewayConfig::new(self.builder.token.clone(), self.intents());
        config.gateway_url = self.builder.gateway_url.clone().unwrap_or(info.url);
        config.compression = self.builder.compression;
        config.large_threshold = self.builder.large_threshold;
        config.presence = self.builder.presence.clone();
        config.identify_queue = queue;
        let config = Arc::new(config);
        tracing::info!(shards = %format_args!("{first}..={last} of {total}"), intents = ?config.intents, "starting");

        let (fatal_tx, mut fatal_rx) = mpsc::unbounded_channel();
        let runtime = Arc::new(Runtime {
            group: self.builder.group.clone(),
            http: self.http.clone(),
            cache: self.builder.cache.clone(),
            members: Arc::default(),
            sink: self.builder.sink.clone(),
            progress: Progress::new(last - first + 1),
            fatal: fatal_tx,
        });
        self.manager
            .attach(Arc::clone(&config), Arc::clone(&runtime));
        for number in first..=last {
            self.manager.start(ShardId::new(number, total));
        }
        drop(runtime);
        tokio::select! {
            fatal = fatal_rx.recv() => match fatal {
                Some((shard, source)) => {
                    self.manager.stop_all().await;
                    Err(ClientError::Gateway { shard, source })
                }
                None => Ok(()),
            },
            () = self.manager.shutdown_requested() => Ok(()),
        }
    }
}

/// What every shard task shares.
#[derive(Debug)]
pub(crate) struct Runtime {
    group: ConsumerGroup,
    http: Http,
    cache: Cache,
    members: Arc<MemberRequests>,
    sink: Option<Arc<dyn EventSink>>,
    progress: Progress,
    fatal: mpsc::UnboundedSender<(ShardId, GatewayError)>,
}

/// Start-up progress a person can follow: shards ready x/y, guilds available x/y.
#[derive(Debug)]
struct Progress {
    shards: u32,
    ready: AtomicU32,
    guilds_expected: AtomicU32,
    guilds_available: AtomicU32,
}

impl Progress {
    fn new(shards: u32) -> Self {
        Self {
            shards,
            ready: AtomicU32::new(0),
            guilds_expected: AtomicU32::new(0),
            guilds_available: AtomicU32::new(0),
        }
    }

    fn observe(&self, name: &str, data: &str) {
        match name {
            "READY" => {
                #[derive(serde::Deserialize)]
                struct Ready {
                    #[serde(default)]
                    guilds: Vec<serde::de::IgnoredAny>,
                }
                let guilds = serde_json::from_str::<Ready>(data)
                    .map_or(0, |ready| ready.guilds.len() as u32);
                let expected = self.guilds_expected.fetch_add(guilds, Ordering::Relaxed) + guilds;
                let ready = self.ready.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::info!(
                    "shards ready {ready}/{}, guilds available {}/{expected}",
                    self.shards,
                    self.guilds_available.load(Ordering::Relaxed)
                );
            }
            "GUILD_CREATE" => {
                let expected = self.guilds_expected.load(Ordering::Relaxed);
                let available = self.guilds_available.load(Ordering::Relaxed);
                if available < expected {
                    let available = self.guilds_available.fetch_add(1, Ordering::Relaxed) + 1;
                    if available == expected || available.is_power_of_two() {
                        tracing::info!(
                            "shards ready {}/{}, guilds available {available}/{expected}",
                            self.ready.load(Ordering::Relaxed),
                            self.shards
                        );
                    }
                }
            }
            _ => {}
        }
    }
}

/// A dispatch's `d` as the shard gave it.
#[derive(Clone, Copy, Debug)]
enum Data<'a> {
    /// Validated JSON.
    Checked(&'a RawValue),
    /// Not walked yet: `span.data` is `d` only if it parses (see [`Shard::next_lazy`]).
    Unchecked {
        frame: &'a str,
        span: &'a DispatchSpan,
    },
}

impl<'a> Data<'a> {
    /// The text, checked or not.
    fn text(self) -> &'a str {
        match self {
            Self::Checked(raw) => raw.get(),
            Self::Unchecked { frame, span } => span
                .data
                .clone()
                .and_then(|range| frame.get(range))
                .unwrap_or("null"),
        }
    }

    /// The validated JSON of `d`, walking it (or the whole frame, when `d` was not its last key)
    /// if the shard did not; `None` for a malformed message, with a warning (it is skipped, as
    /// the shard skips any malformed message).
    fn checked(self) -> Option<&'a RawValue> {
        let (frame, span) = match self {
            Self::Checked(raw) => return Some(raw),
            Self::Unchecked { frame, span } => (frame, span),
        };
        match crate::gateway::checked_span(frame, span.clone()) {
            Ok(span) => Some(match span.data.and_then(|range| frame.get(range)) {
                Some(data) => crate::gateway::validated_raw(data),
                None => crate::gateway::null(),
            }),
            Err(error) => {
                tracing::warn!(%error, len = frame.len(), "malformed gateway message, skipped");
                None
            }
        }
    }

    /// The typed event (`kind` is `name`'s, looked up once by the caller) and the validated JSON it
    /// came from. Unchecked text is typed first: a
    /// parse that succeeds read all of it as one JSON value, which checks it. Only when that
    /// fails is it checked apart (then typed again from the checked `d`, or delivered as
    /// `Event::Unknown`).
    fn into_event(self, name: &str, kind: Option<EventKind>) -> Option<(Event, &'a RawValue)> {
        if let Self::Unchecked { .. } = self
            && let Some(kind) = kind
            && kind.is_dispatch()
        {
            let text = self.text();
            if let Ok(event) = Event::parse_payload(kind, text) {
                return Some((event, crate::gateway::validated_raw(text)));
            }
        }
        let raw = self.checked()?;
        Some((Event::from_dispatch(name, raw), raw))
    }
}

/// One dispatch: skip it at the envelope when no consumer, no cache and no members request needs
/// it; else type it once, let the cache see it first (filling old values), then hand it to the
/// consumers.
async fn handle_dispatch(
    runtime: &Runtime,
    ctx: &Context,
    cache_wants: EventSet,
    seq: u64,
    name: &str,
    data: Data<'_>,
) {
    runtime.progress.observe(name, data.text());
    let group = &runtime.group;
    let kind = EventKind::from_name(name);
    let group_wants = group.wants(kind.unwrap_or(EventKind::Unknown));
    let cached = kind.is_some_and(|kind| cache_wants.contains(kind));
    let members = kind == Some(EventKind::GuildMembersChunk) && runtime.members.any_pending();
    let sink = runtime
        .sink
        .as_deref()
        .filter(|sink| sink.wants().contains(kind.unwrap_or(EventKind::Unknown)));
    if !(group_wants || cached || members) {
        if let Some(sink) = sink
            && let Some(raw) = data.checked()
        {
            sink.send(ctx.shard().id(), seq, name, raw, None);
        }
        return; // skipped at the envelope: no payload parsed
    }
    let Some((mut event, data)) = data.into_event(name, kind) else {
        return;
    };
    let keys = if group_wants && group.needs_keys() {
        EventKeys::scan(name, data)
    } else {
        EventKeys::default()
    };
    if cached {
        runtime.cache.update(&mut event);
    }
    match &event {
        Event::GuildMembersChunk(chunk) if members => {
            runtime.members.feed(chunk);
        }
        Event::GuildCreate(create) if runtime.cache.request_members_on_start() => {
            if let GuildCreate::Available(guild) = &**create
                && guild.large
                && let Ok(sender) = ctx.shard().sender()
            {
                let request = serde_json::json!({ "guild_id": guild.id, "query": "", "limit": 0 });
                if let Err(err) = sender.request_guild_members(request) {
                    tracing::warn!(guild = %guild.id, error = %err, "could not request the members of a large guild");
                }
            }
        }
        _ => {}
    }
    if let Some(sink) = sink {
        sink.send(ctx.shard().id(), seq, name, data, Some(&event));
    }
    if group_wants {
        group.dispatch(ctx, event, keys).await;
    }
}

/// Makes the shard skip, without reading their payload, the dispatches `handle_dispatch` would
/// skip: those no consumer or subscription (read live from the group's snapshot, so joining and
/// leaving at run time is followed), cache or sink wants. GUILD_MEMBERS_CHUNK (members requests),
/// READY and GUILD_CREATE (startup progress, member requests) and RESUMED always pass, and so
/// do names without an [`EventKind`] (they become `Event::Unknown`, which a consumer may take).
fn set_wanted(shard: &mut Shard, runtime: &Arc<Runtime>, cache_wants: EventSet) {
    let sink_wants = runtime
        .sink
        .as_deref()
        .map_or(EventSet::EMPTY, |sink| sink.wants());
    let always = EventSet::from_kinds(&[
        EventKind::GuildMembersChunk,
        EventKind::Ready,
        EventKind::GuildCreate,
        EventKind::Resumed,
    ])
    .union(cache_wants)
    .union(sink_wants);
    let runtime = Arc::clone(runtime);
    shard.set_wanted(move |name| match EventKind::from_name(name) {
        Some(kind) => always.contains(kind) || runtime.group.wants(kind),
        None => true,
    });
}

/// One shard's pipeline, in its own task: raw dispatch -> skip -> typed event -> consumers.
pub(crate) async fn run_shard(mut shard: Shard, runtime: Arc<Runtime>) {
    let id = shard.id();
    let ctx = Context::with_members(
        ShardContext::new(shard.state(), shard.sender()),
        runtime.http.clone(),
        runtime.cache.clone(),
        Arc::clone(&runtime.members),
    );
    let group = &runtime.group;
    let cache_wants = runtime.cache.wants();
    set_wanted(&mut shard, &runtime, cache_wants);
    loop {
        let event = match shard.next_lazy().await {
            Ok(Next::Unchecked { frame, span }) => {
                let name = frame.get(span.name.clone()).unwrap_or("");
                let data = Data::Unchecked { frame, span: &span };
                handle_dispatch(&runtime, &ctx, cache_wants, span.seq, name, data).await;
                continue;
            }
            Ok(Next::Event(ShardEvent::Dispatch { seq, name, data })) => {
                handle_dispatch(&runtime, &ctx, cache_wants, seq, name, Data::Checked(data)).await;
                continue;
            }
            Ok(Next::Event(event)) => event,
            Err(err) => {
                if matches!(err.kind(), crate::gateway::GatewayErrorKind::Closed) {
                    tracing::info!(shard = %id, "shard stopped");
                } else {
                    tracing::error!(shard = %id, error = %err, "shard stopped on a fatal error");
                    let _ = runtime.fatal.send((id, err));
                }
                return;
            }
        };
        let event = match event {
            ShardEvent::Dispatch { .. } => continue, // handled above
            ShardEvent::Connected => Event::ShardConnected(crate::event::ShardConnected {
                shard_id: id.number,
            }),
            ShardEvent::Disconnected { code, will_resume } => {
                Event::ShardDisconnected(crate::event::ShardDisconnected {
                    shard_id: id.number,
                    code,
                    will_resume,
                })
            }
            ShardEvent::Resumed => Event::ShardResumed(crate::event::ShardResumed {
                shard_id: id.number,
            }),
        };
        group.dispatch(&ctx, event, EventKeys::default()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::Data;
    use crate::Event;
    use crate::gateway::{DispatchSpan, checked_span};

    /// The span the shard hands over unchecked for a frame in Discord's layout.
    fn unchecked(frame: &str) -> DispatchSpan {
        let start = frame.find(r#","op":0,"d":"#).unwrap() + r#","op":0,"d":"#.len();
        let end = frame.trim_end().len() - 1;
        DispatchSpan {
            seq: 1,
            name: 6..frame[6..].find('"').unwrap() + 6,
            data: Some(start..frame[..end].trim_end().len()),
            checked: false,
        }
    }

    /// The client's lazy path (type the unchecked text first, check only when that fails) gives
    /// what the checked path gives: the same event from the same validated `d`, or nothing for a
    /// malformed frame.
    #[test]
    fn unchecked_dispatches_become_what_checked_ones_do() {
        let frames = [
            r#"{"t":"TYPING_START","s":1,"op":0,"d":{"channel_id":"2","user_id":"3","timestamp":4}}"#,
            r#"{"t":"TYPING_START","s":1,"op":0,"d":{"channel_id":"2","user_id":"3","timestamp":4},"x":[1,"}"]}"#,
            r#"{"t":"TYPING_START","s":1,"op":0,"d":{"channel_id":"2","user_id":"3","timestamp":4} }  "#,
            r#"{"t":"TYPING_START","s":1,"op":0,"d":{"channel_id":"2","user_id":"nope","timestamp":4}}"#,
            r#"{"t":"TYPING_START","s":1,"op":0,"d":{"channel_id":"2","user_id":"3","timestamp":}}"#,
            r#"{"t":"TYPING_START","s":1,"op":0,"d":{"channel_id":"2","user_id":"3","timestamp":4},"t":"X"}"#,
            r#"{"t":"TYPING_START","s":1,"op":0,"d":null}"#,
            r#"{"t":"TYPING_START","s":1,"op":0,"d":"\ud800"}"#,
            r#"{"t":"NOT_AN_EVENT_YET","s":1,"op":0,"d":{"a":1},"b":2}"#,
            r#"{"t":"NOT_AN_EVENT_YET","s":1,"op":0,"d":[}"#,
            r#"{"t":"GUILD_DELETE","s":1,"op":0,"d":{"id":"5","unavailable":true}}"#,
        ];
        for frame in frames {
            let span = unchecked(frame);
            let name = &frame[span.name.clone()];
            let lazy = Data::Unchecked { frame, span: &span }
                .into_event(name, crate::EventKind::from_name(name));
            let checked = checked_span(frame, span.clone()).ok().map(|span| {
                let raw = match span.data.map(|range| &frame[range]) {
                    Some(d) => serde_json::value::RawValue::from_string(d.to_owned()).unwrap(),
                    None => serde_json::value::RawValue::from_string("null".into()).unwrap(),
                };
                let event = Event::from_dispatch(&frame[span.name], &raw);
                (format!("{event:?}"), raw.get().to_owned())
            });
            let lazy = lazy.map(|(event, raw)| (format!("{event:?}"), raw.get().to_owned()));
            assert_eq!(lazy, checked, "{frame}");
        }
    }
}
