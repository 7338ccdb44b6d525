//! The REST server: `/api/v10` routes the bot uses, with auth, per-route rate limits and request recording.

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
use super::script;
use super::state::{Bucket, Shared, unix_secs_f64};

/// Largest request body accepted (Discord's upload limit for bots without boosts).
const MAX_BODY: usize = 25 * 1024 * 1024;
/// Requests per route bucket and window.
const BUCKET_LIMIT: u32 = 5;
const BUCKET_WINDOW: Duration = Duration::from_secs(5);

type Resp = Response<Full<Bytes>>;

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
    let authorized = req
        .headers()
        .get(AUTHORIZATION)
        .is_some_and(|v| v.as_bytes() == expected.as_bytes());
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
    let body = bytes
        .as_deref()
        .and_then(|b| parse_body(content_type.as_deref(), b));
    {
        let record = RecordedRequest {
            method: method.clone(),
            path: path.clone(),
            query,
            headers,
            body: body.clone(),
            at: Instant::now(),
        };
        shared.lock().requests.push(record);
        shared.notify();
    }
    if bytes.is_none() {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request entity too large",
            40005,
        );
    }
    route(shared, &method, &path, authorized, body.as_ref())
}

/// The JSON body, or the `payload_json` part of a multipart body.
fn parse_body(content_type: Option<&str>, bytes: &[u8]) -> Option<Value> {
    if bytes.is_empty() {
        return None;
    }
    let boundary = content_type
        .filter(|ct| ct.starts_with("multipart/form-data"))
        .and_then(|ct| {
            ct.split(';')
                .find_map(|p| p.trim().strip_prefix("boundary="))
        })
        .map(|b| b.trim_matches('"'));
    let Some(boundary) = boundary else {
        return serde_json::from_slice(bytes).ok();
    };
    let text = String::from_utf8_lossy(bytes);
    text.split(&format!("--{boundary}")).find_map(|part| {
        let (head, content) = part.split_once("\r\n\r\n")?;
        if !head.contains("name=\"payload_json\"") {
            return None;
        }
        serde_json::from_str(content.strip_suffix("\r\n").unwrap_or(content)).ok()
    })
}

fn json_response(status: StatusCode, body: &Value) -> Resp {
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

fn route(
    shared: &Shared,
    method: &str,
    path: &str,
    authorized: bool,
    body: Option<&Value>,
) -> Resp {
    let Some(rest) = path.strip_prefix("/api/v10/") else {
        return not_found();
    };
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let (template, major, methods): (&str, Option<&str>, &[&str]) = match segments.as_slice() {
        ["gateway"] => ("/gateway", None, &["GET"]),
        ["gateway", "bot"] => ("/gateway/bot", None, &["GET"]),
        ["users", "@me"] => ("/users/@me", None, &["GET"]),
        ["channels", id] => ("/channels/{channel.id}", Some(id), &["GET"]),
        ["channels", id, "messages"] => (
            "/channels/{channel.id}/messages",
            Some(id),
            &["GET", "POST"],
        ),
        ["guilds", id] => ("/guilds/{guild.id}", Some(id), &["GET"]),
        _ => return not_found(),
    };
    if !methods.contains(&method) {
        return error(StatusCode::METHOD_NOT_ALLOWED, "405: Method Not Allowed", 0);
    }
    if template != "/gateway" && !authorized {
        return error(StatusCode::UNAUTHORIZED, "401: Unauthorized", 0);
    }
    let limit = take_rate_limit(shared, &format!("{method} {template}"), major.unwrap_or(""));
    let mut resp = if limit.exceeded {
        let mut resp = json_response(
            StatusCode::TOO_MANY_REQUESTS,
            &json!({"message": "You are being rate limited.", "retry_after": limit.reset_after, "global": false}),
        );
        set_header(
            &mut resp,
            "retry-after",
            &limit.reset_after.ceil().to_string(),
        );
        set_header(&mut resp, "x-ratelimit-scope", "user");
        resp
    } else {
        let id = major.and_then(|m| m.parse::<u64>().ok());
        answer(shared, method, template, id, body)
    };
    set_header(&mut resp, "x-ratelimit-limit", &BUCKET_LIMIT.to_string());
    set_header(
        &mut resp,
        "x-ratelimit-remaining",
        &limit.remaining.to_string(),
    );
    set_header(
        &mut resp,
        "x-ratelimit-reset",
        &format!("{:.3}", limit.reset),
    );
    set_header(
        &mut resp,
        "x-ratelimit-reset-after",
        &format!("{:.3}", limit.reset_after),
    );
    set_header(&mut resp, "x-ratelimit-bucket", &limit.bucket);
    resp
}

/// The outcome of taking one request from a route's bucket.
struct Taken {
    exceeded: bool,
    remaining: u32,
    reset: f64,
    reset_after: f64,
    bucket: String,
}

fn take_rate_limit(shared: &Shared, route: &str, major: &str) -> Taken {
    // A fixed hash per route, like Discord's opaque bucket ids (FNV-1a).
    let hash = route.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let now = Instant::now();
    let mut state = shared.lock();
    let bucket = state
        .buckets
        .entry(format!("{route} {major}"))
        .or_insert(Bucket {
            remaining: BUCKET_LIMIT,
            reset_at: now + BUCKET_WINDOW,
            reset_unix: unix_secs_f64() + BUCKET_WINDOW.as_secs_f64(),
        });
    if now >= bucket.reset_at {
        *bucket = Bucket {
            remaining: BUCKET_LIMIT,
            reset_at: now + BUCKET_WINDOW,
            reset_unix: unix_secs_f64() + BUCKET_WINDOW.as_secs_f64(),
        };
    }
    let exceeded = bucket.remaining == 0 && shared.config.rest_rate_limit;
    bucket.remaining = bucket.remaining.saturating_sub(1);
    Taken {
        exceeded,
        remaining: bucket.remaining,
        reset: bucket.reset_unix,
        reset_after: bucket.reset_at.saturating_duration_since(now).as_secs_f64(),
        bucket: format!("{hash:016x}"),
    }
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
        (_, "/guilds/{guild.id}") => match id.and_then(|id| world.guild(id)) {
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
        (_, "/channels/{channel.id}") => {
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
