//! Request builders, validated as Discord documents, that report mistakes on `.await`.

/// `IntoFuture` for a hand-polished builder whose `request(self)` makes the generic [`Request`].
macro_rules! into_future {
    ($builder:ident, $out:ty) => {
        impl<'a> ::std::future::IntoFuture for $builder<'a> {
            type Output = Result<$out, crate::http::HttpError>;
            type IntoFuture =
                ::std::pin::Pin<Box<dyn ::std::future::Future<Output = Self::Output> + Send + 'a>>;

            fn into_future(self) -> Self::IntoFuture {
                ::std::future::IntoFuture::into_future(self.request())
            }
        }
    };
}

mod guild;
mod message;
mod webhook;

pub use guild::{
    BanUser, CreateGuildRole, ListGuildMembers, UpdateChannel, UpdateCurrentMember,
    UpdateCurrentUser, UpdateGuildMember, UpdateGuildRole,
};
pub use message::{
    BulkDeleteMessages, CreateMessage, ListMessages, MESSAGE_CONTENT_MAX, UpdateMessage,
};
pub use webhook::{CreateInteractionResponse, CreateWebhook, ExecuteWebhook, UpdateWebhookMessage};

use std::fmt;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::route::Route;
use super::send::{File, Parts};
use super::{Http, HttpError};

/// A request to one route; send it with `.await`. Every generated [`Http`] method returns one.
///
/// ```no_run
/// # async fn run(http: nostrum_core::http::Http) -> Result<(), nostrum_core::http::HttpError> {
/// use nostrum_core::model::id::Id;
/// let roles = http.list_guild_roles(Id::new(1)).await?;
/// http.delete_guild_role(Id::new(1), roles[0].id).reason("tidy up").await?;
/// let bans = http.list_guild_bans(Id::new(1)).query("limit", 10).await?;
/// # let _ = bans; Ok(()) }
/// ```
#[must_use = "a request does nothing until it is awaited"]
pub struct Request<'a, T> {
    http: &'a Http,
    parts: Parts,
    out: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for Request<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("request", &self.parts.name())
            .field("query", &self.parts.query)
            .field("files", &self.parts.files)
            .field("reason", &self.parts.reason)
            .finish_non_exhaustive()
    }
}

impl<'a, T> Request<'a, T> {
    pub(crate) fn new(http: &'a Http, route: &'static Route, params: Vec<String>) -> Self {
        Self {
            http,
            parts: Parts::new(route, params),
            out: PhantomData,
        }
    }

    /// Adds a query parameter; checked against the route's parameters and their ranges on `.await`.
    pub fn query(mut self, name: &str, value: impl fmt::Display) -> Self {
        self.parts.query.push((name.to_owned(), value.to_string()));
        self
    }

    /// The JSON body (a twilight-model type, a `serde_json::Value`, your own struct); checked
    /// against the route's required fields and documented limits on `.await`.
    pub fn json(mut self, body: &(impl Serialize + ?Sized)) -> Self {
        match serde_json::to_value(body) {
            Ok(value) => self.parts.body = Some(value),
            Err(err) => self.fail(HttpError::validation(format!(
                "the body does not serialize: {err}"
            ))),
        }
        self
    }

    /// Attaches a file as `files[n]` (n counting from 0), for routes that take files.
    pub fn attach(mut self, filename: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Self {
        let field = format!("files[{}]", self.parts.files.len());
        self.parts.files.push(File {
            field,
            filename: filename.into(),
            bytes: bytes.into().into(),
        });
        self
    }

    /// Attaches a file as the multipart field `field` (e.g. `file` for a sticker).
    pub fn file(
        mut self,
        field: &str,
        filename: impl Into<String>,
        bytes: impl Into<Vec<u8>>,
    ) -> Self {
        self.parts.files.push(File {
            field: field.to_owned(),
            filename: filename.into(),
            bytes: bytes.into().into(),
        });
        self
    }

    /// The audit-log reason (at most 512 characters), sent percent-encoded as `X-Audit-Log-Reason`.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.parts.reason = Some(reason.into());
        self
    }

    /// Authorizes with a user's OAuth2 bearer token instead of the bot token.
    pub fn bearer(mut self, token: impl Into<String>) -> Self {
        self.parts.bearer = Some(token.into());
        self
    }

    /// The same request, answered as raw JSON (for fields twilight-model lacks or cannot parse).
    pub fn untyped(self) -> Request<'a, Value> {
        Request {
            http: self.http,
            parts: self.parts,
            out: PhantomData,
        }
    }

    /// The route it goes to.
    pub fn route(&self) -> &'static Route {
        self.parts.route
    }

    /// Keeps the first mistake, to report on `.await`.
    pub(crate) fn fail(&mut self, err: HttpError) {
        self.parts.error.get_or_insert(err);
    }

    pub(crate) fn with_body(mut self, body: Value) -> Self {
        self.parts.body = Some(body);
        self
    }

    pub(crate) fn with_files(mut self, files: Vec<File>) -> Self {
        self.parts.files = files;
        self
    }

    pub(crate) fn with_reason(mut self, reason: Option<String>) -> Self {
        self.parts.reason = reason;
        self
    }
}

impl<'a, T: DeserializeOwned + Send + 'a> IntoFuture for Request<'a, T> {
    type Output = Result<T, HttpError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.http.send(self.parts))
    }
}

/// A check of one field, collected by the hand-polished builders.
pub(crate) fn check_chars(
    field: &str,
    value: &str,
    min: usize,
    max: usize,
) -> Result<(), HttpError> {
    let n = value.chars().count();
    if (min..=max).contains(&n) {
        Ok(())
    } else {
        Err(HttpError::validation(format!(
            "{field} is {n} characters long; it takes {min} to {max}"
        )))
    }
}

/// A check of a count of items.
pub(crate) fn check_items(field: &str, n: usize, min: usize, max: usize) -> Result<(), HttpError> {
    if (min..=max).contains(&n) {
        Ok(())
    } else {
        Err(HttpError::validation(format!(
            "{field} has {n} items; it takes {min} to {max}"
        )))
    }
}

/// A check of a number.
pub(crate) fn check_range(field: &str, value: i64, min: i64, max: i64) -> Result<(), HttpError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(HttpError::validation(format!(
            "{field} is {value}; it takes {min} to {max}"
        )))
    }
}

/// Serializes a hand-built body. Attachment ids become strings, as the spec has them
/// (twilight-model writes numbers).
pub(crate) fn to_value(body: &impl Serialize) -> Result<Value, HttpError> {
    let mut value = serde_json::to_value(body)
        .map_err(|err| HttpError::validation(format!("the body does not serialize: {err}")))?;
    let in_data = value.get("data").is_some_and(Value::is_object);
    let holder = if in_data {
        &mut value["data"]
    } else {
        &mut value
    };
    if let Some(Value::Array(attachments)) = holder.get_mut("attachments") {
        for id in attachments.iter_mut().filter_map(|a| a.get_mut("id")) {
            if let Some(n) = id.as_u64() {
                *id = Value::String(n.to_string());
            }
        }
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use twilight_model::id::Id;

    use crate::http::{Http, HttpErrorKind};

    fn offline() -> Http {
        Http::builder(Some("t".into()))
            .api_base("http://127.0.0.1:9")
            .build()
    }

    async fn validation(
        request: impl std::future::IntoFuture<Output = Result<impl Sized, crate::http::HttpError>>,
    ) -> String {
        match request.await {
            Err(err) => match err.kind() {
                HttpErrorKind::Validation { message } => message.clone(),
                other => panic!("not a validation error: {other:?}"),
            },
            Ok(_) => panic!("sent"),
        }
    }

    #[tokio::test]
    async fn generic_requests_check_query_body_reason_and_auth() {
        let http = offline();
        let msg = validation(http.list_guild_bans(Id::new(1)).query("limit", 5000)).await;
        assert!(msg.contains("limit=5000"), "{msg}");
        let msg = validation(http.list_guild_bans(Id::new(1)).query("nope", 1)).await;
        assert!(msg.contains("no query parameter nope"), "{msg}");
        let msg = validation(
            http.delete_guild_role(Id::new(1), Id::new(2))
                .reason("x".repeat(513)),
        )
        .await;
        assert!(msg.contains("513"), "{msg}");
        let msg = validation(
            http.create_guild_emoji(Id::new(1))
                .json(&serde_json::json!({"image": "x"})),
        )
        .await;
        assert!(msg.contains("name is required"), "{msg}");
        let msg = validation(http.follow_channel(Id::new(1))).await;
        assert!(msg.contains("webhook_channel_id is required"), "{msg}");
        let msg = validation(http.get_my_guild_member(Id::new(1))).await;
        assert!(msg.contains("OAuth2"), "{msg}");
        let tokenless = Http::builder(None).api_base("http://127.0.0.1:9").build();
        let msg = validation(tokenless.list_guild_roles(Id::new(1))).await;
        assert!(msg.contains("needs a bot token"), "{msg}");
        let msg = validation(http.list_guild_roles(Id::new(1)).attach("a.png", vec![1])).await;
        assert!(msg.contains("takes no files"), "{msg}");
    }
}
