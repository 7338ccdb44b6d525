//! `GatewayConfig`: what every shard of a bot shares (token, intents, URL, compression, limits).

use std::{sync::Arc, time::Duration};

use serde::Serialize;
use twilight_model::gateway::Intents;

use super::{Compression, IdentifyLimiter, IdentifyQueue};

/// Discord's default gateway URL.
pub const DEFAULT_GATEWAY_URL: &str = "wss://gateway.discord.gg";
/// The gateway API version the shard speaks.
pub const API_VERSION: u8 = 10;

/// The `properties` of IDENTIFY.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IdentifyProperties {
    /// Operating system (default: [`std::env::consts::OS`]).
    pub os: String,
    /// Library name (default: `nostrum-rs`).
    pub browser: String,
    /// Library name (default: `nostrum-rs`).
    pub device: String,
}

impl Default for IdentifyProperties {
    fn default() -> Self {
        Self {
            os: std::env::consts::OS.to_owned(),
            browser: "nostrum-rs".to_owned(),
            device: "nostrum-rs".to_owned(),
        }
    }
}

/// Configuration shared (`Arc`) by the shards of a bot.
///
/// Start from [`GatewayConfig::new`] and change the public fields.
///
/// ```
/// use nostrum_core::gateway::{Compression, GatewayConfig};
/// use twilight_model::gateway::Intents;
///
/// let mut config = GatewayConfig::new("secret".into(), Intents::GUILDS | Intents::GUILD_MESSAGES);
/// config.compression = Compression::ZstdStream;
/// assert_eq!(config.large_threshold, 50);
/// assert!(!format!("{config:?}").contains("secret"));
/// ```
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// The bot token (its Debug prints `<redacted>`).
    pub token: crate::Token,
    /// Gateway intents sent in IDENTIFY.
    pub intents: Intents,
    /// Where to connect, e.g. `wss://gateway.discord.gg` or `ws://127.0.0.1:PORT`; the shard
    /// appends `/?v=10&encoding=json` and the `compress` parameter.
    pub gateway_url: String,
    /// Transport compression (default [`Compression::ZlibStream`]).
    pub compression: Compression,
    /// Members above which Discord stops sending offline members, 50..=250 (default 50).
    pub large_threshold: u8,
    /// The initial presence sent in IDENTIFY (the `d` of op 3).
    pub presence: Option<serde_json::Value>,
    /// IDENTIFY's connection properties.
    pub properties: IdentifyProperties,
    /// The queue all shards identify through: an [`IdentifyQueue`] for one process, or any
    /// [`IdentifyLimiter`] shared between processes.
    pub identify_queue: Arc<dyn IdentifyLimiter>,
    /// Largest decompressed message accepted (default 64 MiB). A larger one closes the
    /// connection (resumable), logs a warning and reconnects: memory stays bounded.
    pub max_decompressed_frame: usize,
    /// Range of the random wait before identifying again after an op 9 with `d: false`
    /// (default 1 to 5 s, as Discord asks).
    pub invalid_session_delay: (Duration, Duration),
}

impl GatewayConfig {
    /// A configuration with Discord's URL and the defaults of every other field.
    pub fn new(token: crate::Token, intents: Intents) -> Self {
        Self {
            token,
            intents,
            gateway_url: DEFAULT_GATEWAY_URL.to_owned(),
            compression: Compression::default(),
            large_threshold: 50,
            presence: None,
            properties: IdentifyProperties::default(),
            identify_queue: Arc::new(IdentifyQueue::default()),
            max_decompressed_frame: 64 << 20,
            invalid_session_delay: (Duration::from_secs(1), Duration::from_secs(5)),
        }
    }

    /// The URL to connect to: `base` (or the configured URL) plus the query string.
    pub(crate) fn url(&self, base: Option<&str>) -> String {
        let base = base.unwrap_or(&self.gateway_url);
        let base = base.trim_end_matches('/');
        let mut url = format!("{base}/?v={API_VERSION}&encoding=json");
        if let Some(compress) = self.compression.query() {
            url.push_str("&compress=");
            url.push_str(compress);
        }
        url
    }

    /// A random wait in [`invalid_session_delay`](Self::invalid_session_delay).
    pub(crate) fn invalid_session_wait(&self) -> Duration {
        let (low, high) = self.invalid_session_delay;
        if high <= low {
            return low;
        }
        low + (high - low).mul_f64(fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::GatewayConfig;
    use crate::gateway::Compression;
    use std::time::Duration;
    use twilight_model::gateway::Intents;

    #[test]
    fn url_has_the_query_string() {
        let mut config = GatewayConfig::new("secret".into(), Intents::empty());
        assert_eq!(
            config.url(None),
            "wss://gateway.discord.gg/?v=10&encoding=json&compress=zlib-stream"
        );
        config.compression = Compression::None;
        assert_eq!(
            config.url(Some("wss://resume.discord.gg/")),
            "wss://resume.discord.gg/?v=10&encoding=json"
        );
        config.compression = Compression::ZstdStream;
        config.gateway_url = "ws://127.0.0.1:1".into();
        assert_eq!(
            config.url(None),
            "ws://127.0.0.1:1/?v=10&encoding=json&compress=zstd-stream"
        );
        assert!(!format!("{config:?}").contains("secret"));
    }

    #[test]
    fn invalid_session_wait_is_in_range() {
        let mut config = GatewayConfig::new("t".into(), Intents::empty());
        for _ in 0..100 {
            let wait = config.invalid_session_wait();
            assert!((Duration::from_secs(1)..=Duration::from_secs(5)).contains(&wait));
        }
        config.invalid_session_delay = (Duration::ZERO, Duration::ZERO);
        assert_eq!(config.invalid_session_wait(), Duration::ZERO);
    }
}
