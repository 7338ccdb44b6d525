//! Request bodies of the local REST server: JSON and multipart, query decoding, 50035 answers.

use serde_json::{Map, Value, json};

use hyper::StatusCode;

use super::rest::{Resp, json_response};

/// A parsed request body.
#[derive(Default)]
pub(super) struct Parsed {
    pub(super) recorded: Option<Value>,
    pub(super) checked: Option<Value>,
    pub(super) files: Vec<(String, String, Vec<u8>)>,
    pub(super) multipart: bool,
}

/// The JSON body; for a multipart body, its `payload_json` and text fields (recorded) with the
/// files as `"<binary>"` placeholders (checked), and the files themselves.
pub(super) fn parse_body(content_type: Option<&str>, bytes: &[u8]) -> Parsed {
    if bytes.is_empty() {
        return Parsed::default();
    }
    let boundary = content_type
        .filter(|ct| ct.starts_with("multipart/form-data"))
        .and_then(|ct| {
            ct.split(';')
                .find_map(|p| p.trim().strip_prefix("boundary="))
        })
        .map(|b| b.trim_matches('"'));
    let Some(boundary) = boundary else {
        let value: Option<Value> = serde_json::from_slice(bytes).ok();
        return Parsed {
            recorded: value.clone(),
            checked: value,
            ..Parsed::default()
        };
    };
    let mut parsed = Parsed {
        multipart: true,
        ..Parsed::default()
    };
    let mut fields = Map::new();
    let mut payload: Option<Value> = None;
    let delimiter = format!("--{boundary}");
    for part in split_bytes(bytes, delimiter.as_bytes()).into_iter().skip(1) {
        let Some(head_end) = find(part, b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&part[..head_end]);
        let content = &part[head_end + 4..];
        let content = content.strip_suffix(b"\r\n").unwrap_or(content);
        let param = |key: &str| {
            let start = head.find(&format!("{key}=\""))? + key.len() + 2;
            let len = head[start..].find('"')?;
            Some(head[start..start + len].to_owned())
        };
        let Some(name) = param("name") else { continue };
        match param("filename") {
            Some(filename) => parsed.files.push((name, filename, content.to_vec())),
            None if name == "payload_json" => payload = serde_json::from_slice(content).ok(),
            None => {
                fields.insert(
                    name,
                    Value::String(String::from_utf8_lossy(content).into_owned()),
                );
            }
        }
    }
    let mut recorded = payload.unwrap_or(Value::Null);
    if let Value::Object(map) = &mut recorded {
        map.extend(fields);
    } else if !fields.is_empty() {
        recorded = Value::Object(fields);
    }
    let mut checked = recorded.clone();
    if !parsed.files.is_empty() {
        if !checked.is_object() {
            checked = Value::Object(Map::new());
        }
        if let Value::Object(map) = &mut checked {
            for (name, _, _) in &parsed.files {
                map.insert(name.clone(), Value::String("<binary>".into()));
            }
        }
    }
    parsed.recorded = (!recorded.is_null()).then_some(recorded);
    parsed.checked = (!checked.is_null()).then_some(checked);
    parsed
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn split_bytes<'a>(mut bytes: &'a [u8], delimiter: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    while let Some(at) = find(bytes, delimiter) {
        out.push(&bytes[..at]);
        bytes = &bytes[at + delimiter.len()..];
    }
    out.push(bytes);
    out
}

/// Decodes `%XX` and `+` in a query value (never panics on bad input).
pub(super) fn percent_decode(value: &str) -> String {
    let hex = |b: u8| char::from(b).to_digit(16).map(|d| d as u8);
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(high * 16 + low);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn insert_error(node: &mut Map<String, Value>, keys: &[&str], message: &str) {
    match keys.split_first() {
        Some((key, rest)) => {
            let next = node
                .entry((*key).to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !next.is_object() {
                *next = Value::Object(Map::new());
            }
            if let Value::Object(map) = next {
                insert_error(map, rest, message);
            }
        }
        None => {
            let list = node.entry("_errors").or_insert_with(|| json!([]));
            if let Value::Array(list) = list {
                list.push(json!({"code": "SPEC_VIOLATION", "message": message}));
            }
        }
    }
}

/// Discord's 50035 with the problems as field errors (`body.content: ...` under `content`).
pub(super) fn invalid_form_body(problems: &[String]) -> Resp {
    let mut errors = Map::new();
    for problem in problems {
        let (path, message) = problem.split_once(": ").unwrap_or(("body", problem));
        let keys: Vec<&str> = path.split('.').skip(1).collect();
        insert_error(&mut errors, &keys, message);
    }
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({"message": "Invalid Form Body", "code": 50035, "errors": errors}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c%F0%9F%94%A5"), "a b c🔥");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
