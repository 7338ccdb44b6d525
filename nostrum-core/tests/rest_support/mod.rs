//! Shared by the REST tests: the spec from ../shared, the local Discord, minimal bodies, tallies.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use nostrum_core::http::ratelimit::InProcessLimiter;
use nostrum_core::http::{Http, HttpError};
use nostrum_core::local::{BucketPlan, LocalConfig, LocalDiscord};
use nostrum_core::model::http::interaction::{InteractionResponse, InteractionResponseType};
use nostrum_core::model::id::Id;
use nostrum_core::model::id::marker::{ChannelMarker, GuildMarker, UserMarker};
use serde_json::{Map, Value, json};

/// Discord's OpenAPI spec in the shared directory, if present.
pub(crate) fn spec_path() -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/discord/openapi.json");
    if path.exists() {
        Some(path)
    } else {
        eprintln!("skipped: {} is absent", path.display());
        None
    }
}

/// The spec as JSON.
pub(crate) fn spec() -> Option<Value> {
    let path = spec_path()?;
    Some(
        serde_json::from_slice(&std::fs::read(path).expect("read the spec"))
            .expect("the spec is JSON"),
    )
}

/// A local Discord that checks every request against the spec, with roomy buckets.
pub(crate) async fn local_with_spec() -> Option<(LocalDiscord, Examples)> {
    let path = spec_path()?;
    let discord = LocalDiscord::start(LocalConfig::default())
        .await
        .expect("start");
    discord.validate_with_spec(&path).expect("load the spec");
    discord.set_bucket_plan(BucketPlan::default().default_limit(1000, Duration::from_secs(1)));
    Some((discord, Examples::new(spec()?)))
}

/// A client for the local Discord without a global limit.
pub(crate) fn client(discord: &LocalDiscord) -> Http {
    Http::builder(Some(discord.token().into()))
        .api_base(discord.api_base())
        .ratelimiter(InProcessLimiter::builder().no_global().build())
        .build()
}

/// The scripted guild, its channel, and the bot's user id.
pub(crate) fn ids(discord: &LocalDiscord) -> (Id<GuildMarker>, Id<ChannelMarker>, Id<UserMarker>) {
    let guild = discord.guild_ids()[0];
    let channel = discord.channel_ids(guild)[0];
    (
        Id::new(guild),
        Id::new(channel),
        Id::new(discord.bot_user_id()),
    )
}

/// The simplest interaction response.
pub(crate) fn pong() -> InteractionResponse {
    InteractionResponse {
        kind: InteractionResponseType::Pong,
        data: None,
    }
}

/// Minimal request bodies: what each operation's schema requires, and no more.
pub(crate) struct Examples {
    spec: Value,
    bodies: HashMap<String, Value>,
}

impl Examples {
    pub(crate) fn new(spec: Value) -> Self {
        let mut bodies = HashMap::new();
        for item in spec["paths"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(_, v)| v)
        {
            for op in item.as_object().into_iter().flatten().map(|(_, v)| v) {
                let content = &op["requestBody"]["content"];
                let schema = content
                    .get("application/json")
                    .or_else(|| content.get("multipart/form-data"))
                    .map(|c| c["schema"].clone());
                if let (Some(id), Some(schema)) = (op["operationId"].as_str(), schema) {
                    bodies.insert(id.to_owned(), schema);
                }
            }
        }
        Self { spec, bodies }
    }

    /// A minimal valid body for `operation` (files left out: they go as multipart parts).
    pub(crate) fn body(&self, operation: &str) -> Value {
        let schema = self
            .bodies
            .get(operation)
            .unwrap_or_else(|| panic!("{operation} takes no body"));
        let mut body = self.minimal(schema, 0, 0);
        if let Value::Object(map) = &mut body {
            map.retain(|_, v| v != "<binary>");
        }
        body
    }

    fn resolve<'a>(&'a self, mut schema: &'a Value) -> &'a Value {
        while let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            schema = &self.spec["components"]["schemas"][r.rsplit('/').next().unwrap_or("")];
        }
        schema
    }

    fn minimal(&self, schema: &Value, depth: usize, index: usize) -> Value {
        let schema = self.resolve(schema);
        assert!(depth < 16, "schema too deep");
        if let Some(c) = schema.get("const") {
            return c.clone();
        }
        if let Some(first) = schema
            .get("enum")
            .and_then(Value::as_array)
            .and_then(|e| e.get(index.min(e.len().saturating_sub(1))))
        {
            return first.clone();
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(alts) = schema.get(key).and_then(Value::as_array) {
                let alt = alts
                    .iter()
                    .find(|a| a.get("type") != Some(&json!("null")))
                    .unwrap_or(&alts[0]);
                return self.minimal(alt, depth + 1, index);
            }
        }
        if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
            let mut merged = Map::new();
            for part in parts {
                if let Value::Object(map) = self.minimal(part, depth + 1, index) {
                    merged.extend(map);
                }
            }
            return Value::Object(merged);
        }
        let types: Vec<&str> = match schema.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec!["object"],
        };
        let uint = |k: &str| schema.get(k).and_then(Value::as_u64).map(|n| n as usize);
        match types
            .iter()
            .find(|t| **t != "null")
            .copied()
            .unwrap_or("null")
        {
            "object" => {
                let mut map = Map::new();
                for name in schema
                    .get("required")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    let prop = &schema["properties"][name];
                    map.insert(name.to_owned(), self.minimal(prop, depth + 1, 0));
                }
                Value::Object(map)
            }
            "array" => {
                let n = uint("minItems").unwrap_or(0);
                let item = schema.get("items").cloned().unwrap_or(Value::Null);
                Value::Array((0..n).map(|i| self.minimal(&item, depth + 1, i)).collect())
            }
            "string" => {
                if schema.get("contentEncoding") == Some(&json!("binary")) {
                    return json!("<binary>");
                }
                let format = schema.get("format").and_then(Value::as_str).unwrap_or("");
                let mut s = match format {
                    "snowflake" => (index + 2).to_string(),
                    "date-time" => "2030-01-01T00:00:00+00:00".to_owned(),
                    "uri" => "https://example.invalid/".to_owned(),
                    _ => format!("x{index}"),
                };
                let (min, max) = (
                    uint("minLength").unwrap_or(0),
                    uint("maxLength").unwrap_or(usize::MAX),
                );
                s.truncate(max);
                while s.chars().count() < min {
                    s.push('x');
                }
                Value::String(s)
            }
            "integer" => {
                let min = schema.get("minimum").and_then(Value::as_i64).unwrap_or(0);
                json!(
                    min.max(0).min(
                        schema
                            .get("maximum")
                            .and_then(Value::as_i64)
                            .unwrap_or(i64::MAX)
                    ) + index as i64
                )
            }
            "number" => json!(schema.get("minimum").and_then(Value::as_f64).unwrap_or(0.0)),
            "boolean" => json!(false),
            _ => Value::Null,
        }
    }
}

/// The outcome of each call, and the failures to show at the end.
#[derive(Default)]
pub(crate) struct Outcomes {
    calls: usize,
    failures: Vec<String>,
}

impl Outcomes {
    pub(crate) fn record(&mut self, operation: &str, result: Result<(), HttpError>) {
        self.calls += 1;
        if let Err(err) = result {
            let source = std::error::Error::source(&err)
                .map(ToString::to_string)
                .unwrap_or_default();
            self.failures.push(format!(
                "{operation}: {err} {source} {:?}",
                err.field_errors()
            ));
        }
    }

    pub(crate) fn assert_all(&self, expected: usize, discord: &LocalDiscord) {
        let violations = discord.spec_violations();
        assert!(
            self.failures.is_empty() && violations.is_empty(),
            "{} of {} calls failed:\n{}\nspec violations:\n{}",
            self.failures.len(),
            self.calls,
            self.failures.join("\n"),
            violations.join("\n")
        );
        assert_eq!(self.calls, expected);
        eprintln!(
            "{} of {expected} operations called; every body passed the spec's schema",
            self.calls
        );
    }
}
