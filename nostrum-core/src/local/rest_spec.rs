//! The local REST server's reading of Discord's OpenAPI spec: route matching and a schema check.

use std::io;
use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::LocalDiscord;
use super::rest_body::percent_decode;

/// How deep the check follows a body (the spec has recursive schemas).
const CHECK_DEPTH: usize = 24;

/// Discord's spec, read once.
#[derive(Debug)]
pub(super) struct Spec {
    root: Value,
    paths: Vec<SpecPath>,
}

#[derive(Debug)]
struct SpecPath {
    template: String,
    segments: Vec<Option<String>>,
    ops: Vec<(String, SpecOp)>,
}

/// One operation of the spec.
#[derive(Debug)]
pub(super) struct SpecOp {
    pub(super) id: String,
    /// The accepted schemes: `[]` (none needed), `["BotToken"]`, `["OAuth2"]`.
    pub(super) security: Vec<Vec<String>>,
    json_body: Option<Value>,
    multipart_body: Option<Value>,
    body_required: bool,
    query: Vec<(String, Value)>,
    pub(super) success: Vec<(u16, Option<Value>)>,
}

impl Spec {
    /// Reads the spec at `path`.
    pub(super) fn load(path: &Path) -> io::Result<Spec> {
        let root: Value =
            serde_json::from_slice(&std::fs::read(path)?).map_err(io::Error::other)?;
        let mut paths = Vec::new();
        for (template, item) in root["paths"].as_object().into_iter().flatten() {
            let segments = template
                .split('/')
                .skip(1)
                .map(|s| (!s.starts_with('{')).then(|| s.to_owned()))
                .collect();
            let mut ops = Vec::new();
            for method in ["get", "post", "put", "patch", "delete"] {
                if let Some(op) = item.get(method) {
                    ops.push((method.to_uppercase(), SpecOp::read(op)));
                }
            }
            paths.push(SpecPath {
                template: template.clone(),
                segments,
                ops,
            });
        }
        Ok(Spec { root, paths })
    }

    /// The spec's template for a path below `/api/v10` (literal segments win over parameters),
    /// and the operation for the method if there is one.
    pub(super) fn find(&self, method: &str, segments: &[&str]) -> Option<(&str, Option<&SpecOp>)> {
        let best = self
            .paths
            .iter()
            .filter(|p| {
                p.segments.len() == segments.len()
                    && p.segments
                        .iter()
                        .zip(segments)
                        .all(|(want, got)| want.as_deref().is_none_or(|lit| lit == *got))
            })
            .max_by_key(|p| {
                // Prefer literals, earliest first: `/pins/{id}` over `/{id}/...`.
                p.segments
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.is_some())
                    .map(|(i, _)| 1_u64 << (32 - i.min(31)))
                    .sum::<u64>()
            })?;
        let op = best.ops.iter().find(|(m, _)| m == method).map(|(_, op)| op);
        Some((&best.template, op))
    }

    /// What is wrong with a request's query and body, as `field: problem` lines.
    pub(super) fn check_request(
        &self,
        op: &SpecOp,
        query: Option<&str>,
        body: Option<&Value>,
        multipart: bool,
    ) -> Vec<String> {
        let mut out = Vec::new();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value);
            match op.query.iter().find(|(n, _)| n == name) {
                None => out.push(format!("query {name}: not a parameter of {}", op.id)),
                Some((_, schema)) => {
                    let value = self.query_value(schema, &value);
                    self.check(schema, &value, &format!("query {name}"), &mut out, 0);
                }
            }
        }
        let schema = if multipart {
            op.multipart_body.as_ref().or(op.json_body.as_ref())
        } else {
            op.json_body.as_ref()
        };
        match (schema, body) {
            (Some(schema), Some(body)) => self.check(schema, body, "body", &mut out, 0),
            (Some(_), None) if op.body_required => {
                out.push(format!("body: {} needs a body", op.id))
            }
            (None, Some(_)) => out.push(format!("body: {} takes no body", op.id)),
            _ => {}
        }
        out
    }

    /// A query string value as the JSON its schema expects.
    fn query_value(&self, schema: &Value, value: &str) -> Value {
        let schema = self.resolve(schema);
        let types = types_of(schema);
        if types.contains(&"integer") || types.contains(&"number") {
            if let Ok(n) = value.parse::<i64>() {
                return json!(n);
            }
        } else if types.contains(&"boolean") && (value == "true" || value == "false") {
            return json!(value == "true");
        } else if types.contains(&"array") || schema.get("oneOf").is_some() {
            return Value::String(value.to_owned()); // lists: passed through as text
        }
        Value::String(value.to_owned())
    }

    pub(super) fn resolve<'a>(&'a self, mut schema: &'a Value) -> &'a Value {
        for _ in 0..32 {
            let Some(reference) = schema.get("$ref").and_then(Value::as_str) else {
                break;
            };
            let name = reference.rsplit('/').next().unwrap_or("");
            schema = &self.root["components"]["schemas"][name];
        }
        schema
    }

    /// A small JSON-schema check: `$ref`, `allOf`, `oneOf`/`anyOf` (one alternative must pass),
    /// `const`, `enum`, `type`, string lengths, the snowflake pattern, number ranges, array sizes
    /// and uniqueness, `required`, `properties`, `additionalProperties`, property counts.
    fn check(
        &self,
        schema: &Value,
        value: &Value,
        path: &str,
        out: &mut Vec<String>,
        depth: usize,
    ) {
        if depth > CHECK_DEPTH {
            return;
        }
        let schema = self.resolve(schema);
        for sub in schema
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.check(sub, value, path, out, depth + 1);
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(alts) = schema.get(key).and_then(Value::as_array) {
                self.check_alternatives(alts, value, path, out, depth);
            }
        }
        if let Some(c) = schema.get("const")
            && c != value
        {
            out.push(format!("{path}: must be {c}"));
        }
        if let Some(values) = schema.get("enum").and_then(Value::as_array)
            && !values.is_empty()
            && !values.contains(value)
        {
            out.push(format!(
                "{path}: {value} is not one of {}",
                Value::Array(values.clone())
            ));
        }
        let types = types_of(schema);
        if !types.is_empty() && !types.iter().any(|t| is_type(value, t)) {
            out.push(format!(
                "{path}: expected {}, got {}",
                types.join(" or "),
                kind(value)
            ));
            return;
        }
        match value {
            Value::String(s) => self.check_string(schema, s, path, out),
            Value::Number(n) => {
                let n = n.as_f64().unwrap_or(0.0);
                if schema
                    .get("minimum")
                    .and_then(Value::as_f64)
                    .is_some_and(|min| n < min)
                {
                    out.push(format!(
                        "{path}: {n} is below the minimum {}",
                        schema["minimum"]
                    ));
                }
                if schema
                    .get("maximum")
                    .and_then(Value::as_f64)
                    .is_some_and(|max| n > max)
                {
                    out.push(format!(
                        "{path}: {n} is above the maximum {}",
                        schema["maximum"]
                    ));
                }
            }
            Value::Array(items) => {
                let (min, max) = (uint(schema, "minItems"), uint(schema, "maxItems"));
                if min.is_some_and(|m| items.len() < m) || max.is_some_and(|m| items.len() > m) {
                    out.push(format!(
                        "{path}: {} items, takes {}..={}",
                        items.len(),
                        min.unwrap_or(0),
                        max.map_or("".into(), |m| m.to_string())
                    ));
                }
                if schema.get("uniqueItems") == Some(&Value::Bool(true))
                    && items
                        .iter()
                        .enumerate()
                        .any(|(i, a)| items[..i].contains(a))
                {
                    out.push(format!("{path}: items are not unique"));
                }
                if let Some(item) = schema.get("items") {
                    for (i, value) in items.iter().enumerate() {
                        self.check(item, value, &format!("{path}.{i}"), out, depth + 1);
                    }
                }
            }
            Value::Object(map) => self.check_object(schema, map, path, out, depth),
            _ => {}
        }
    }

    fn check_alternatives(
        &self,
        alts: &[Value],
        value: &Value,
        path: &str,
        out: &mut Vec<String>,
        depth: usize,
    ) {
        let mut best: Option<Vec<String>> = None;
        for alt in alts {
            let mut errors = Vec::new();
            self.check(alt, value, path, &mut errors, depth + 1);
            if errors.is_empty() {
                return;
            }
            // Report the alternative the value meant: the one whose `type` tag it carries, else
            // the one with the fewest problems.
            let tagged = value.get("type").is_some_and(|t| {
                self.resolve(alt)
                    .pointer("/properties/type/const")
                    .is_some_and(|c| c == t)
            });
            if tagged || best.as_ref().is_none_or(|b| errors.len() < b.len()) {
                best = Some(errors);
                if tagged {
                    break;
                }
            }
        }
        out.extend(best.unwrap_or_default());
    }

    fn check_string(&self, schema: &Value, s: &str, path: &str, out: &mut Vec<String>) {
        let n = s.chars().count();
        if uint(schema, "minLength").is_some_and(|m| n < m) {
            out.push(format!(
                "{path}: {n} characters, fewer than {}",
                schema["minLength"]
            ));
        }
        if uint(schema, "maxLength").is_some_and(|m| n > m) {
            out.push(format!(
                "{path}: {n} characters, more than {}",
                schema["maxLength"]
            ));
        }
        let snowflake = schema.get("format").and_then(Value::as_str) == Some("snowflake")
            || schema.get("pattern").and_then(Value::as_str) == Some("^(0|[1-9][0-9]*)$");
        if snowflake
            && (s.is_empty()
                || !s.bytes().all(|b| b.is_ascii_digit())
                || (s.len() > 1 && s.starts_with('0')))
        {
            out.push(format!("{path}: {s:?} is not a snowflake"));
        }
    }

    fn check_object(
        &self,
        schema: &Value,
        map: &Map<String, Value>,
        path: &str,
        out: &mut Vec<String>,
        depth: usize,
    ) {
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(name) = name.as_str()
                && !map.contains_key(name)
            {
                out.push(format!("{path}.{name}: required"));
            }
        }
        let props = schema.get("properties").and_then(Value::as_object);
        for (key, value) in map {
            let path = format!("{path}.{key}");
            match (
                props.and_then(|p| p.get(key)),
                schema.get("additionalProperties"),
            ) {
                (Some(prop), _) => self.check(prop, value, &path, out, depth + 1),
                (None, Some(Value::Bool(false))) => out.push(format!("{path}: unknown field")),
                (None, Some(extra @ Value::Object(_))) => {
                    self.check(extra, value, &path, out, depth + 1)
                }
                (None, _) => {}
            }
        }
        if uint(schema, "maxProperties").is_some_and(|m| map.len() > m) {
            out.push(format!(
                "{path}: more than {} properties",
                schema["maxProperties"]
            ));
        }
        if uint(schema, "minProperties").is_some_and(|m| map.len() < m) {
            out.push(format!(
                "{path}: fewer than {} properties",
                schema["minProperties"]
            ));
        }
    }
}

impl SpecOp {
    fn read(op: &Value) -> SpecOp {
        let content = &op["requestBody"]["content"];
        let schema = |ct: &str| content.get(ct).map(|c| c["schema"].clone());
        let mut success: Vec<(u16, Option<Value>)> = op["responses"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(code, resp)| {
                let code: u16 = code.parse().ok().filter(|c| (200..300).contains(c))?;
                Some((
                    code,
                    resp.pointer("/content/application~1json/schema").cloned(),
                ))
            })
            .collect();
        success.sort_by_key(|(code, _)| *code);
        SpecOp {
            id: op["operationId"].as_str().unwrap_or("").to_owned(),
            security: op["security"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| {
                    s.as_object()
                        .into_iter()
                        .flatten()
                        .map(|(k, _)| k.clone())
                        .collect()
                })
                .collect(),
            json_body: schema("application/json"),
            multipart_body: schema("multipart/form-data"),
            body_required: op["requestBody"]["required"] == Value::Bool(true),
            query: op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query")
                .map(|p| {
                    (
                        p["name"].as_str().unwrap_or("").to_owned(),
                        p["schema"].clone(),
                    )
                })
                .collect(),
            success,
        }
    }

    /// Whether no authorization is needed.
    pub(super) fn public(&self) -> bool {
        self.security.iter().any(Vec::is_empty)
    }

    /// Whether the scheme is accepted.
    pub(super) fn accepts(&self, scheme: &str) -> bool {
        self.security.iter().any(|s| s.iter().any(|n| n == scheme))
    }
}

pub(super) fn types_of(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn is_type(value: &Value, t: &str) -> bool {
    match t {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => true,
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

pub(super) fn uint(schema: &Value, key: &str) -> Option<usize> {
    schema.get(key).and_then(Value::as_u64).map(|n| n as usize)
}

impl LocalDiscord {
    /// Reads Discord's OpenAPI spec (e.g. `../shared/discord/openapi.json`) and from then on checks
    /// every REST request against the schema of its operation: a malformed query or body is
    /// answered 400 (code 50035, as Discord does) and kept in [`spec_violations`](Self::spec_violations).
    /// Routes of the spec that are not scripted answer their success status with a plausible body
    /// built from the response schema, so every route can be called.
    ///
    /// # Errors
    /// When the file cannot be read or is not JSON.
    pub fn validate_with_spec(&self, path: impl AsRef<Path>) -> io::Result<()> {
        let spec = Spec::load(path.as_ref())?;
        self.shared.lock().rest.spec = Some(Arc::new(spec));
        Ok(())
    }

    /// Every request found malformed against the spec, as `METHOD path: field: problem`.
    pub fn spec_violations(&self) -> Vec<String> {
        self.shared.lock().rest.violations.clone()
    }
}
