//! Shared pieces of the benchmarks: realistic gateway payloads, medians, the machine, tables.

use std::time::Duration;

use serde_json::{Value, json};

/// A small, deterministic xorshift generator: the payloads are the same on every run.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (0 is replaced).
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The words of generated message contents (shared with the peers' corpus).
pub const WORDS: &[&str] = &[
    "hey",
    "anyone",
    "know",
    "how",
    "to",
    "fix",
    "the",
    "build",
    "it",
    "fails",
    "on",
    "my",
    "machine",
    "lol",
    "yeah",
    "same",
    "here",
    "just",
    "pushed",
    "a",
    "patch",
    "can",
    "you",
    "review",
    "later",
    "thanks",
    "ok",
    "ping",
    "pong",
    "deploy",
    "is",
    "green",
    "now",
    "who",
    "broke",
    "main",
    "again",
    "coffee",
    "time",
    "brb",
    "nice",
    "screenshot",
    "works",
    "for",
    "me",
    "weird",
    "try",
    "restarting",
    "game",
    "tonight",
    "?",
    "!",
];

const GUILD: u64 = 1_100_000_000_000_000_001;
const ROLE: u64 = 1_100_000_000_000_000_777;

fn user(id: u64) -> Value {
    let n = id % 1000;
    json!({
        "username": format!("user{n}"),
        "public_flags": 0,
        "id": (1_200_000_000_000_000_000 + id).to_string(),
        "global_name": format!("User {n}"),
        "discriminator": "0",
        "clan": null,
        "avatar_decoration_data": null,
        "avatar": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
    })
}

fn member() -> Value {
    json!({
        "roles": [ROLE.to_string()],
        "premium_since": null,
        "pending": false,
        "nick": null,
        "mute": false,
        "joined_at": "2023-02-11T18:21:03.442000+00:00",
        "flags": 0,
        "deaf": false,
        "communication_disabled_until": null,
        "banner": null,
        "avatar": null,
    })
}

/// The `d` of a guild MESSAGE_CREATE as Discord sends it (v10): author, member, content, mentions,
/// embeds `[]`. `i` varies the ids, `rng` the author, channel, content and mentions.
pub fn message_create(i: u64, rng: &mut Rng, with_mention: bool) -> Value {
    let author = rng.below(40);
    let channel = 1_300_000_000_000_000_000 + rng.below(10);
    let words = 3 + rng.below(10);
    let mut content: Vec<&str> = (0..words)
        .map(|_| WORDS[rng.below(WORDS.len() as u64) as usize])
        .collect();
    let mut mentions = Vec::new();
    if with_mention {
        let mentioned = rng.below(40);
        let mut mention = user(mentioned);
        mention["member"] = member();
        mentions.push(mention);
        content.insert(0, "<@1200000000000000007>");
    }
    json!({
        "type": 0,
        "tts": false,
        "timestamp": "2024-05-01T12:34:56.789000+00:00",
        "pinned": false,
        "nonce": (1_400_000_000_000_000_000 + i).to_string(),
        "mentions": mentions,
        "mention_roles": [],
        "mention_everyone": false,
        "member": member(),
        "id": (1_500_000_000_000_000_000 + i).to_string(),
        "flags": 0,
        "embeds": [],
        "edited_timestamp": null,
        "content": content.join(" "),
        "components": [],
        "channel_id": channel.to_string(),
        "author": user(author),
        "attachments": [],
        "guild_id": GUILD.to_string(),
    })
}

/// The `d` of a guild TYPING_START (with the member and its user).
pub fn typing_start(rng: &mut Rng) -> Value {
    let who = rng.below(40);
    let mut member = member();
    member["user"] = user(who);
    json!({
        "user_id": (1_200_000_000_000_000_000 + who).to_string(),
        "timestamp": 1_714_566_896,
        "member": member,
        "channel_id": (1_300_000_000_000_000_000 + rng.below(10)).to_string(),
        "guild_id": GUILD.to_string(),
    })
}

/// A whole gateway dispatch frame, keys in Discord's order.
pub fn dispatch_frame(name: &str, seq: u64, d: &Value) -> String {
    format!(r#"{{"t":"{name}","s":{seq},"op":0,"d":{d}}}"#)
}

/// The median of some durations.
pub fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    let n = samples.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2.0
    }
}

/// Nanoseconds per item.
pub fn ns_per(elapsed: Duration, items: u64) -> f64 {
    elapsed.as_nanos() as f64 / items as f64
}

/// `nproc`, the CPU model from /proc/cpuinfo, the date and the load average, for the report.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|date| date.trim().to_owned())
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|load| {
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    format!("nproc {cpus}, {model}, {date}, load average at start {load}")
}

/// Prints a markdown table.
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    println!("| {} |", headers.join(" | "));
    println!(
        "|{}|",
        headers
            .iter()
            .map(|_| " --- ")
            .collect::<Vec<_>>()
            .join("|")
    );
    for row in rows {
        println!("| {} |", row.join(" | "));
    }
}

/// Runs `f` `runs` times and returns the median of what it returned.
pub fn median_of(runs: usize, mut f: impl FnMut() -> f64) -> f64 {
    median((0..runs).map(|_| f()).collect())
}
