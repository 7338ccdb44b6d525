//! Plausible answers for routes the local REST server does not script, from the spec's schemas.

use serde_json::{Map, Value, json};

use super::rest_spec::{Spec, SpecOp, types_of, uint};

/// How deep answers are built; deeper objects and arrays are null.
const MAX_DEPTH: usize = 10;

/// Fields twilight-model reads as image hashes (32 hex digits).
const IMAGE_HASHES: [&str; 11] = [
    "badge",
    "avatar",
    "icon",
    "banner",
    "splash",
    "discovery_splash",
    "cover_image",
    "asset",
    "image",
    "avatar_decoration",
    "icon_hash",
];
/// Whether twilight-model reads the field as a number in a string (permission bits, discriminators).
fn numeric_string(name: &str) -> bool {
    name.ends_with("permissions") || matches!(name, "allow" | "deny" | "discriminator")
}

impl Spec {
    /// The success status of an operation and a plausible body for it (`None` for 204).
    pub(super) fn example_answer(&self, op: &SpecOp) -> (u16, Option<Value>) {
        let Some((status, schema)) = op.success.first() else {
            return (204, None);
        };
        let body = schema
            .as_ref()
            .map(|s| self.example(s, "", 0, &mut Vec::new()));
        (*status, body)
    }

    /// A plausible instance of the field `name`: every property, one item per array, null where
    /// a schema would recur (`stack` holds the schemas being built) or below [`MAX_DEPTH`].
    fn example(&self, schema: &Value, name: &str, depth: usize, stack: &mut Vec<String>) -> Value {
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            if stack.iter().any(|s| s == reference) {
                return Value::Null;
            }
            stack.push(reference.to_owned());
            let value = self.example(self.resolve(schema), name, depth, stack);
            stack.pop();
            return value;
        }
        if let Some(c) = schema.get("const") {
            return c.clone();
        }
        if let Some(values) = schema.get("enum").and_then(Value::as_array) {
            // Stage instances' privacy level 1 is deprecated: Discord sends 2.
            let pick = if name == "privacy_level" {
                values.last()
            } else {
                values.first()
            };
            if let Some(value) = pick {
                return value.clone();
            }
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(alts) = schema.get(key).and_then(Value::as_array) {
                let mut choices = alts
                    .iter()
                    .filter(|a| a.get("type") != Some(&json!("null")));
                // Stage instances' privacy level 1 is deprecated: Discord sends 2.
                let choice = if name == "privacy_level" {
                    choices.next_back()
                } else {
                    choices.next()
                };
                if let Some(alt) = choice {
                    return self.example(alt, name, depth, stack);
                }
            }
        }
        if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
            let mut merged = Map::new();
            for part in parts {
                if let Value::Object(map) = self.example(part, name, depth, stack) {
                    merged.extend(map);
                }
            }
            return Value::Object(merged);
        }
        let types = types_of(schema);
        let kind = types.iter().find(|t| **t != "null").copied();
        let Some(kind) = kind.or_else(|| schema.get("properties").map(|_| "object")) else {
            return Value::Null;
        };
        if depth > MAX_DEPTH && matches!(kind, "object" | "array") {
            return Value::Null;
        }
        match kind {
            "object" => {
                let mut map = Map::new();
                for (field, prop) in schema
                    .get("properties")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    map.insert(field.clone(), self.example(prop, field, depth + 1, stack));
                }
                Value::Object(map)
            }
            "array" => {
                let n = uint(schema, "minItems").unwrap_or(1).max(1);
                let n = n.min(uint(schema, "maxItems").unwrap_or(n));
                let item = schema.get("items").cloned().unwrap_or(Value::Null);
                Value::Array(
                    (0..n)
                        .map(|_| self.example(&item, name, depth + 1, stack))
                        .collect(),
                )
            }
            "string" if IMAGE_HASHES.contains(&name) => json!("0123456789abcdef0123456789abcdef"),
            "string" if numeric_string(name) => json!("0"),
            "string" if name.ends_with("color") || name.ends_with("colors") => json!("#5865f2"),
            "string" if name == "status" => json!("online"),
            "string" if name == "id" || name.ends_with("_id") => json!("1135000000000000001"),
            "integer" if name == "id" || name.ends_with("_id") => json!(1),
            "string" => Value::String(example_string(schema)),
            "integer" => {
                let min = schema.get("minimum").and_then(Value::as_i64).unwrap_or(0);
                let max = schema
                    .get("maximum")
                    .and_then(Value::as_i64)
                    .unwrap_or(i64::MAX);
                json!(min.max(0).min(max))
            }
            "number" => json!(schema.get("minimum").and_then(Value::as_f64).unwrap_or(0.0)),
            "boolean" => Value::Bool(false),
            _ => Value::Null,
        }
    }
}

fn example_string(schema: &Value) -> String {
    let format = schema.get("format").and_then(Value::as_str).unwrap_or("");
    let text = match format {
        "snowflake" => "1135000000000000001",
        "date-time" => "2025-01-01T00:00:00.000000+00:00",
        "uri" => "https://example.invalid/",
        _ if schema.get("pattern").is_some() => "1135000000000000001",
        _ => "local",
    };
    let min = uint(schema, "minLength").unwrap_or(0);
    let max = uint(schema, "maxLength").unwrap_or(usize::MAX);
    let mut s: String = text.chars().take(max).collect();
    while s.chars().count() < min {
        s.push('x');
    }
    s
}
