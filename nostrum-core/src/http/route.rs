//! The route table's types: one [`Route`] per operation of Discord's OpenAPI spec, with what it takes.

use std::fmt::Write as _;

/// An HTTP method of Discord's API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
}

impl Method {
    /// The method's name, e.g. `"GET"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }

    /// Whether sending it twice has the effect of sending it once (`GET`, `PUT`, `DELETE`): only
    /// those are retried after a 5xx or a connection error.
    pub const fn is_idempotent(self) -> bool {
        matches!(self, Self::Get | Self::Put | Self::Delete)
    }

    pub(crate) fn to_reqwest(self) -> reqwest::Method {
        match self {
            Self::Get => reqwest::Method::GET,
            Self::Post => reqwest::Method::POST,
            Self::Put => reqwest::Method::PUT,
            Self::Patch => reqwest::Method::PATCH,
            Self::Delete => reqwest::Method::DELETE,
        }
    }
}

/// Who may call a route, from the spec's `security`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Auth {
    /// The bot token is required.
    Bot,
    /// No authorization is needed; the bot token is sent when the client has one.
    Optional,
    /// A webhook or interaction token in the path authorizes it: the bot token is never sent.
    Token,
    /// Only a user's OAuth2 bearer token is accepted (set it with `.bearer(..)`).
    OAuth,
}

/// The body a route takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BodyKind {
    /// No body.
    None,
    /// A JSON body.
    Json,
    /// A JSON body, or `multipart/form-data` with `payload_json` and files.
    JsonOrMultipart,
    /// Only `multipart/form-data`: each field a part, and the files.
    Multipart,
}

/// A query parameter a route accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueryParam {
    /// Its name.
    pub name: &'static str,
    /// What values it takes.
    pub kind: QueryKind,
}

/// What values a query parameter takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueryKind {
    /// An integer in `min..=max`.
    Int {
        /// The least value.
        min: i64,
        /// The greatest value.
        max: i64,
    },
    /// `true` or `false`.
    Bool,
    /// A snowflake id.
    Snowflake,
    /// Text of at most `max` characters.
    Text {
        /// The most characters.
        max: u32,
    },
    /// Anything else (lists, enums): passed as given.
    Other,
}

/// A documented limit on a top-level field of a route's JSON body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FieldRule {
    /// The field (`""` for a body that is itself an array).
    pub field: &'static str,
    /// The limit.
    pub check: Check,
}

/// A limit on a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Check {
    /// A string of `min..=max` characters.
    Chars {
        /// The fewest.
        min: u32,
        /// The most.
        max: u32,
    },
    /// An array of `min..=max` items.
    Items {
        /// The fewest.
        min: u32,
        /// The most.
        max: u32,
    },
    /// An integer in `min..=max`.
    Range {
        /// The least value.
        min: i64,
        /// The greatest value.
        max: i64,
    },
}

/// One operation of Discord's API: method, path template and what it takes. The table of all of
/// them is [`ROUTES`](crate::http::ROUTES), generated from Discord's OpenAPI spec.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Route {
    /// The spec's `operationId`, which is also the name of the [`Http`](crate::http::Http) method.
    pub operation: &'static str,
    /// The method.
    pub method: Method,
    /// The path template below `/api/v10`, e.g. `/channels/{channel_id}/messages`.
    pub path: &'static str,
    /// `"{method} {path}"`: the rate limiter's route key.
    pub key: &'static str,
    /// Who may call it.
    pub auth: Auth,
    /// The body it takes.
    pub body: BodyKind,
    /// The multipart fields that carry files (`files[n]` for numbered ones).
    pub files: &'static [&'static str],
    /// The query parameters it accepts.
    pub query: &'static [QueryParam],
    /// The top-level body fields that are required.
    pub required: &'static [&'static str],
    /// Documented limits on top-level body fields.
    pub fields: &'static [FieldRule],
    /// The success statuses it answers with.
    pub success: &'static [u16],
}

/// Path parameters that carry a secret: never logged, never in an error.
const SECRET_PARAMS: [&str; 2] = ["webhook_token", "interaction_token"];

impl Route {
    /// The names of the path parameters, in order.
    pub fn params(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
    }

    /// Whether a webhook or interaction token in the path authorizes it: such routes are exempt
    /// from the bot's global rate limit, as Discord documents for interactions.
    pub fn is_token_route(&self) -> bool {
        self.auth == Auth::Token
    }

    /// The path with its parameters filled in (percent-encoded); secrets as `:token` when `redact`.
    pub(crate) fn fill(&self, values: &[String], redact: bool) -> String {
        let mut out = String::with_capacity(self.path.len() + 24);
        let mut values = values.iter();
        for segment in self.path.split('/').skip(1) {
            out.push('/');
            match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => {
                    let value = values.next().map_or("", String::as_str);
                    if redact && SECRET_PARAMS.contains(&name) {
                        out.push_str(":token");
                    } else {
                        percent_encode_into(&mut out, value);
                    }
                }
                None => out.push_str(segment),
            }
        }
        out
    }

    /// The top-level resource of a request, which Discord keys its buckets with: the channel,
    /// guild, or webhook (id and token) or interaction; empty for other routes. Tokens are hashed.
    pub(crate) fn major(&self, values: &[String]) -> String {
        let top = ["/channels/{", "/guilds/{", "/webhooks/{", "/interactions/{"];
        if !top.iter().any(|prefix| self.path.starts_with(prefix)) {
            return String::new();
        }
        let mut major = values.first().cloned().unwrap_or_default();
        let second = self.params().nth(1);
        if let (Some(name), Some(token)) = (second, values.get(1))
            && SECRET_PARAMS.contains(&name)
        {
            let _ = write!(major, ":{:016x}", fnv1a(token.as_bytes()));
        }
        major
    }
}

/// FNV-1a: a fixed hash, so that a token can key a bucket without being kept.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Percent-encodes all but the unreserved characters (and `:` and `@`, which Discord's paths use).
pub(crate) fn percent_encode_into(out: &mut String, value: &str) {
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~:@".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

/// Percent-encodes a whole value (for the query and `X-Audit-Log-Reason`).
pub(crate) fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    percent_encode_into(&mut out, value);
    out
}

#[cfg(test)]
mod tests {
    use crate::http::routes;

    #[test]
    fn paths_fill_encode_and_redact() {
        let route = &routes::DELETE_MY_MESSAGE_REACTION;
        let values = ["1".to_owned(), "2".to_owned(), "🔥".to_owned()];
        assert_eq!(
            route.fill(&values, false),
            "/channels/1/messages/2/reactions/%F0%9F%94%A5/@me"
        );
        let route = &routes::GET_WEBHOOK_BY_TOKEN;
        let values = ["7".to_owned(), "s3cr3t".to_owned()];
        assert_eq!(route.fill(&values, true), "/webhooks/7/:token");
        let major = route.major(&values);
        assert!(major.starts_with("7:") && !major.contains("s3cr3t"));
        assert_eq!(routes::GET_BOT_GATEWAY.major(&[]), "");
        assert_eq!(
            routes::LIST_GUILD_ROLES.major(&["9".to_owned()]),
            "9".to_owned()
        );
    }
}
