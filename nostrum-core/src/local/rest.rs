//! The REST server: Discord's `/api/v10` routes with auth, rate limits, faults and recording.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::RecordedRequest;
use super::rest_body::{invalid_form_body, parse_body};
use super::rest_limits::{RateLimitScope, RestFault, Taken, Upload};
use super::script;
use super::state::{Shared, unix_secs_f64};

/// Largest request body accepted (Discord's upload limit for bots without boosts).
const MAX_BODY: usize = 25 * 1024 * 1024;

/// Routes answered from the scripted world; the others answer from the spec.
const SCRIPTED: [(&str, &str); 7] = [
    ("GET", "/gateway"),
    ("GET", "/gateway/bot"),
    ("GET", "/users/@me"),
    ("GET", "/channels/{channel_id}"),
    ("GET", "/channels/{channel_id}/messages"),
    ("POST", "/channels/{channel_id}/messages"),
    ("GET", "/guilds/{guild_id}"),
];

pub(super) type Resp = Response<Full<Bytes>>;

/// Accepts HTTP/1.1 connections until the task is aborted (which aborts every connection task too).
pub(super) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let shared = shared.clone();
                    tasks.spawn(async move {
                        let service = service_fn(move |req| {
                            let shared = shared.clone();
                            async move { Ok::<_, Infallible>(handle(&shared, req).await) }
                        });
                        if let Err(error) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                            tracing::debug!(%error, "local discord: REST connection error");
                        }
                    });
                }
                Err(error) => {
                    tracing::warn!(%error, "local discord: REST accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
}

/// How a request authorized itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Auth {
    None,
    Bot,
    Bearer,
    Wrong,
}

/// A request as the router sees it.
struct Call<'a> {
    method: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    auth: Auth,
    /// The body to check: JSON, or a multipart body's `payload_json` and fields, files as `"<binary>"`.
    body: Option<&'a Value>,
    multipart: bool,
}

/// Records the request, then answers it.
async fn handle(shared: &Shared, req: Request<Incoming>) -> Resp {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(name, value)| {
            let value = if name == AUTHORIZATION {
                "<redacted>".to_owned()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            (name.as_str().to_owned(), value)
        })
        .collect();
    let expected = format!("Bot {}", shared.config.token);
    let auth = match req.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes) {
        None => Auth::None,
        Some(v) if v == expected.as_bytes() => Auth::Bot,
        Some(v) if v.starts_with(b"Bearer ") && v.len() > 7 => Auth::Bearer,
        Some(_) => Auth::Wrong,
    };
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .ok();
    let parsed = bytes
        .as_deref()
        .map(|b| parse_body(content_type.as_deref(), b))
        .unwrap_or_default();
    {
        let record = RecordedRequest {
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            headers,
            body: parsed.recorded.clone(),
            at: Instant::now(),
        };
        let mut state = shared.lock();
        state.requests.push(record);
        for (field, filename, bytes) in &parsed.files {
            state.rest.uploads.push(Upload {
                path: path.clone(),
                field: field.clone(),
                filename: filename.clone(),
                bytes: bytes.clone(),
            });
        }
        drop(state);
        shared.notify();
    }
    if bytes.is_none() {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request entity too large",
            40005,
        );
    }
    let call = Call {
        method: &method,
        path: &path,
        query: query.as_deref(),
        auth,
        body: parsed.checked.as_ref(),
        multipart: parsed.multipart,
    };
    route(shared, &call, parsed.recorded.as_ref()).await
}

pub(super) fn json_response(status: StatusCode, body: &Value) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn error(status: StatusCode, message: &str, code: u64) -> Resp {
    json_response(status, &json!({"message": message, "code": code}))
}

fn not_found() -> Resp {
    error(StatusCode::NOT_FOUND, "404: Not Found", 0)
}

fn set_header(resp: &mut Resp, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        resp.headers_mut()
            .insert(HeaderName::from_static(name), value);
    }
}

/// The template of a scripted route, when no spec is loaded.
fn scripted_template(segments: &[&str]) -> Option<&'static str> {
    Some(match segments {
        ["gateway"] => "/gateway",
        ["gateway", "bot"] => "/gateway/bot",
        ["users", "@me"] => "/users/@me",
        ["channels", _] => "/channels/{channel_id}",
        ["channels", _, "messages"] => "/channels/{channel_id}/messages",
        ["guilds", _] => "/guilds/{guild_id}",
        _ => return None,
    })
}

/// Routes, authorizes, applies faults and limits, checks against the spec, answers; counts it.
async fn route(shared: &Shared, call: &Call<'_>, recorded: Option<&Value>) -> Resp {
    let Some(rest) = call.path.strip_prefix("/api/v10/") else {
        return not_found();
    };
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let spec = {
        let mut state = shared.lock();
        state.rest.stats.requests += 1;
        state.rest.spec.clone()
    };
    let now = Instant::now();
    let (resp, scope) = match decide(shared, call, &segments, spec.as_deref(), recorded, now).await
    {
        Ok(resp) => (resp, None),
        Err((resp, scope)) => (resp, scope),
    };
    shared
        .lock()
        .rest
        .count(resp.status().as_u16(), scope, Instant::now());
    resp
}

/// The answer; `Err` for the ones that are not the route's own (with a 429's scope).
async fn decide(
    shared: &Shared,
    call: &Call<'_>,
    segments: &[&str],
    spec: Option<&super::rest_spec::Spec>,
    recorded: Option<&Value>,
    now: Instant,
) -> Result<Resp, (Resp, Option<RateLimitScope>)> {
    let (template, op) = match spec {
        Some(spec) => match spec.find(call.method, segments) {
            Some((template, op)) => (template.to_owned(), op),
            None => return Err((not_found(), None)),
        },
        None => match scripted_template(segments) {
            Some(template) => (template.to_owned(), None),
            None => return Err((not_found(), None)),
        },
    };
    let scripted = SCRIPTED.contains(&(call.method, template.as_str()));
    if (spec.is_some() && op.is_none()) || (spec.is_none() && !scripted) {
        return Err((
            error(StatusCode::METHOD_NOT_ALLOWED, "405: Method Not Allowed", 0),
            None,
        ));
    }
    let authorized = match op {
        Some(op) => {
            (op.public() && call.auth != Auth::Wrong)
                || (call.auth == Auth::Bot && op.accepts("BotToken"))
                || (call.auth == Auth::Bearer && op.accepts("OAuth2"))
        }
        None => template == "/gateway" || call.auth == Auth::Bot,
    };
    if !authorized {
        return Err((
            error(StatusCode::UNAUTHORIZED, "401: Unauthorized", 0),
            None,
        ));
    }
    let route_key = format!("{} {template}", call.method);
    let major = major_of(&template, segments);
    let exempt = template.starts_with("/interactions/") || template.contains("{webhook_token}");
    let fault = shared.lock().rest.take_fault(now);
    match fault {
        Some(RestFault::Slow(delay)) => tokio::time::sleep(delay).await,
        Some(RestFault::RateLimited { scope, retry_after }) => {
            let retry_after = retry_after.as_secs_f64();
            let mut resp = rate_limited(scope, retry_after);
            if scope != RateLimitScope::Global {
                let taken = shared.lock().rest.take_bucket(&route_key, &major, now);
                limit_headers(
                    &mut resp,
                    &Taken {
                        remaining: 0,
                        reset_after: retry_after,
                        ..taken
                    },
                );
            }
            return Err((resp, Some(scope)));
        }
        Some(RestFault::ServerError(status)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut resp = Response::new(Full::new(Bytes::from_static(
                b"<html><body>upstream error</body></html>",
            )));
            *resp.status_mut() = status;
            resp.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
            return Err((resp, None));
        }
        _ => {}
    }
    if !exempt
        && call.auth == Auth::Bot
        && let Err(retry_after) = shared.lock().rest.take_global(now)
    {
        return Err((
            rate_limited(RateLimitScope::Global, retry_after),
            Some(RateLimitScope::Global),
        ));
    }
    let limit = shared.lock().rest.take_bucket(&route_key, &major, now);
    if limit.exceeded && shared.config.rest_rate_limit {
        let mut resp = rate_limited(RateLimitScope::User, limit.reset_after);
        limit_headers(&mut resp, &limit);
        return Err((resp, Some(RateLimitScope::User)));
    }
    if let (Some(spec), Some(op)) = (spec, op) {
        let problems = spec.check_request(op, call.query, call.body, call.multipart);
        if !problems.is_empty() {
            let mut state = shared.lock();
            for problem in &problems {
                state
                    .rest
                    .violations
                    .push(format!("{} {}: {problem}", call.method, call.path));
            }
            drop(state);
            let mut resp = invalid_form_body(&problems);
            limit_headers(&mut resp, &limit);
            return Err((resp, None));
        }
    }
    let mut resp = if scripted {
        let id = segments.get(1).and_then(|m| m.parse::<u64>().ok());
        answer(shared, call.method, &template, id, recorded)
    } else {
        match spec.zip(op).map(|(spec, op)| spec.example_answer(op)) {
            Some((status, Some(body))) => json_response(
                StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
                &body,
            ),
            _ => {
                let mut resp = Response::new(Full::new(Bytes::new()));
                *resp.status_mut() = StatusCode::NO_CONTENT;
                resp
            }
        }
    };
    limit_headers(&mut resp, &limit);
    Ok(resp)
}

/// The top-level resource: the id after `channels`, `guilds`, `webhooks` (with the token) or
/// `interactions` (with the token).
fn major_of(template: &str, segments: &[&str]) -> String {
    match segments {
        ["channels" | "guilds", id, ..] => (*id).to_owned(),
        ["webhooks" | "interactions", id, token, ..] if template.contains("_token}") => {
            format!("{id}/{token}")
        }
        ["webhooks" | "interactions", id, ..] => (*id).to_owned(),
        _ => String::new(),
    }
}

/// A 429 as Discord sends it: `retry_after` in the body and `Retry-After`, the scope, and
/// `X-RateLimit-Global` for a global one.
fn rate_limited(scope: RateLimitScope, retry_after: f64) -> Resp {
    let global = scope == RateLimitScope::Global;
    let mut resp = json_response(
        StatusCode::TOO_MANY_REQUESTS,
        &json!({"message": "You are being rate limited.", "retry_after": retry_after, "global": global}),
    );
    set_header(&mut resp, "retry-after", &retry_after.ceil().to_string());
    let scope = match scope {
        RateLimitScope::User => "user",
        RateLimitScope::Global => "global",
        RateLimitScope::Shared => "shared",
    };
    set_header(&mut resp, "x-ratelimit-scope", scope);
    if global {
        set_header(&mut resp, "x-ratelimit-global", "true");
    }
    resp
}

fn limit_headers(resp: &mut Resp, limit: &Taken) {
    set_header(resp, "x-ratelimit-limit", &limit.limit.to_string());
    set_header(resp, "x-ratelimit-remaining", &limit.remaining.to_string());
    set_header(
        resp,
        "x-ratelimit-reset",
        &format!("{:.3}", unix_secs_f64() + limit.reset_after),
    );
    set_header(
        resp,
        "x-ratelimit-reset-after",
        &format!("{:.3}", limit.reset_after),
    );
    set_header(resp, "x-ratelimit-bucket", &limit.bucket);
}

fn answer(
    shared: &Shared,
    method: &str,
    template: &str,
    id: Option<u64>,
    body: Option<&Value>,
) -> Resp {
    let world = &shared.world;
    match (method, template) {
        (_, "/gateway") => json_response(StatusCode::OK, &json!({"url": shared.gateway_url})),
        (_, "/gateway/bot") => {
            let remaining = shared.lock().session_start_remaining;
            let c = &shared.config;
            json_response(
                StatusCode::OK,
                &json!({"url": shared.gateway_url, "shards": c.shards, "session_start_limit": {
                    "total": c.session_start_remaining.max(1000), "remaining": remaining,
                    "reset_after": 86_400_000, "max_concurrency": c.max_concurrency}}),
            )
        }
        (_, "/users/@me") => json_response(StatusCode::OK, &script::current_user_json(&world.bot)),
        (_, "/guilds/{guild_id}") => match id.and_then(|id| world.guild(id)) {
            Some(guild) => {
                let mut g = script::guild_create_json(world, guild);
                if let Some(obj) = g.as_object_mut() {
                    // GET /guilds/{id} carries no gateway-only fields.
                    for key in [
                        "joined_at",
                        "large",
                        "unavailable",
                        "member_count",
                        "voice_states",
                        "members",
                        "channels",
                        "threads",
                        "presences",
                        "stage_instances",
                        "guild_scheduled_events",
                        "soundboard_sounds",
                    ] {
                        obj.remove(key);
                    }
                }
                json_response(StatusCode::OK, &g)
            }
            None => error(StatusCode::NOT_FOUND, "Unknown Guild", 10004),
        },
        (_, "/channels/{channel_id}") => {
            match id.and_then(|id| world.guild_of_channel(id).map(|g| (g, id))) {
                Some((guild, id)) => {
                    json_response(StatusCode::OK, &script::channel_json(guild, id, true))
                }
                None => error(StatusCode::NOT_FOUND, "Unknown Channel", 10003),
            }
        }
        ("GET", _) => match id.and_then(|id| world.guild_of_channel(id)) {
            Some(_) => json_response(StatusCode::OK, &json!([])),
            None => error(StatusCode::NOT_FOUND, "Unknown Channel", 10003),
        },
        _ => create_message(shared, id, body),
    }
}

/// POST /channels/{channel.id}/messages.
fn create_message(shared: &Shared, channel_id: Option<u64>, body: Option<&Value>) -> Resp {
    let world = &shared.world;
    let Some((guild, channel_id)) =
        channel_id.and_then(|id| world.guild_of_channel(id).map(|g| (g, id)))
    else {
        return error(StatusCode::NOT_FOUND, "Unknown Channel", 10003);
    };
    let Some(body) = body.filter(|b| b.is_object()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "The request body contains invalid JSON.",
            50109,
        );
    };
    let content = body.get("content").and_then(Value::as_str).unwrap_or("");
    if content.chars().count() > 2000 {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"message": "Invalid Form Body", "code": 50035, "errors": {"content": {"_errors": [
                {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]}}}),
        );
    }
    let non_empty = |key: &str| {
        body.get(key)
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
    };
    if content.is_empty()
        && !["embeds", "sticker_ids", "components", "attachments"]
            .iter()
            .any(|k| non_empty(k))
    {
        return error(
            StatusCode::BAD_REQUEST,
            "Cannot send an empty message",
            50006,
        );
    }
    let (message, line) = {
        let mut state = shared.lock();
        script::post_message(
            shared,
            &mut state,
            guild,
            channel_id,
            &world.bot,
            content,
            Some(body),
        )
    };
    shared.publish(line);
    json_response(StatusCode::OK, &message)
}
