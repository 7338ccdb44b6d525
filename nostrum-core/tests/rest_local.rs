//! The REST client against the local Discord: answers, retries, timeouts, tokens, uploads, spec.

mod rest_support;

use std::time::Duration;

use nostrum_core::http::ratelimit::NoLimiter;
use nostrum_core::http::{Http, HttpErrorKind, routes};
use nostrum_core::local::{LocalConfig, LocalDiscord, RestFault};
use nostrum_core::model::http::attachment::Attachment;
use nostrum_core::model::id::Id;
use serde_json::json;

async fn local() -> LocalDiscord {
    LocalDiscord::start(LocalConfig::default())
        .await
        .expect("start")
}

fn client(discord: &LocalDiscord, timeout: Duration) -> Http {
    Http::builder(Some(discord.token().into()))
        .api_base(discord.api_base())
        .timeout(timeout)
        .ratelimiter(NoLimiter)
        .build()
}

fn header<'a>(request: &'a nostrum_core::local::RecordedRequest, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn scripted_routes_answer_twilight_types() {
    let discord = local().await;
    let http = client(&discord, Duration::from_secs(5));
    let (g, c, bot) = rest_support::ids(&discord);
    let me = http.current_user().await.expect("current user");
    assert_eq!(me.id, bot);
    let gateway = http.gateway_bot().await.expect("gateway");
    assert_eq!(gateway.shards, 1);
    assert_eq!(http.get_guild(g).await.expect("guild").id, g);
    assert_eq!(http.get_channel(c).await.expect("channel").id, c);
    let sent = http
        .create_message(c)
        .content("pyongyang!")
        .await
        .expect("message");
    assert_eq!(sent.content, "pyongyang!");
    let err = http.get_channel(Id::new(12_345)).await.unwrap_err();
    assert_eq!((err.status_code(), err.code()), (Some(404), Some(10003)));
    assert_eq!(err.request(), Some("GET /channels/12345"));
}

#[tokio::test]
async fn server_errors_are_retried_for_idempotent_requests_only() {
    let discord = local().await;
    let http = client(&discord, Duration::from_secs(5));
    let (_, c, _) = rest_support::ids(&discord);
    discord.inject_rest_fault(RestFault::ServerError(502), 2);
    http.get_channel(c).await.expect("retried through two 502s");
    assert_eq!(discord.requests().len(), 3);
    discord.inject_rest_fault(RestFault::ServerError(503), 1);
    let err = http.create_message(c).content("once").await.unwrap_err();
    assert_eq!(err.status_code(), Some(503));
    let posts = discord
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(posts, 1, "a POST is never sent twice");
    assert_eq!(discord.rest_stats().server_errors, 3);
}

#[tokio::test]
async fn slow_answers_time_out_and_idempotent_requests_try_again() {
    let discord = local().await;
    let http = client(&discord, Duration::from_millis(300));
    let (_, c, _) = rest_support::ids(&discord);
    discord.inject_rest_fault(RestFault::Slow(Duration::from_secs(2)), 1);
    http.get_channel(c)
        .await
        .expect("the retry is answered in time");
    discord.inject_rest_fault(RestFault::Slow(Duration::from_secs(2)), 1);
    let err = http.create_message(c).content("slow").await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(matches!(err.kind(), HttpErrorKind::Timeout));
}

#[tokio::test]
async fn webhook_routes_send_no_bot_token_and_never_show_theirs() {
    let discord = local().await;
    let http = client(&discord, Duration::from_secs(5));
    let token = "webhook-s3cr3t";
    let err = http
        .execute_webhook(Id::new(7), token)
        .content("hi")
        .await
        .unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(token), "{shown}");
    assert!(shown.contains("/webhooks/7/:token"), "{shown}");
    let request = discord.requests().pop().expect("sent");
    assert!(request.path.contains(token), "the server got the token");
    assert_eq!(header(&request, "authorization"), None);
    // The bot token goes to bot routes only, and never into an error.
    let err = http.get_channel(Id::new(1)).await.unwrap_err();
    assert!(!format!("{err:?}").contains(&discord.token()));
}

#[tokio::test]
async fn audit_log_reasons_are_percent_encoded() {
    let discord = local().await;
    let http = client(&discord, Duration::from_secs(5));
    let (_, c, _) = rest_support::ids(&discord);
    http.route(&routes::CREATE_MESSAGE, &[&c.to_string()])
        .json(&json!({"content": "x"}))
        .reason("spam: ünïcode / 100%")
        .await
        .expect("sent");
    let request = discord.requests().pop().expect("sent");
    assert_eq!(
        header(&request, "x-audit-log-reason"),
        Some("spam:%20%C3%BCn%C3%AFcode%20%2F%20100%25")
    );
}

#[tokio::test]
async fn files_are_uploaded_as_multipart_and_checked_against_the_spec() {
    let Some((discord, _)) = rest_support::local_with_spec().await else {
        return;
    };
    let http = client(&discord, Duration::from_secs(5));
    let (g, c, _) = rest_support::ids(&discord);
    let bytes: Vec<u8> = (0..=255).collect();
    let file = Attachment::from_bytes("bytes.bin".into(), bytes.clone(), 0);
    http.create_message(c)
        .content("see attached")
        .attachments(&[file])
        .await
        .expect("uploaded");
    let uploads = discord.uploads();
    assert_eq!(uploads.len(), 1);
    assert_eq!(
        (uploads[0].field.as_str(), uploads[0].filename.as_str()),
        ("files[0]", "bytes.bin")
    );
    assert_eq!(uploads[0].bytes, bytes, "binary content intact");
    let request = discord.requests().pop().expect("sent");
    let body = request.body.expect("payload_json");
    assert_eq!(body["attachments"][0]["filename"], "bytes.bin");
    // A multipart-only route: fields as parts, the file as `file`.
    http.create_guild_sticker(g)
        .json(&json!({"name": "wave", "tags": "wave"}))
        .file("file", "wave.png", vec![1, 2, 3])
        .await
        .expect("sticker");
    assert!(
        discord.spec_violations().is_empty(),
        "{:?}",
        discord.spec_violations()
    );
}

#[tokio::test]
async fn a_malformed_request_fails_the_test_that_sent_it() {
    let Some((discord, _)) = rest_support::local_with_spec().await else {
        return;
    };
    let http = client(&discord, Duration::from_secs(5));
    let (g, c, _) = rest_support::ids(&discord);
    let err = http
        .route(&routes::CREATE_MESSAGE, &[&c.to_string()])
        .json(&json!({"content": 5, "embeds": [{"title": 7}]}))
        .await
        .unwrap_err();
    assert_eq!((err.status_code(), err.code()), (Some(400), Some(50035)));
    let mut paths: Vec<String> = err.field_errors().into_iter().map(|f| f.path).collect();
    paths.sort();
    assert_eq!(paths, ["content", "embeds.0.title"]);
    let err = http
        .list_guild_bans(g)
        .untyped()
        .query("limit", "many")
        .await
        .unwrap_err();
    assert!(err.is_validation(), "caught before sending: {err}");
    assert_eq!(
        discord.spec_violations().len(),
        2,
        "{:?}",
        discord.spec_violations()
    );
}

#[tokio::test]
async fn invalid_requests_are_caught_before_sending() {
    let discord = local().await;
    let http = client(&discord, Duration::from_secs(5));
    let (g, c, _) = rest_support::ids(&discord);
    assert!(
        http.create_message(c)
            .content("x".repeat(2001))
            .await
            .unwrap_err()
            .is_validation()
    );
    assert!(
        http.update_guild_member(g, Id::new(2))
            .nick(Some(""))
            .await
            .unwrap_err()
            .is_validation()
    );
    assert!(
        http.list_guild_bans(g)
            .query("limit", 0)
            .await
            .unwrap_err()
            .is_validation()
    );
    assert!(discord.requests().is_empty(), "nothing was sent");
}
