//! The in-process rate limiter on paused time against a simulated Discord's headers and 429s.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nostrum_core::http::ratelimit::{BucketKey, InProcessLimiter, Outcome, RateLimiter};
use tokio::time::Instant;

const LATENCY: Duration = Duration::from_millis(30);

/// A simulated Discord: fixed windows of `limit` per `window` per bucket, and a storm of 429s.
#[derive(Default)]
struct Sim {
    limit: u32,
    window: Duration,
    windows: HashMap<(String, String), (u32, Instant)>,
    storm: Option<(&'static str, f64, Instant)>,
    always: Option<u16>,
    sent: Vec<(Instant, String, usize)>,
    too_many: usize,
}

impl Sim {
    fn new(limit: u32, window: Duration) -> Arc<Mutex<Sim>> {
        Arc::new(Mutex::new(Sim {
            limit,
            window,
            ..Sim::default()
        }))
    }

    /// Answers a request sent now: the status and Discord's headers.
    fn answer(&mut self, key: &BucketKey, seq: usize) -> (u16, Vec<(String, String)>, String) {
        let now = Instant::now();
        self.sent.push((now, key.major().to_owned(), seq));
        if let Some(status) = self.always {
            return (status, vec![], "{}".into());
        }
        if let Some((scope, retry, until)) = self.storm
            && now < until
        {
            self.too_many += 1;
            let mut headers = vec![("x-ratelimit-scope".to_owned(), scope.to_owned())];
            if scope == "global" {
                headers.push(("x-ratelimit-global".into(), "true".into()));
            }
            let body = format!(
                r#"{{"retry_after":{retry},"global":{}}}"#,
                scope == "global"
            );
            return (429, headers, body);
        }
        let bucket = format!("bucket-of-{}", key.route());
        let (remaining, reset) = self
            .windows
            .entry((bucket.clone(), key.major().to_owned()))
            .or_insert((self.limit, now + self.window));
        if now >= *reset {
            *remaining = self.limit;
            *reset = now + self.window;
        }
        let reset_after = reset.duration_since(now).as_secs_f64();
        let mut headers = vec![
            ("x-ratelimit-bucket".to_owned(), bucket),
            ("x-ratelimit-limit".to_owned(), self.limit.to_string()),
            (
                "x-ratelimit-reset-after".to_owned(),
                format!("{reset_after:.3}"),
            ),
        ];
        if *remaining == 0 {
            self.too_many += 1;
            headers.push(("x-ratelimit-remaining".into(), "0".into()));
            headers.push(("x-ratelimit-scope".into(), "user".into()));
            return (
                429,
                headers,
                format!(r#"{{"retry_after":{reset_after},"global":false}}"#),
            );
        }
        *remaining -= 1;
        headers.push(("x-ratelimit-remaining".into(), remaining.to_string()));
        (200, headers, "{}".into())
    }
}

/// Enqueues every request in order (order is taken when `acquire` is called), then lets each one
/// send, retrying after 429s as the client does, until all are answered.
async fn run(limiter: &InProcessLimiter, sim: &Arc<Mutex<Sim>>, keys: Vec<BucketKey>) {
    let mut tasks = Vec::new();
    for (seq, key) in keys.into_iter().enumerate() {
        let acquired = limiter.acquire(key.clone());
        let sim = sim.clone();
        tasks.push(tokio::spawn(async move {
            let mut permit = acquired.await;
            loop {
                let (status, headers, body) = sim.lock().unwrap().answer(&key, seq);
                tokio::time::sleep(LATENCY).await;
                let outcome = Outcome::parse(
                    status,
                    headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
                    body.as_bytes(),
                );
                if status == 429 {
                    permit = permit.retry(outcome).await;
                    continue;
                }
                permit.complete(outcome);
                return status;
            }
        }));
    }
    for task in tasks {
        task.await.expect("request task");
    }
}

fn keys(requests: usize, routes: usize, majors: usize) -> Vec<BucketKey> {
    const ROUTES: [&str; 5] = [
        "POST /channels/{channel_id}/messages",
        "GET /channels/{channel_id}/messages",
        "PUT /channels/{channel_id}/pins/{message_id}",
        "GET /channels/{channel_id}",
        "PATCH /channels/{channel_id}",
    ];
    (0..requests)
        .map(|i| {
            BucketKey::new(
                ROUTES[i % routes],
                format!("{}", i / routes % majors),
                false,
            )
        })
        .collect()
}

/// The most sends within any `window`.
fn most_within(sent: &[(Instant, String, usize)], window: Duration) -> usize {
    let mut times: Vec<Instant> = sent.iter().map(|s| s.0).collect();
    times.sort();
    let mut most = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end].duration_since(times[start]) >= window {
            start += 1;
        }
        most = most.max(end - start + 1);
    }
    most
}

#[tokio::test(start_paused = true)]
async fn ten_thousand_requests_over_fifty_buckets_earn_no_429_and_keep_their_order() {
    let sim = Sim::new(5, Duration::from_secs(1));
    let limiter = InProcessLimiter::new();
    let begin = Instant::now();
    run(&limiter, &sim, keys(10_000, 5, 10)).await;
    let elapsed = begin.elapsed();
    let sim = sim.lock().unwrap();
    assert_eq!(sim.too_many, 0, "429s earned");
    assert_eq!(sim.sent.len(), 10_000);
    let mut last: HashMap<(String, usize), usize> = HashMap::new();
    for (_, major, seq) in &sim.sent {
        let bucket = (major.clone(), seq % 5);
        if let Some(previous) = last.insert(bucket, *seq) {
            assert!(
                previous < *seq,
                "order broken in bucket {major}: {previous} then {seq}"
            );
        }
    }
    assert!(most_within(&sim.sent, Duration::from_secs(1)) <= 50);
    // 10,000 at 50 per second take 200 s; each bucket's 200 at 5 per second take 40 s.
    assert!(elapsed >= Duration::from_secs(199), "{elapsed:?}");
    assert!(elapsed <= Duration::from_secs(215), "{elapsed:?}");
    assert_eq!(limiter.invalid_requests(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_global_limit_holds_at_fifty_per_second_and_interactions_are_exempt() {
    let sim = Sim::new(1_000, Duration::from_secs(1));
    let limiter = InProcessLimiter::new();
    let begin = Instant::now();
    let distinct: Vec<BucketKey> = (0..500)
        .map(|i| BucketKey::new("GET /channels/{channel_id}", i.to_string(), false))
        .collect();
    run(&limiter, &sim, distinct).await;
    let elapsed = begin.elapsed();
    {
        let sim = sim.lock().unwrap();
        assert_eq!(most_within(&sim.sent, Duration::from_secs(1)), 50);
        assert!(elapsed >= Duration::from_secs(9), "{elapsed:?}");
    }
    sim.lock().unwrap().sent.clear();
    let begin = Instant::now();
    let interactions: Vec<BucketKey> = (0..500)
        .map(|i| {
            BucketKey::new(
                "POST /interactions/{interaction_id}/{interaction_token}/callback",
                i.to_string(),
                true,
            )
        })
        .collect();
    run(&limiter, &sim, interactions).await;
    assert!(
        begin.elapsed() < Duration::from_secs(1),
        "{:?}",
        begin.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_user_429_storm_is_ridden_out_with_no_request_lost() {
    let sim = Sim::new(50, Duration::from_secs(1));
    sim.lock().unwrap().storm = Some(("user", 1.0, Instant::now() + Duration::from_secs(5)));
    let limiter = InProcessLimiter::new();
    run(&limiter, &sim, keys(1_000, 5, 2)).await;
    let sim = sim.lock().unwrap();
    let answered = sim.sent.len() - sim.too_many;
    assert_eq!(answered, 1_000, "every request answered");
    // 10 queues, each retrying its head once per retry_after through the 5 s storm.
    assert!(sim.too_many <= 10 * 6, "{} 429s", sim.too_many);
    assert_eq!(limiter.invalid_requests(), sim.too_many);
}

#[tokio::test(start_paused = true)]
async fn a_global_429_pauses_every_queue_and_a_shared_one_is_not_invalid() {
    let sim = Sim::new(50, Duration::from_secs(1));
    sim.lock().unwrap().storm = Some(("global", 2.0, Instant::now() + Duration::from_secs(4)));
    let limiter = InProcessLimiter::new();
    run(&limiter, &sim, keys(500, 5, 10)).await;
    {
        let sim = sim.lock().unwrap();
        assert_eq!(sim.sent.len() - sim.too_many, 500);
        // The first head of each of the 50 queues, then one request per global pause.
        assert!(sim.too_many <= 50 + 4, "{} 429s", sim.too_many);
    }
    let sim = Sim::new(50, Duration::from_secs(1));
    sim.lock().unwrap().storm = Some(("shared", 1.0, Instant::now() + Duration::from_secs(3)));
    let limiter = InProcessLimiter::new();
    run(&limiter, &sim, keys(100, 1, 1)).await;
    assert!(sim.lock().unwrap().too_many > 0);
    assert_eq!(limiter.invalid_requests(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_invalid_request_guard_makes_requests_wait() {
    let sim = Sim::new(50, Duration::from_secs(1));
    sim.lock().unwrap().always = Some(401);
    let limiter = InProcessLimiter::builder()
        .invalid_request_limit(10)
        .build();
    let begin = Instant::now();
    // One queue, so that each answer is known before the next request (requests already in flight
    // when the guard is reached still go: the guard is a quarter of Discord's limit for that).
    let same: Vec<BucketKey> = (0..15)
        .map(|_| BucketKey::new("GET /users/@me", "", false))
        .collect();
    run(&limiter, &sim, same).await;
    let sim = sim.lock().unwrap();
    let early = sim
        .sent
        .iter()
        .filter(|s| s.0 < begin + Duration::from_secs(590))
        .count();
    assert_eq!(early, 10, "the guard let more through");
    assert!(begin.elapsed() >= Duration::from_secs(600));
}
