//! REST: the client handlers reach through `ctx.http()`, and `Http` on its own for scripts.
//!
//! This first cut covers what a bot needs to start and to talk (gateway info, the current user,
//! create message); the REST issue grows it to every operation of Discord's spec and adds the rate
//! limiter.

mod error;
mod request;

pub use error::{HttpError, HttpErrorKind};
pub use request::{CreateMessage, MESSAGE_CONTENT_MAX};

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use twilight_model::gateway::connection_info::BotConnectionInfo;
use twilight_model::id::Id;
use twilight_model::id::marker::ChannelMarker;
use twilight_model::user::CurrentUser;

use crate::Token;

/// Discord's REST base; `.api_base(..)` replaces it (for a proxy such as nirn-proxy, or the local
/// Discord). Paths stay `/api/v10/...`.
pub const DISCORD_API_BASE: &str = "https://discord.com";

/// The REST client. Cheap to clone.
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
}

/// Builds an [`Http`].
#[derive(Debug)]
#[must_use]
pub struct HttpBuilder {
    token: Option<Token>,
    api_base: String,
    timeout: Duration,
}

impl HttpBuilder {
    /// Replaces `https://discord.com` in every URL.
    pub fn api_base(mut self, base: impl Into<String>) -> Self {
        self.api_base = base.into().trim_end_matches('/').to_owned();
        self
    }

    /// How long a request may take, in all (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
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
        }
    }

    /// The base URL in use.
    pub fn api_base(&self) -> &str {
        &self.0.api_base
    }

    /// `POST /channels/{channel.id}/messages`.
    pub fn create_message(&self, channel_id: Id<ChannelMarker>) -> CreateMessage<'_> {
        CreateMessage::new(self, channel_id)
    }

    /// `GET /gateway/bot`: the URL, the recommended shard count and the session start limit.
    ///
    /// # Errors
    /// As every request: see [`HttpErrorKind`].
    pub async fn gateway_bot(&self) -> Result<BotConnectionInfo, HttpError> {
        self.request::<BotConnectionInfo, ()>(Method::GET, "/gateway/bot", None)
            .await
    }

    /// `GET /users/@me`.
    ///
    /// # Errors
    /// As every request: see [`HttpErrorKind`].
    pub async fn current_user(&self) -> Result<CurrentUser, HttpError> {
        self.request::<CurrentUser, ()>(Method::GET, "/users/@me", None)
            .await
    }

    /// Sends a request to `path` (below `/api/v10`) and parses the answer.
    pub(crate) async fn request<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, HttpError> {
        let url = format!("{}/api/v10{path}", self.0.api_base);
        let mut request = self.0.client.request(method, &url);
        if let Some(token) = &self.0.token {
            request = request.header(reqwest::header::AUTHORIZATION, token.authorization());
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|err| HttpError::request(path, err))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|err| HttpError::request(path, err))?;
        if !status.is_success() {
            return Err(HttpError::status(status.as_u16(), &bytes));
        }
        serde_json::from_slice(&bytes).map_err(HttpError::json)
    }
}
