//! Send-pacing jitter at 1, 10 and 100 concurrent streams, measured at a local voice server.
//!
//! `cargo run --release -p nostrum-voice --example pacing [seconds]` (default 5 s per round). For each
//! packet, its lateness is `arrival - (first arrival + n * 20 ms)` (drift shows up here) and its gap
//! error is `|gap - 20 ms|`; p50 and p99 over all packets of all streams are printed, with the CPU
//! time the process spent per stream while playing (client and local voice server share the
//! process, so it is an upper bound of the client's cost).

use std::time::Duration;

use bytes::Bytes;
use nostrum_voice::local::{LocalVoiceConfig, LocalVoiceServer};
use nostrum_voice::{ConnectionInfo, Track, VoiceConnection};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

async fn round(streams: usize, frames: usize) -> Result<(), Box<dyn std::error::Error>> {
    let mut pairs = Vec::new();
    for i in 0..streams {
        let server = LocalVoiceServer::start(LocalVoiceConfig::default()).await?;
        let info = ConnectionInfo {
            endpoint: server.endpoint().to_owned(),
            session_id: format!("bench-{i}"),
            token: server.token().to_owned(),
            guild_id: 1 + i as u64,
            user_id: 1,
            channel_id: 1,
        };
        let connection = VoiceConnection::connect(info).await?;
        pairs.push((server, connection));
    }
    let frame = Bytes::from(vec![0xFC; 120]);
    let (cpu_start, wall_start) = (cpu_seconds(), std::time::Instant::now());
    let tracks: Vec<_> = pairs
        .iter()
        .map(|(_, c)| c.play(Track::opus_frames(vec![frame.clone(); frames])))
        .collect();
    for track in &tracks {
        track.ended().await;
    }
    let cpu = cpu_seconds().zip(cpu_start).map(|(end, start)| end - start);
    let wall = wall_start.elapsed().as_secs_f64();
    let (mut late, mut gaps) = (Vec::new(), Vec::new());
    for (server, _) in &pairs {
        server
            .wait_for(Duration::from_secs(2), |p, _| p.len() >= frames)
            .await;
        let packets = server.received();
        let Some(first) = packets.first() else {
            continue;
        };
        for (n, packet) in packets.iter().take(frames).enumerate() {
            let ideal = first.at + Duration::from_millis(20) * n as u32;
            let ms = match packet.at.checked_duration_since(ideal) {
                Some(after) => after.as_secs_f64(),
                None => (ideal - packet.at).as_secs_f64(),
            } * 1e3;
            late.push(ms);
            if n > 0 {
                let gap = (packet.at - packets[n - 1].at).as_secs_f64() * 1e3;
                gaps.push((gap - 20.0).abs());
            }
        }
    }
    late.sort_by(f64::total_cmp);
    gaps.sort_by(f64::total_cmp);
    let cpu_per_stream = cpu.map_or(f64::NAN, |cpu| cpu / wall / streams as f64 * 100.0);
    println!(
        "{streams:>4} streams: |lateness| p50 {:6.3} ms p99 {:6.3} ms | |gap - 20 ms| p50 {:6.3} ms p99 {:6.3} ms | CPU {:.2}% of a core per stream ({} packets)",
        percentile(&late, 0.5),
        percentile(&late, 0.99),
        percentile(&gaps, 0.5),
        percentile(&gaps, 0.99),
        cpu_per_stream,
        late.len()
    );
    Ok(())
}

/// User plus system CPU time of this process, from `/proc/self/stat` (Linux; clock ticks of 1/100 s).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    for streams in [1, 10, 100] {
        round(streams, seconds * 50).await?;
    }
    Ok(())
}
