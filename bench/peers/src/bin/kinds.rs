//! Per kind: ns per event of nostrum's typed parse (`Event::from_dispatch`) against a walk of the
//! same `d` (serde_json `IgnoredAny`), on the peers corpus. For finding where the parse goes.
//!
//! ```text
//! cd bench && cargo run --release -p peers --bin kinds [-- guilds events]
//! ```

use std::hint::black_box;
use std::time::Instant;

use serde_json::value::RawValue;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let guilds: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(200);
    let events: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let corpus = peers::corpus(42, guilds, events);
    let split = |frame: &str| -> (String, Box<RawValue>) {
        #[derive(serde::Deserialize)]
        struct Env {
            t: String,
            d: Box<RawValue>,
        }
        let env: Env = serde_json::from_str(frame).expect("envelope");
        (env.t, env.d)
    };
    let mut by_kind: Vec<(String, Vec<Box<RawValue>>)> = Vec::new();
    for frame in corpus.startup.iter().chain(&corpus.steady) {
        let (t, d) = split(frame);
        match by_kind.iter_mut().find(|(k, _)| *k == t) {
            Some((_, v)) => v.push(d),
            None => by_kind.push((t, vec![d])),
        }
    }
    // The kinds nostrum types with its own parsers hold what twilight-model's derive makes.
    let mut compared = 0;
    for (kind, ds) in &by_kind {
        for d in ds {
            use nostrum_core::event::Event;
            use twilight_model::gateway::payload::incoming::{GuildCreate, MemberAdd};
            use twilight_model::gateway::presence::Presence;
            let event = Event::from_dispatch(kind, d);
            let same = match &event {
                Event::GuildCreate(ours) => {
                    **ours == serde_json::from_str::<GuildCreate>(d.get()).unwrap()
                }
                Event::PresenceUpdate(ours) => {
                    ours.new == serde_json::from_str::<Presence>(d.get()).unwrap()
                }
                Event::GuildMemberAdd(ours) => {
                    **ours == serde_json::from_str::<MemberAdd>(d.get()).unwrap()
                }
                _ => continue,
            };
            assert!(
                same,
                "{kind}: nostrum's parse differs from the derive: {}",
                d.get()
            );
            compared += 1;
        }
    }
    println!(
        "{compared} GUILD_CREATE, PRESENCE_UPDATE and GUILD_MEMBER_ADD payloads: the same as twilight-model's derive"
    );
    let mut total_typed = 0.0;
    let mut total_walk = 0.0;
    println!("| kind | n | bytes/event | typed ns/event | walk ns/event | typed share of steady |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let mut rows = Vec::new();
    for (kind, ds) in &by_kind {
        let reps = (200_000 / ds.len()).clamp(1, 50);
        let mut typed = Vec::new();
        let mut walk = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            for _ in 0..reps {
                for d in ds {
                    black_box(nostrum_core::event::Event::from_dispatch(kind, d));
                }
            }
            typed.push(t.elapsed().as_secs_f64() * 1e9 / (reps * ds.len()) as f64);
            let t = Instant::now();
            for _ in 0..reps {
                for d in ds {
                    black_box(serde_json::from_str::<serde::de::IgnoredAny>(d.get()).unwrap());
                }
            }
            walk.push(t.elapsed().as_secs_f64() * 1e9 / (reps * ds.len()) as f64);
        }
        typed.sort_by(f64::total_cmp);
        walk.sort_by(f64::total_cmp);
        let bytes = ds.iter().map(|d| d.get().len()).sum::<usize>() / ds.len();
        if kind != "GUILD_CREATE" && kind != "READY" {
            total_typed += typed[2] * ds.len() as f64;
            total_walk += walk[2] * ds.len() as f64;
        }
        rows.push((kind.clone(), ds.len(), bytes, typed[2], walk[2]));
    }
    for (kind, n, bytes, typed, walk) in &rows {
        let share = if kind == "GUILD_CREATE" || kind == "READY" {
            "-".to_owned()
        } else {
            format!("{:.1}%", typed * *n as f64 * 100.0 / total_typed)
        };
        println!("| {kind} | {n} | {bytes} | {typed:.0} | {walk:.0} | {share} |");
    }
    println!(
        "steady: typed {:.0} ns/event, walk {:.0} ns/event",
        total_typed / events as f64,
        total_walk / events as f64
    );
}
