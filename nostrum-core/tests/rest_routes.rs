//! The route table against Discord's OpenAPI spec (from ../shared at test time): 242 of 242.

mod rest_support;

use std::collections::BTreeSet;

use nostrum_core::http::{Auth, BodyKind, Method, ROUTES};

#[test]
fn every_operation_of_the_spec_is_in_the_route_table() {
    let Some(spec) = rest_support::spec() else {
        return;
    };
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    let mut operations = 0;
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let Some(method) = parse_method(method) else {
                continue;
            };
            operations += 1;
            let id = op["operationId"].as_str().expect("operationId");
            seen.insert(id.to_owned());
            let Some(route) = ROUTES.iter().find(|r| r.operation == id) else {
                problems.push(format!("{id}: missing from the route table"));
                continue;
            };
            let mut check = |what: &str, ok: bool| {
                if !ok {
                    problems.push(format!("{id}: {what} differs"));
                }
            };
            check("method", route.method == method);
            check("path", route.path == path);
            check("key", route.key == format!("{} {path}", method.as_str()));
            let query: BTreeSet<&str> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query")
                .filter_map(|p| p["name"].as_str())
                .collect();
            check(
                "query",
                route.query.iter().map(|q| q.name).collect::<BTreeSet<_>>() == query,
            );
            let content = &op["requestBody"]["content"];
            let (json, multipart) = (
                content.get("application/json").is_some(),
                content.get("multipart/form-data").is_some(),
            );
            let body = match (json, multipart) {
                (true, true) => BodyKind::JsonOrMultipart,
                (true, false) => BodyKind::Json,
                (false, true) => BodyKind::Multipart,
                (false, false) => BodyKind::None,
            };
            check("body", route.body == body);
            let security: Vec<Vec<&str>> = op["security"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| {
                    s.as_object()
                        .into_iter()
                        .flatten()
                        .map(|(k, _)| k.as_str())
                        .collect()
                })
                .collect();
            let token_in_path =
                path.contains("{webhook_token}") || path.contains("{interaction_token}");
            let auth = if token_in_path {
                Auth::Token
            } else if security.iter().any(Vec::is_empty) {
                Auth::Optional
            } else if security.iter().any(|s| s == &["BotToken"]) {
                Auth::Bot
            } else {
                Auth::OAuth
            };
            check("auth", route.auth == auth);
            let success: BTreeSet<u16> = op["responses"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(code, _)| code.parse().ok())
                .filter(|code| (200..300).contains(code))
                .collect();
            check(
                "success statuses",
                route.success.iter().copied().collect::<BTreeSet<_>>() == success,
            );
        }
    }
    for route in ROUTES {
        if !seen.contains(route.operation) {
            problems.push(format!(
                "{}: in the table but not in the spec",
                route.operation
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(ROUTES.len(), operations);
    eprintln!(
        "{} of {operations} operations in the route table",
        seen.len()
    );
}

#[test]
fn route_keys_and_operations_are_unique() {
    let keys: BTreeSet<&str> = ROUTES.iter().map(|r| r.key).collect();
    let ops: BTreeSet<&str> = ROUTES.iter().map(|r| r.operation).collect();
    assert_eq!(keys.len(), ROUTES.len());
    assert_eq!(ops.len(), ROUTES.len());
}

fn parse_method(method: &str) -> Option<Method> {
    Some(match method {
        "get" => Method::Get,
        "post" => Method::Post,
        "put" => Method::Put,
        "patch" => Method::Patch,
        "delete" => Method::Delete,
        _ => return None,
    })
}
