//! REST: every operation of Discord's API v10 as a typed method of [`Http`], rate limited.
//!
//! - The route table [`ROUTES`] and most methods are generated from Discord's OpenAPI spec by
//!   `tools/gen_routes.py` (a test checks the table against the spec). Each method is named after
//!   the spec's `operationId` (`list_messages`, `get_guild`, `create_interaction_response`, ...) and
//!   returns a builder that sends on `.await` and answers a twilight-model type (or
//!   `serde_json::Value` where twilight has none; `.untyped()` asks for JSON anywhere).
//! - The most used routes have hand-polished builders ([`CreateMessage`], [`UpdateGuildMember`],
//!   [`ExecuteWebhook`], ...). Every builder checks what Discord documents (lengths, counts,
//!   ranges, required fields) and reports a mistake on `.await`, without sending.
//! - Rate limits: see [`ratelimit`]. Retries: 429s always (after `retry_after`); 5xx and lost
//!   connections for idempotent requests, with back-off.
//! - Webhook and interaction routes never send the bot token; their tokens never reach a log line
//!   or an error ([`HttpError::request`] shows `:token`).

mod error;
pub mod ratelimit;
mod request;
mod route;
pub mod routes;
mod send;

pub use error::{FieldError, HttpError, HttpErrorKind};
pub use request::*;
pub use route::{Auth, BodyKind, Check, FieldRule, Method, QueryKind, QueryParam, Route};
pub use routes::ROUTES;
pub use send::AUDIT_LOG_REASON_MAX;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use twilight_model::gateway::connection_info::BotConnectionInfo;
use twilight_model::user::CurrentUser;

use self::ratelimit::{InProcessLimiter, RateLimiter};
use crate::Token;

/// Discord's REST base; `.api_base(..)` replaces it (for a proxy such as nirn-proxy, or the local
/// Discord). Paths stay `/api/v10/...`.
pub const DISCORD_API_BASE: &str = "https://discord.com";

/// The REST client. Cheap to clone: clones share the connection pool and the rate limiter.
///
/// ```no_run
/// # async fn run() -> Result<(), nostrum_core::http::HttpError> {
/// use nostrum_core::http::Http;
/// use nostrum_core::model::id::Id;
///
/// let http = Http::new(std::env::var("DISCORD_TOKEN").unwrap_or_default());
/// http.create_message(Id::new(381_880_193_700_069_377)).content("pyongyang!").await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Http(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    client: reqwest::Client,
    token: Option<Token>,
    api_base: String,
    limiter: Arc<dyn RateLimiter>,
    retries: u32,
    rate_limit_retries: u32,
}

/// Builds an [`Http`].
#[derive(Debug)]
#[must_use]
pub struct HttpBuilder {
    token: Option<Token>,
    api_base: String,
    timeout: Duration,
    limiter: Option<Arc<dyn RateLimiter>>,
    retries: u32,
    rate_limit_retries: u32,
}

impl HttpBuilder {
    /// Replaces `https://discord.com` in every URL (a proxy, the local Discord).
    pub fn api_base(mut self, base: impl Into<String>) -> Self {
        self.api_base = base.into().trim_end_matches('/').to_owned();
        self
    }

    /// How long one attempt of a request may take, connection and answer (default 10 s). Waiting
    /// for the rate limiter is not counted.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The rate limiter (default: an [`InProcessLimiter`] with 50 requests per second);
    /// [`NoLimiter`](ratelimit::NoLimiter) turns limiting off.
    pub fn ratelimiter(mut self, limiter: impl RateLimiter) -> Self {
        self.limiter = Some(Arc::new(limiter));
        self
    }

    /// A rate limiter shared with other clients.
    pub fn shared_ratelimiter(mut self, limiter: Arc<dyn RateLimiter>) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// How often an idempotent request is retried after a 5xx or a lost connection (default 3).
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// How often a request is retried after a 429 before failing (default 10).
    pub fn rate_limit_retries(mut self, retries: u32) -> Self {
        self.rate_limit_retries = retries;
        self
    }

    /// The client.
    pub fn build(self) -> Http {
        let client = reqwest::Client::builder()
            .timeout(self.timeout)
            .user_agent(concat!(
                "DiscordBot (https://example.invalid/nostrum-rs, ",
                env!("CARGO_PKG_VERSION"),
                ")"
            ))
            .build()
            .unwrap_or_default();
        Http(Arc::new(Inner {
            client,
            token: self.token,
            api_base: self.api_base,
            limiter: self
                .limiter
                .unwrap_or_else(|| Arc::new(InProcessLimiter::new())),
            retries: self.retries,
            rate_limit_retries: self.rate_limit_retries,
        }))
    }
}

impl Http {
    /// A client with a bot token.
    pub fn new(token: impl Into<Token>) -> Self {
        Self::builder(Some(token.into())).build()
    }

    /// A client to configure; `None` for webhook and interaction routes only.
    pub fn builder(token: Option<Token>) -> HttpBuilder {
        HttpBuilder {
            token,
            api_base: DISCORD_API_BASE.to_owned(),
            timeout: Duration::from_secs(10),
            limiter: None,
            retries: 3,
            rate_limit_retries: 10,
        }
    }

    /// The base URL in use.
    pub fn api_base(&self) -> &str {
        &self.0.api_base
    }

    /// `GET /gateway/bot` (`get_bot_gateway`): the URL, the recommended shard count and the
    /// session start limit.
    pub fn gateway_bot(&self) -> Request<'_, BotConnectionInfo> {
        self.get_bot_gateway()
    }

    /// `GET /users/@me` (`get_my_user`).
    pub fn current_user(&self) -> Request<'_, CurrentUser> {
        self.get_my_user()
    }

    /// A request to any route of the table, with its path parameters in order, answered as JSON.
    ///
    /// ```no_run
    /// # async fn run(http: nostrum_core::http::Http) -> Result<(), nostrum_core::http::HttpError> {
    /// use nostrum_core::http::routes;
    /// let pins = http.route(&routes::LIST_PINS, &["381880193700069377"]).query("limit", 10).await?;
    /// # let _ = pins; Ok(()) }
    /// ```
    pub fn route(&self, route: &'static Route, params: &[&str]) -> Request<'_, Value> {
        Request::new(
            self,
            route,
            params.iter().map(|p| (*p).to_owned()).collect(),
        )
    }
}
