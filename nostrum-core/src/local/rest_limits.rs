//! The local REST server's rate limits and faults: bucket plan, headers, 429s, 5xx, slowness.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::LocalDiscord;
use super::rest_spec::Spec;

/// The scope of a 429, as `X-RateLimit-Scope` says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RateLimitScope {
    /// A per-route limit of the bot.
    User,
    /// The bot's global limit (`X-RateLimit-Global: true`).
    Global,
    /// A resource's limit shared by all users (not an invalid request).
    Shared,
}

/// A fault the REST server injects into its answers.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum RestFault {
    /// Answers 429 of that scope with that `retry_after`.
    RateLimited {
        /// The scope.
        scope: RateLimitScope,
        /// How long the client must wait.
        retry_after: Duration,
    },
    /// Answers that status (500, 502, 503, 504) with an HTML body, as Cloudflare does.
    ServerError(u16),
    /// Waits that long before answering.
    Slow(Duration),
}

/// One bucket's limit: `limit` requests per `window`, per top-level resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketRule {
    /// Requests per window.
    pub limit: u32,
    /// The window.
    pub window: Duration,
    /// A bucket name shared with other routes (their requests count together); `None`: its own.
    pub bucket: Option<String>,
}

/// How the REST server limits requests: per route (`"POST /channels/{channel_id}/messages"`,
/// the spec's templates) and top-level resource, and optionally globally. The default is 5
/// requests per 5 seconds per route and resource, and no global limit.
///
/// ```
/// use std::time::Duration;
/// use nostrum_core::local::BucketPlan;
/// let plan = BucketPlan::default()
///     .route("POST /channels/{channel_id}/messages", 5, Duration::from_secs(1))
///     .global(50, Duration::from_secs(1));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketPlan {
    /// The limit of routes without their own.
    pub default: BucketRule,
    /// Limits by route.
    pub routes: Vec<(String, BucketRule)>,
    /// At most that many requests per period from the bot, bar interaction and webhook-token
    /// routes (a sliding window).
    pub global: Option<(u32, Duration)>,
}

impl Default for BucketPlan {
    fn default() -> Self {
        Self {
            default: BucketRule {
                limit: 5,
                window: Duration::from_secs(5),
                bucket: None,
            },
            routes: Vec::new(),
            global: None,
        }
    }
}

impl BucketPlan {
    /// Every route without its own limit: `limit` per `window`.
    pub fn default_limit(mut self, limit: u32, window: Duration) -> Self {
        self.default = BucketRule {
            limit,
            window,
            bucket: None,
        };
        self
    }

    /// `route` (`"METHOD /template"`): `limit` per `window`.
    pub fn route(mut self, route: &str, limit: u32, window: Duration) -> Self {
        self.routes.push((
            route.to_owned(),
            BucketRule {
                limit,
                window,
                bucket: None,
            },
        ));
        self
    }

    /// `route` counts in the named bucket, with that bucket's limit.
    pub fn shared(mut self, route: &str, bucket: &str, limit: u32, window: Duration) -> Self {
        self.routes.push((
            route.to_owned(),
            BucketRule {
                limit,
                window,
                bucket: Some(bucket.to_owned()),
            },
        ));
        self
    }

    /// A global limit of `requests` per `period`.
    pub fn global(mut self, requests: u32, period: Duration) -> Self {
        self.global = Some((requests, period));
        self
    }
}

/// What the REST server answered, counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RestStats {
    /// Requests received below `/api/v10`.
    pub requests: u64,
    /// 429s of scope `user`.
    pub rate_limited_user: u64,
    /// 429s of scope `global`.
    pub rate_limited_global: u64,
    /// 429s of scope `shared`.
    pub rate_limited_shared: u64,
    /// 5xx answered (injected).
    pub server_errors: u64,
    /// Invalid requests as Discord counts them: 401, 403, and 429 but shared.
    pub invalid: u64,
    /// The most requests answered within one second.
    pub max_per_second: u64,
}

/// A file uploaded in a multipart request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upload {
    /// The request path.
    pub path: String,
    /// The multipart field, e.g. `files[0]`.
    pub field: String,
    /// The file name.
    pub filename: String,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// The REST server's limits, faults and findings.
#[derive(Debug, Default)]
pub(super) struct RestState {
    pub(super) plan: BucketPlan,
    windows: HashMap<(String, String), Window>,
    arrivals: VecDeque<Instant>,
    answered: VecDeque<Instant>,
    faults: VecDeque<(RestFault, u32)>,
    storm: Option<(RestFault, Instant)>,
    pub(super) stats: RestStats,
    pub(super) spec: Option<Arc<Spec>>,
    pub(super) violations: Vec<String>,
    pub(super) uploads: Vec<Upload>,
}

#[derive(Debug)]
struct Window {
    remaining: u32,
    reset_at: Instant,
}

/// The outcome of taking one request from a route's bucket.
#[derive(Debug)]
pub(super) struct Taken {
    pub(super) exceeded: bool,
    pub(super) limit: u32,
    pub(super) remaining: u32,
    pub(super) reset_after: f64,
    pub(super) bucket: String,
}

impl RestState {
    /// The fault for the request arriving now, if any.
    pub(super) fn take_fault(&mut self, now: Instant) -> Option<RestFault> {
        if let Some((fault, until)) = &self.storm {
            if now < *until {
                return Some(fault.clone());
            }
            self.storm = None;
        }
        let (fault, times) = self.faults.front_mut()?;
        let fault = fault.clone();
        *times -= 1;
        if *times == 0 {
            self.faults.pop_front();
        }
        Some(fault)
    }

    /// Counts a request against the global limit: `Err(retry_after)` when it is over.
    pub(super) fn take_global(&mut self, now: Instant) -> Result<(), f64> {
        let Some((requests, period)) = self.plan.global else {
            return Ok(());
        };
        while self
            .arrivals
            .front()
            .is_some_and(|t| now.duration_since(*t) >= period)
        {
            self.arrivals.pop_front();
        }
        if self.arrivals.len() >= requests as usize {
            let oldest = self.arrivals.front().copied().unwrap_or(now);
            return Err((oldest + period).duration_since(now).as_secs_f64());
        }
        self.arrivals.push_back(now);
        Ok(())
    }

    /// Takes one request from the bucket of `route` and `major`.
    pub(super) fn take_bucket(&mut self, route: &str, major: &str, now: Instant) -> Taken {
        let rule = self
            .plan
            .routes
            .iter()
            .find(|(r, _)| r == route)
            .map_or(&self.plan.default, |(_, rule)| rule)
            .clone();
        let name = rule.bucket.clone().unwrap_or_else(|| route.to_owned());
        let window = self
            .windows
            .entry((name.clone(), major.to_owned()))
            .or_insert(Window {
                remaining: rule.limit,
                reset_at: now + rule.window,
            });
        if now >= window.reset_at {
            *window = Window {
                remaining: rule.limit,
                reset_at: now + rule.window,
            };
        }
        let exceeded = window.remaining == 0;
        window.remaining = window.remaining.saturating_sub(1);
        Taken {
            exceeded,
            limit: rule.limit,
            remaining: window.remaining,
            reset_after: window.reset_at.saturating_duration_since(now).as_secs_f64(),
            // An opaque id per bucket, like Discord's (FNV-1a of its name).
            bucket: format!(
                "{:016x}",
                name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                    (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
                })
            ),
        }
    }

    /// Counts an answer.
    pub(super) fn count(&mut self, status: u16, scope: Option<RateLimitScope>, now: Instant) {
        let stats = &mut self.stats;
        match (status, scope) {
            (429, Some(RateLimitScope::User)) => stats.rate_limited_user += 1,
            (429, Some(RateLimitScope::Global)) => stats.rate_limited_global += 1,
            (429, Some(RateLimitScope::Shared)) => stats.rate_limited_shared += 1,
            (500..=599, _) => stats.server_errors += 1,
            _ => {}
        }
        if matches!(status, 401 | 403) || (status == 429 && scope != Some(RateLimitScope::Shared)) {
            stats.invalid += 1;
        }
        while self
            .answered
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
        {
            self.answered.pop_front();
        }
        self.answered.push_back(now);
        stats.max_per_second = stats.max_per_second.max(self.answered.len() as u64);
    }
}

impl LocalDiscord {
    /// Replaces the REST bucket plan (see [`BucketPlan`]).
    pub fn set_bucket_plan(&self, plan: BucketPlan) {
        let mut state = self.shared.lock();
        state.rest.plan = plan;
        state.rest.windows.clear();
        state.rest.arrivals.clear();
    }

    /// Applies `fault` to the next `times` REST requests (after those already queued).
    pub fn inject_rest_fault(&self, fault: RestFault, times: u32) {
        if times > 0 {
            self.shared.lock().rest.faults.push_back((fault, times));
        }
    }

    /// Applies `fault` to every REST request for `duration` from now (a storm).
    pub fn rest_fault_for(&self, fault: RestFault, duration: Duration) {
        self.shared.lock().rest.storm = Some((fault, Instant::now() + duration));
    }

    /// What the REST server answered, counted.
    pub fn rest_stats(&self) -> RestStats {
        self.shared.lock().rest.stats.clone()
    }

    /// The files uploaded so far, in order.
    pub fn uploads(&self) -> Vec<Upload> {
        self.shared.lock().rest.uploads.clone()
    }
}
