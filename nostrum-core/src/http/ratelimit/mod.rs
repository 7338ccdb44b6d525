//! The REST rate limiter as a swappable part: the trait, the permit protocol, Discord's headers.
//!
//! A request asks its limiter for a [`Permit`] with its [`BucketKey`] (route and top-level resource),
//! sends once it has one, and hands the answer back: [`Permit::complete`] lets the next request of the
//! queue go, [`Permit::retry`] (after a 429, a 5xx or a lost connection) keeps its place at the head of
//! the queue and returns once it may send again. [`InProcessLimiter`] is the default; [`NoLimiter`]
//! turns limiting off; a limiter shared between processes implements the same trait.

mod in_process;

pub use in_process::{InProcessLimiter, InProcessLimiterBuilder};

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::oneshot;

/// Which queue a request waits in: its route (`"POST /channels/{channel_id}/messages"`) and its
/// top-level resource (channel, guild, webhook or interaction; webhook tokens are hashed).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BucketKey {
    route: &'static str,
    major: Box<str>,
    exempt: bool,
}

impl BucketKey {
    /// A key; `exempt_from_global` for interaction and webhook-token routes, which Discord does not
    /// count against the bot's global limit.
    pub fn new(route: &'static str, major: impl Into<Box<str>>, exempt_from_global: bool) -> Self {
        Self {
            route,
            major: major.into(),
            exempt: exempt_from_global,
        }
    }

    /// The route: method and path template.
    pub fn route(&self) -> &'static str {
        self.route
    }

    /// The top-level resource (empty for routes without one).
    pub fn major(&self) -> &str {
        &self.major
    }

    /// Whether the global limit does not apply.
    pub fn exempt_from_global(&self) -> bool {
        self.exempt
    }
}

/// The scope of a 429, from `X-RateLimit-Scope`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scope {
    /// The bot exceeded a per-route limit.
    User,
    /// The bot exceeded the global limit.
    Global,
    /// A resource's limit shared by every user: does not count as an invalid request.
    Shared,
}

/// What the answer to one request said about rate limits: Discord's headers, the status, and the
/// client's back-off before a retry.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Outcome {
    /// The status; `None` when no answer came (connection error, timeout) or the request was dropped.
    pub status: Option<u16>,
    /// `X-RateLimit-Bucket`.
    pub bucket: Option<Box<str>>,
    /// `X-RateLimit-Limit`.
    pub limit: Option<u32>,
    /// `X-RateLimit-Remaining`.
    pub remaining: Option<u32>,
    /// `X-RateLimit-Reset-After` (relative, so clock skew does not matter).
    pub reset_after: Option<Duration>,
    /// A 429's `retry_after` (body) or `Retry-After` (header).
    pub retry_after: Option<Duration>,
    /// `X-RateLimit-Scope`.
    pub scope: Option<Scope>,
    /// `X-RateLimit-Global`, or `"global": true` in a 429's body.
    pub global: bool,
    /// How long the client backs off before retrying (5xx, connection errors).
    pub backoff: Option<Duration>,
}

impl Outcome {
    /// Reads Discord's answer: the status, the headers (names in any case) and, for a 429, the body.
    ///
    /// ```
    /// use nostrum_core::http::ratelimit::{Outcome, Scope};
    /// let outcome = Outcome::parse(429, [("x-ratelimit-scope", "shared"), ("retry-after", "2")],
    ///     br#"{"message":"You are being rate limited.","retry_after":1.5,"global":false}"#);
    /// assert_eq!(outcome.scope, Some(Scope::Shared));
    /// assert_eq!(outcome.retry_after, Some(std::time::Duration::from_millis(1500)));
    /// ```
    pub fn parse<'h>(
        status: u16,
        headers: impl IntoIterator<Item = (&'h str, &'h str)>,
        body: &[u8],
    ) -> Self {
        let mut outcome = Self {
            status: Some(status),
            ..Self::default()
        };
        let mut retry_header = None;
        for (name, value) in headers {
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "x-ratelimit-bucket" => outcome.bucket = Some(value.into()),
                "x-ratelimit-limit" => outcome.limit = value.parse().ok(),
                "x-ratelimit-remaining" => outcome.remaining = value.parse().ok(),
                "x-ratelimit-reset-after" => outcome.reset_after = seconds(value),
                "x-ratelimit-global" => outcome.global |= value.eq_ignore_ascii_case("true"),
                "x-ratelimit-scope" => {
                    outcome.scope = match value {
                        "user" => Some(Scope::User),
                        "global" => Some(Scope::Global),
                        "shared" => Some(Scope::Shared),
                        _ => None,
                    }
                }
                "retry-after" => retry_header = seconds(value),
                _ => {}
            }
        }
        if status == 429 {
            #[derive(serde::Deserialize)]
            struct Body {
                retry_after: Option<f64>,
                #[serde(default)]
                global: bool,
            }
            if let Ok(body) = serde_json::from_slice::<Body>(body) {
                outcome.retry_after = body.retry_after.and_then(seconds_f64);
                outcome.global |= body.global;
            }
            outcome.retry_after = outcome.retry_after.or(retry_header);
            if outcome.scope == Some(Scope::Global) {
                outcome.global = true;
            }
        }
        outcome
    }

    /// The outcome of a request that got no answer, to be retried after `backoff`.
    pub fn no_answer(backoff: Duration) -> Self {
        Self {
            backoff: Some(backoff),
            ..Self::default()
        }
    }

    /// Whether Discord counts it as an invalid request (401, 403, or a 429 not of shared scope).
    pub fn is_invalid(&self) -> bool {
        match self.status {
            Some(401 | 403) => true,
            Some(429) => self.scope != Some(Scope::Shared),
            _ => false,
        }
    }

    /// How long to wait before sending the request again.
    pub fn wait_before_retry(&self) -> Duration {
        match self.status {
            Some(429) => self.retry_after.unwrap_or(Duration::from_secs(1)),
            _ => self.backoff.unwrap_or_default(),
        }
    }
}

fn seconds(value: &str) -> Option<Duration> {
    value.parse::<f64>().ok().and_then(seconds_f64)
}

fn seconds_f64(secs: f64) -> Option<Duration> {
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}

/// A rate limiter: decides when each request may be sent.
///
/// ```
/// use std::future::Future;
/// use std::pin::Pin;
/// use nostrum_core::http::ratelimit::{BucketKey, Permit, RateLimiter};
///
/// /// Lets everything through at once, like `NoLimiter`.
/// #[derive(Debug)]
/// struct Open;
///
/// impl RateLimiter for Open {
///     fn acquire(&self, _key: BucketKey) -> Pin<Box<dyn Future<Output = Permit> + Send>> {
///         Box::pin(std::future::ready(Permit::unlimited()))
///     }
/// }
/// ```
pub trait RateLimiter: fmt::Debug + Send + Sync + 'static {
    /// Enqueues a request (order is taken when this is called) and resolves once it may be sent.
    fn acquire(&self, key: BucketKey) -> Pin<Box<dyn Future<Output = Permit> + Send>>;
}

/// No rate limiting: every request is sent at once; 429s are still retried after `retry_after`.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoLimiter;

impl RateLimiter for NoLimiter {
    fn acquire(&self, _key: BucketKey) -> Pin<Box<dyn Future<Output = Permit> + Send>> {
        Box::pin(std::future::ready(Permit::unlimited()))
    }
}

/// Permission to send one request. Hand the answer back with [`complete`](Self::complete) or
/// [`retry`](Self::retry); dropping it counts as completed without an answer.
#[derive(Debug)]
#[must_use = "a permit holds its queue until it is completed"]
pub struct Permit {
    report: Option<oneshot::Sender<Report>>,
}

/// What the holder of a [`Permit`] reported: the outcome, and whether it wants to send again.
#[derive(Debug)]
#[non_exhaustive]
pub struct Report {
    /// What the answer said.
    pub outcome: Outcome,
    /// Set when the request is to be sent again: grant it the next permit of its queue.
    pub retry: Option<Retry>,
}

/// The place of a request that is to be sent again, at the head of its queue.
#[derive(Debug)]
pub struct Retry(oneshot::Sender<Permit>);

impl Retry {
    /// Lets the request send again (returns the permit if the request is gone).
    ///
    /// # Errors
    /// The permit back, when the request was dropped meanwhile.
    pub fn grant(self, permit: Permit) -> Result<(), Permit> {
        self.0.send(permit)
    }

    /// Whether the request is gone.
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}

/// Where the [`Report`] of a permit arrives, for limiter implementations.
#[derive(Debug)]
pub struct PendingReport(oneshot::Receiver<Report>);

impl Future for PendingReport {
    type Output = Report;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Report> {
        Pin::new(&mut self.0).poll(cx).map(|report| {
            report.unwrap_or(Report {
                outcome: Outcome::default(),
                retry: None,
            })
        })
    }
}

impl Permit {
    /// A permit nobody waits on (for limiters that do not limit).
    pub fn unlimited() -> Self {
        Self { report: None }
    }

    /// A permit and where its report will arrive.
    pub fn channel() -> (Self, PendingReport) {
        let (tx, rx) = oneshot::channel();
        (Self { report: Some(tx) }, PendingReport(rx))
    }

    /// The request is done: its queue moves on.
    pub fn complete(mut self, outcome: Outcome) {
        if let Some(tx) = self.report.take() {
            let _ = tx.send(Report {
                outcome,
                retry: None,
            });
        }
    }

    /// The request is to be sent again: resolves, keeping its place at the head of the queue, once
    /// it may (after `retry_after` for a 429, after `backoff` otherwise).
    pub async fn retry(mut self, outcome: Outcome) -> Permit {
        let wait = outcome.wait_before_retry();
        let Some(tx) = self.report.take() else {
            tokio::time::sleep(wait).await;
            return Permit::unlimited();
        };
        let (retry_tx, retry_rx) = oneshot::channel();
        let report = Report {
            outcome,
            retry: Some(Retry(retry_tx)),
        };
        if tx.send(report).is_ok()
            && let Ok(permit) = retry_rx.await
        {
            return permit;
        }
        // The limiter is gone: wait as told, then go on unlimited.
        tokio::time::sleep(wait).await;
        Permit::unlimited()
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(tx) = self.report.take() {
            let _ = tx.send(Report {
                outcome: Outcome::default(),
                retry: None,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_read() {
        let outcome = Outcome::parse(
            200,
            [
                ("X-RateLimit-Bucket", "abcd1234"),
                ("X-RateLimit-Limit", "5"),
                ("X-RateLimit-Remaining", "4"),
                ("X-RateLimit-Reset-After", "1.250"),
            ],
            b"{}",
        );
        assert_eq!(outcome.bucket.as_deref(), Some("abcd1234"));
        assert_eq!(outcome.limit, Some(5));
        assert_eq!(outcome.remaining, Some(4));
        assert_eq!(outcome.reset_after, Some(Duration::from_millis(1250)));
        assert!(!outcome.is_invalid());
    }

    #[test]
    fn a_global_429_is_recognised_by_header_or_body() {
        let by_header = Outcome::parse(
            429,
            [("X-RateLimit-Global", "true"), ("Retry-After", "3")],
            b"",
        );
        assert!(by_header.global);
        assert_eq!(by_header.retry_after, Some(Duration::from_secs(3)));
        let by_body = Outcome::parse(429, [], br#"{"retry_after":0.5,"global":true}"#);
        assert!(by_body.global && by_body.is_invalid());
        assert_eq!(by_body.wait_before_retry(), Duration::from_millis(500));
        let shared = Outcome::parse(429, [("x-ratelimit-scope", "shared")], b"{}");
        assert!(!shared.is_invalid() && !shared.global);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_permit_reports_no_answer() {
        let (permit, report) = Permit::channel();
        drop(permit);
        let report = report.await;
        assert_eq!(report.outcome.status, None);
        assert!(report.retry.is_none());
    }
}
