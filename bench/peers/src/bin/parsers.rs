//! serde_json against sonic-rs and simd-json, parsing the peers corpus into twilight-model types.
//!
//! Every frame goes through twilight-model 0.18's `GatewayEventDeserializer` (the envelope, then
//! `d` into the event's type), driven by each parser's serde `Deserializer`: the same types, the
//! same derive code, only the parser differs. Before timing, every frame is parsed by all three and
//! the results compared (`Debug` output); a failure or a difference is printed and counted.
//!
//! ```text
//! cd bench && cargo run --release -p peers --bin parsers              # 200 guilds, 100000 events, 7 runs
//! cd bench && cargo run --release -p peers --bin parsers -- 50 20000 3
//! ```

use std::hint::black_box;
use std::time::Instant;

use serde::de::DeserializeSeed;
use twilight_model::gateway::event::{GatewayEvent, GatewayEventDeserializer};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Parser {
    SerdeJson,
    SonicRs,
    SimdJson,
}

impl Parser {
    const ALL: [Parser; 3] = [Parser::SerdeJson, Parser::SonicRs, Parser::SimdJson];

    fn name(self) -> &'static str {
        match self {
            Parser::SerdeJson => "serde_json 1",
            Parser::SonicRs => "sonic-rs 0.5",
            Parser::SimdJson => "simd-json 0.15 (copy of the frame included)",
        }
    }

    /// Parses one frame; `scratch` is simd-json's mutable copy of it (it parses in place).
    fn parse(self, frame: &str, scratch: &mut Vec<u8>) -> Result<GatewayEvent, String> {
        let seed = GatewayEventDeserializer::from_json(frame).ok_or("no envelope")?;
        match self {
            Parser::SerdeJson => {
                let mut de = serde_json::Deserializer::from_str(frame);
                seed.deserialize(&mut de).map_err(|e| e.to_string())
            }
            Parser::SonicRs => {
                let mut de = sonic_rs::Deserializer::from_str(frame);
                seed.deserialize(&mut de).map_err(|e| e.to_string())
            }
            Parser::SimdJson => {
                scratch.clear();
                scratch.extend_from_slice(frame.as_bytes());
                let mut de =
                    simd_json::Deserializer::from_slice(scratch).map_err(|e| e.to_string())?;
                seed.deserialize(&mut de).map_err(|e| e.to_string())
            }
        }
    }
}

/// Parses every frame, keeping none: the number parsed.
fn parse_all(parser: Parser, frames: &[String]) -> usize {
    let mut scratch = Vec::with_capacity(1 << 16);
    let mut ok = 0;
    for frame in frames {
        if let Ok(event) = parser.parse(black_box(frame), &mut scratch) {
            black_box(&event);
            ok += 1;
        }
    }
    ok
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let guilds: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(200);
    let events: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let runs: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(7);
    println!("{}", nostrum_bench::machine());
    println!(
        "x86 features at compile time: avx2 {}, sse4.2 {}, pclmulqdq {}",
        cfg!(target_feature = "avx2"),
        cfg!(target_feature = "sse4.2"),
        cfg!(target_feature = "pclmulqdq")
    );
    let corpus = peers::corpus(42, guilds, events);
    println!(
        "corpus (seed 42): {guilds} guilds, {} start-up frames ({:.1} MB), {events} steady frames ({:.1} MB)",
        corpus.startup.len(),
        corpus.startup_bytes() as f64 / 1e6,
        corpus.steady_bytes() as f64 / 1e6
    );

    // Same results from all three, frame by frame.
    let mut scratch = Vec::new();
    for parser in [Parser::SonicRs, Parser::SimdJson] {
        let (mut failed, mut differ) = (0usize, 0usize);
        for frame in corpus.startup.iter().chain(&corpus.steady) {
            let want = Parser::SerdeJson
                .parse(frame, &mut scratch)
                .expect("serde_json parses");
            match parser.parse(frame, &mut scratch) {
                Ok(got) if format!("{got:?}") == format!("{want:?}") => {}
                Ok(_) => {
                    if differ == 0 {
                        eprintln!(
                            "{}: differs on {}",
                            parser.name(),
                            &frame[..frame.len().min(60)]
                        );
                    }
                    differ += 1;
                }
                Err(err) => {
                    if failed == 0 {
                        eprintln!(
                            "{}: {err} on {}",
                            parser.name(),
                            &frame[..frame.len().min(60)]
                        );
                    }
                    failed += 1;
                }
            }
        }
        println!(
            "{}: {failed} frames failed, {differ} parsed differently from serde_json (of {})",
            parser.name(),
            corpus.startup.len() + corpus.steady.len()
        );
    }

    // Interleaved runs.
    let mut steady: Vec<Vec<f64>> = vec![Vec::new(); 3];
    let mut startup: Vec<Vec<f64>> = vec![Vec::new(); 3];
    for _ in 0..runs {
        for (i, parser) in Parser::ALL.into_iter().enumerate() {
            let t = Instant::now();
            let ok = parse_all(parser, &corpus.startup);
            startup[i].push(t.elapsed().as_secs_f64() * 1e3);
            assert_eq!(ok, corpus.startup.len(), "{}", parser.name());
            let t = Instant::now();
            let ok = parse_all(parser, &corpus.steady);
            steady[i].push(events as f64 / t.elapsed().as_secs_f64());
            assert_eq!(ok, corpus.steady.len(), "{}", parser.name());
        }
    }
    let base_steady = median(steady[0].clone());
    let base_startup = median(startup[0].clone());
    println!();
    println!(
        "| parser (into twilight-model 0.18 `GatewayEvent`) | steady events/s | vs serde_json | READY + GUILD_CREATEs ms | vs serde_json |"
    );
    println!("| --- | --- | --- | --- | --- |");
    for (i, parser) in Parser::ALL.into_iter().enumerate() {
        let s = median(steady[i].clone());
        let u = median(startup[i].clone());
        println!(
            "| {} | {s:.0} | {:.2}x | {u:.0} | {:.2}x |",
            parser.name(),
            s / base_steady,
            u / base_startup
        );
    }
    println!(
        "\nmedians of {runs} interleaved runs; min..max steady events/s: {}",
        Parser::ALL
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                let min = steady[i].iter().copied().fold(f64::INFINITY, f64::min);
                let max = steady[i].iter().copied().fold(0.0, f64::max);
                format!("{} {min:.0}..{max:.0}", p.name())
            })
            .collect::<Vec<_>>()
            .join("; ")
    );
}
