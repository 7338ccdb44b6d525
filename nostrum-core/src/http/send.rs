//! Sending one request: checks, URL, headers, body, rate-limiter turn, retries, typed answer.

use std::fmt::Write as _;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::route::{Auth, BodyKind, Check, QueryKind, Route, percent_encode, percent_encode_into};
use super::{Http, HttpError, HttpErrorKind};
use crate::http::ratelimit::{BucketKey, Outcome};

/// The most characters of an audit-log reason.
pub const AUDIT_LOG_REASON_MAX: usize = 512;

/// A request as built, before it is checked and sent. `Debug` shows no token.
pub(crate) struct Parts {
    pub(crate) route: &'static Route,
    pub(crate) params: Vec<String>,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) body: Option<Value>,
    pub(crate) files: Vec<File>,
    pub(crate) reason: Option<String>,
    pub(crate) bearer: Option<String>,
    /// The first mistake found while building; reported on `.await`.
    pub(crate) error: Option<HttpError>,
}

/// A file to upload.
#[derive(Clone)]
pub(crate) struct File {
    pub(crate) field: String,
    pub(crate) filename: String,
    pub(crate) bytes: Bytes,
}

impl std::fmt::Debug for File {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("File")
            .field("field", &self.field)
            .field("filename", &self.filename)
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl std::fmt::Debug for Parts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parts")
            .field("request", &self.name())
            .field("query", &self.query)
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl Parts {
    pub(crate) fn new(route: &'static Route, params: Vec<String>) -> Self {
        Self {
            route,
            params,
            query: Vec::new(),
            body: None,
            files: Vec::new(),
            reason: None,
            bearer: None,
            error: None,
        }
    }

    /// `METHOD path` with tokens replaced: how logs and errors name the request.
    pub(crate) fn name(&self) -> String {
        format!(
            "{} {}",
            self.route.method.as_str(),
            self.route.fill(&self.params, true)
        )
    }
}

impl Http {
    /// Checks, sends (waiting for the rate limiter, retrying as allowed) and reads the answer.
    pub(crate) async fn send<T: DeserializeOwned>(&self, mut parts: Parts) -> Result<T, HttpError> {
        let name = parts.name();
        let result = match check(self, &mut parts) {
            Ok(()) => self.exchange(&parts, &name).await,
            Err(err) => Err(err),
        };
        let bytes = result.map_err(|err| err.with_request(name))?;
        let slice: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
        serde_json::from_slice(slice).map_err(HttpError::json)
    }

    /// The exchange: the answer's body on a 2xx.
    async fn exchange(&self, parts: &Parts, name: &str) -> Result<Bytes, HttpError> {
        let route = parts.route;
        let url = url(self.api_base(), parts);
        let (content_type, body) = encode(parts);
        let key = BucketKey::new(
            route.key,
            route.major(&parts.params),
            route.is_token_route(),
        );
        let idempotent = route.method.is_idempotent();
        let config = &self.0;
        let mut permit = config.limiter.acquire(key).await;
        let (mut failures, mut limited) = (0_u32, 0_u32);
        loop {
            let mut request = config.client.request(route.method.to_reqwest(), &url);
            if let Some(auth) = authorization(self, parts) {
                request = request.header(AUTHORIZATION, auth);
            }
            if let Some(reason) = &parts.reason {
                request = request.header("x-audit-log-reason", percent_encode(reason));
            }
            if let (Some(content_type), Some(body)) = (&content_type, &body) {
                request = request
                    .header(CONTENT_TYPE, content_type)
                    .body(body.clone());
            }
            let answer = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let headers: Vec<(String, String)> = response
                        .headers()
                        .iter()
                        .filter(|(n, _)| {
                            n.as_str().starts_with("x-ratelimit") || n.as_str() == "retry-after"
                        })
                        .filter_map(|(n, v)| {
                            Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned()))
                        })
                        .collect();
                    response.bytes().await.map(|bytes| (status, headers, bytes))
                }
                Err(err) => Err(err),
            };
            let (status, headers, bytes) = match answer {
                Ok(answer) => answer,
                Err(err) if idempotent && failures < config.retries => {
                    failures += 1;
                    let backoff = backoff(failures);
                    tracing::debug!(request = name, error = %err.without_url(), ?backoff, "REST: no answer, retrying");
                    permit = permit.retry(Outcome::no_answer(backoff)).await;
                    continue;
                }
                Err(err) => {
                    permit.complete(Outcome::default());
                    return Err(HttpError::transport(err));
                }
            };
            let mut outcome = Outcome::parse(
                status,
                headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
                &bytes,
            );
            if status == 429 {
                tracing::debug!(request = name, retry_after = ?outcome.retry_after, scope = ?outcome.scope, global = outcome.global, "REST: 429");
                if limited < config.rate_limit_retries {
                    limited += 1;
                    permit = permit.retry(outcome).await;
                    continue;
                }
                let kind = HttpErrorKind::RateLimited {
                    retry_after: outcome.wait_before_retry(),
                    global: outcome.global,
                };
                permit.complete(outcome);
                return Err(HttpError::new(kind));
            }
            if matches!(status, 500 | 502 | 503 | 504) && idempotent && failures < config.retries {
                failures += 1;
                outcome.backoff = Some(backoff(failures));
                tracing::debug!(request = name, status, backoff = ?outcome.backoff, "REST: server error, retrying");
                permit = permit.retry(outcome).await;
                continue;
            }
            permit.complete(outcome);
            tracing::trace!(request = name, status, "REST: answered");
            if (200..300).contains(&status) {
                return Ok(bytes);
            }
            return Err(HttpError::status(status, &bytes));
        }
    }
}

/// Exponential back-off with jitter: 250 ms, 500 ms, 1 s, ... up to 8 s, each plus up to a quarter.
fn backoff(failures: u32) -> Duration {
    let base = 250_u64 << failures.saturating_sub(1).min(5);
    Duration::from_millis(base + fastrand::u64(0..=base / 4))
}

fn authorization(http: &Http, parts: &Parts) -> Option<HeaderValue> {
    let value = match (&parts.bearer, parts.route.auth, &http.0.token) {
        (Some(bearer), _, _) => format!("Bearer {bearer}"),
        (None, Auth::Token | Auth::OAuth, _) | (None, _, None) => return None,
        (None, _, Some(token)) => token.authorization(),
    };
    let mut value = HeaderValue::from_str(&value).ok()?;
    value.set_sensitive(true);
    Some(value)
}

fn url(base: &str, parts: &Parts) -> String {
    let mut url = format!("{base}/api/v10{}", parts.route.fill(&parts.params, false));
    for (i, (name, value)) in parts.query.iter().enumerate() {
        url.push(if i == 0 { '?' } else { '&' });
        percent_encode_into(&mut url, name);
        url.push('=');
        percent_encode_into(&mut url, value);
    }
    url
}

/// Everything that can be found wrong before sending: auth, path, query, body, files, reason.
fn check(http: &Http, parts: &mut Parts) -> Result<(), HttpError> {
    if let Some(err) = parts.error.take() {
        return Err(err);
    }
    let route = parts.route;
    let invalid = |message: String| Err(HttpError::validation(message));
    match route.auth {
        Auth::Bot if http.0.token.is_none() && parts.bearer.is_none() => {
            return invalid(format!("{} needs a bot token", route.operation));
        }
        Auth::OAuth if parts.bearer.is_none() => {
            return invalid(format!(
                "{} needs a user's OAuth2 token (.bearer(..))",
                route.operation
            ));
        }
        _ => {}
    }
    if parts.params.len() != route.params().count() || parts.params.iter().any(String::is_empty) {
        return invalid(format!(
            "{} takes path parameters {:?}",
            route.operation,
            route.params().collect::<Vec<_>>()
        ));
    }
    for (name, value) in &parts.query {
        let Some(param) = route.query.iter().find(|p| p.name == name) else {
            return invalid(format!(
                "{} takes no query parameter {name}",
                route.operation
            ));
        };
        let ok = match param.kind {
            QueryKind::Int { min, max } => {
                value.parse::<i64>().is_ok_and(|v| (min..=max).contains(&v))
            }
            QueryKind::Bool => value == "true" || value == "false",
            QueryKind::Snowflake => value.parse::<u64>().is_ok_and(|v| v > 0),
            QueryKind::Text { max } => value.chars().count() <= max as usize,
            _ => true,
        };
        if !ok {
            return invalid(format!(
                "query {name}={value} is out of range: {:?}",
                param.kind
            ));
        }
    }
    if !parts.files.is_empty() && route.files.is_empty() {
        return invalid(format!("{} takes no files", route.operation));
    }
    if let Some(reason) = &parts.reason
        && reason.chars().count() > AUDIT_LOG_REASON_MAX
    {
        return invalid(format!(
            "the audit-log reason is {} characters long; the most is {AUDIT_LOG_REASON_MAX}",
            reason.chars().count()
        ));
    }
    check_body(route, &mut parts.body)
}

/// The route's required fields and documented limits; an absent body becomes `{}` when allowed.
fn check_body(route: &Route, body: &mut Option<Value>) -> Result<(), HttpError> {
    if route.body == BodyKind::None {
        if body.is_some() {
            return Err(HttpError::validation(format!(
                "{} takes no body",
                route.operation
            )));
        }
        return Ok(());
    }
    let body = body.get_or_insert_with(|| Value::Object(serde_json::Map::new()));
    let mut problems = Vec::new();
    if let Some(object) = body.as_object() {
        for field in route.required {
            if object.get(*field).is_none_or(Value::is_null) {
                problems.push(format!("{field} is required"));
            }
        }
    }
    for rule in route.fields {
        let value = if rule.field.is_empty() {
            Some(&*body)
        } else {
            body.get(rule.field)
        };
        let Some(value) = value else { continue };
        let (n, min, max, what) = match (rule.check, value) {
            (Check::Chars { min, max }, Value::String(s)) => (
                s.chars().count() as i64,
                i64::from(min),
                i64::from(max),
                "characters",
            ),
            (Check::Items { min, max }, Value::Array(a)) => {
                (a.len() as i64, i64::from(min), i64::from(max), "items")
            }
            (Check::Range { min, max }, Value::Number(n)) => match n.as_i64() {
                Some(n) => (n, min, max, "as value"),
                None => continue,
            },
            _ => continue,
        };
        if !(min..=max).contains(&n) {
            let field = if rule.field.is_empty() {
                "the body"
            } else {
                rule.field
            };
            let mut text = format!("{field} has {n} {what}; it takes ");
            let _ = if max == i64::from(u32::MAX) || max == i64::MAX {
                write!(text, "at least {min}")
            } else {
                write!(text, "{min} to {max}")
            };
            problems.push(text);
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(HttpError::validation(problems.join("; ")))
    }
}

/// The body and its content type: JSON, or multipart with the JSON as `payload_json` (or as one
/// part per field, for multipart-only routes) and the files.
fn encode(parts: &Parts) -> (Option<String>, Option<Bytes>) {
    let multipart = parts.route.body == BodyKind::Multipart || !parts.files.is_empty();
    if !multipart {
        let Some(body) = parts.body.as_ref() else {
            return (None, None);
        };
        return (
            Some("application/json".to_owned()),
            serde_json::to_vec(body).ok().map(Bytes::from),
        );
    }
    let boundary = format!(
        "nostrum{:016x}{:016x}",
        fastrand::u64(..),
        fastrand::u64(..)
    );
    let mut out = Vec::with_capacity(
        256 + parts
            .files
            .iter()
            .map(|f| f.bytes.len() + 128)
            .sum::<usize>(),
    );
    let mut part = |name: &str, filename: Option<&str>, content_type: &str, bytes: &[u8]| {
        out.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"",
                quote(name)
            )
            .as_bytes(),
        );
        if let Some(filename) = filename {
            out.extend_from_slice(format!("; filename=\"{}\"", quote(filename)).as_bytes());
        }
        out.extend_from_slice(format!("\r\nContent-Type: {content_type}\r\n\r\n").as_bytes());
        out.extend_from_slice(bytes);
        out.extend_from_slice(b"\r\n");
    };
    match (&parts.body, parts.route.body) {
        (Some(Value::Object(fields)), BodyKind::Multipart) => {
            for (name, value) in fields {
                let text = match value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                part(name, None, "text/plain; charset=utf-8", text.as_bytes());
            }
        }
        (Some(body), _) => part(
            "payload_json",
            None,
            "application/json",
            body.to_string().as_bytes(),
        ),
        (None, _) => {}
    }
    for file in &parts.files {
        part(
            &file.field,
            Some(&file.filename),
            "application/octet-stream",
            &file.bytes,
        );
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (
        Some(format!("multipart/form-data; boundary={boundary}")),
        Some(Bytes::from(out)),
    )
}

/// A header parameter value: no quotes or line breaks.
fn quote(value: &str) -> String {
    value.replace(['"', '\r', '\n'], "_")
}
