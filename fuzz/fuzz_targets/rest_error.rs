//! REST answers: `Outcome::parse` (rate-limit headers and a 429's body) directly, and a whole
//! exchange through `Http` against an in-process HTTP server that answers with the fuzzed status,
//! rate-limit headers and body, so `HttpError`'s parsing (status, Discord's code, message, field
//! errors), Display and Debug run on arbitrary answers.
//!
//! Input: bytes 0-1 the status (mapped into 200..=599), byte 2 a mask of which of `HEADERS` are
//! sent, then u16-length-prefixed chunks: one value per present header, then the body.
#![no_main]

use std::io::Write as _;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use nostrum_core::Token;
use nostrum_core::http::Http;
use nostrum_core::http::ratelimit::Outcome;
use nostrum_fuzz::chunks;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;

const HEADERS: [&str; 8] = [
    "x-ratelimit-bucket",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset-after",
    "x-ratelimit-global",
    "x-ratelimit-scope",
    "retry-after",
    "content-type",
];

struct Server {
    rt: Runtime,
    url: String,
    slot: Arc<Mutex<Vec<u8>>>,
}

static SERVER: OnceLock<Server> = OnceLock::new();

fn server() -> &'static Server {
    SERVER.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let listener = rt
            .block_on(TcpListener::bind(("127.0.0.1", 0)))
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let slot: Arc<Mutex<Vec<u8>>> = Arc::default();
        let answer = Arc::clone(&slot);
        rt.spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let response = answer
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = stream.write_all(&response).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Server { rt, url, slot }
    })
}

/// A header value: visible ASCII and spaces only, so that the HTTP layer carries it as it is.
fn header_value(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim()
        .to_owned()
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let status = 200 + u16::from_le_bytes([data[0], data[1]]) % 400;
    let mask = data[2];
    let mut parts = chunks(&data[3..]).into_iter();
    let mut headers: Vec<(&str, String)> = Vec::new();
    for (bit, name) in HEADERS.iter().enumerate() {
        if mask & (1 << bit) != 0 {
            headers.push((name, header_value(parts.next().unwrap_or_default())));
        }
    }
    let body = parts.next().unwrap_or_default();

    // 1. The parser on its own.
    let outcome = Outcome::parse(status, headers.iter().map(|(n, v)| (*n, v.as_str())), body);
    std::hint::black_box((outcome.wait_before_retry(), outcome.is_invalid()));

    // 2. A whole exchange. 1xx, 204 and 304 answers carry no body in HTTP/1.1.
    if matches!(status, 204 | 304) {
        return;
    }
    let server = server();
    let mut response = Vec::new();
    let _ = write!(
        response,
        "HTTP/1.1 {status} Fuzz\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in &headers {
        let _ = write!(response, "{name}: {value}\r\n");
    }
    response.extend_from_slice(b"\r\n");
    response.extend_from_slice(body);
    *server.slot.lock().unwrap_or_else(PoisonError::into_inner) = response;
    server.rt.block_on(async {
        let http = Http::builder(Some(Token::new("fuzz-token")))
            .api_base(server.url.clone())
            .timeout(Duration::from_secs(10))
            .retries(0)
            .rate_limit_retries(0)
            .build();
        let answer =
            tokio::time::timeout(Duration::from_secs(30), http.current_user().into_future())
                .await
                .expect("a REST exchange hung");
        if let Err(error) = answer {
            let text = format!("{error} {error:?}");
            assert!(!text.contains("fuzz-token"), "the token leaked: {text}");
            std::hint::black_box((
                error.field_errors(),
                error.code(),
                error.status_code(),
                error.kind(),
            ));
        }
    });
});
