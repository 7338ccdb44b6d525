#!/usr/bin/env python3
"""Generates the REST route table and methods from Discord's OpenAPI spec.

Usage (from the project root):

    python3 tools/gen_routes.py ../shared/discord/openapi.json && cargo fmt

Writes:
  nostrum-core/src/http/routes/mod.rs     the table ROUTES (every operation) and the module list
  nostrum-core/src/http/routes/<res>.rs   per resource: a `Route` static per operation and the
                                          `Http` method of each one not written by hand
  nostrum-core/tests/rest_every_call.rs   a test that calls every method against the local Discord

Operations in HAND have hand-polished builders under src/http/request/ and get only their static here.
"""

import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "nostrum-core", "src", "http", "routes")
TEST_OUT = os.path.join(ROOT, "nostrum-core", "tests", "rest_every_call.rs")
CHUNK = 15  # operations per generated file, to keep files short

# Operations with hand-written builders (src/http/request/*.rs), and how the generated test calls them.
HAND = {
    "create_message": 'http.create_message(c).content("every route")',
    "update_message": 'http.update_message(c, Id::new(2)).content(Some("edited"))',
    "list_messages": "http.list_messages(c).limit(10)",
    "bulk_delete_messages": "http.bulk_delete_messages(c, &[Id::new(2), Id::new(3)]).reason(\"tidy\")",
    "update_channel": 'http.update_channel(c).name("renamed").reason("tidy")',
    "update_guild_member": 'http.update_guild_member(g, u).nick(Some("nick"))',
    "create_guild_role": 'http.create_guild_role(g).name("role").color(0x00ff00)',
    "update_guild_role": 'http.update_guild_role(g, Id::new(2)).name("role")',
    "ban_user_from_guild": 'http.ban_user_from_guild(g, u).delete_message_seconds(60).reason("spam")',
    "list_guild_members": "http.list_guild_members(g).limit(100)",
    "update_my_user": 'http.update_my_user().username("nostrum")',
    "update_my_guild_member": 'http.update_my_guild_member(g).nick(Some("nick"))',
    "create_webhook": 'http.create_webhook(c, "hook")',
    "execute_webhook": 'http.execute_webhook(Id::new(2), "token").content("hi").wait(true)',
    "update_original_webhook_message": 'http.update_original_webhook_message(Id::new(2), "token").content(Some("hi"))',
    "update_webhook_message": 'http.update_webhook_message(Id::new(2), "token", Id::new(3)).content(Some("hi"))',
    "create_interaction_response": "http.create_interaction_response(Id::new(2), \"token\", &rest_support::pong())",
}

# Discord's documented limits where they are stricter than the spec's (or absent from it).
OVERRIDES = {
    "create_message": {"content": ("Chars", 0, 2000)},
    "update_message": {"content": ("Chars", 0, 2000)},
    "execute_webhook": {
        "content": ("Chars", 0, 2000),
        "username": ("Chars", 1, 80),
        "embeds": ("Items", 0, 10),
    },
    "update_webhook_message": {"content": ("Chars", 0, 2000)},
    "update_original_webhook_message": {"content": ("Chars", 0, 2000)},
}

# Spec schema -> twilight-model type (paths below `tm::`).
TYPES = {
    "MessageResponse": "tm::channel::Message",
    "ApplicationCommandResponse": "tm::application::command::Command",
    "EmojiResponse": "tm::guild::Emoji",
    "GatewayBotResponse": "tm::gateway::connection_info::BotConnectionInfo",
    "GatewayResponse": "tm::gateway::connection_info::ConnectionInfo",
    "GuildAuditLogResponse": "tm::guild::audit_log::AuditLog",
    "GuildBanResponse": "tm::guild::Ban",
    "GuildChannelResponse": "tm::channel::Channel",
    "PrivateChannelResponse": "tm::channel::Channel",
    "PrivateGroupChannelResponse": "tm::channel::Channel",
    "ThreadResponse": "tm::channel::Channel",
    "CreatedThreadResponse": "tm::channel::Channel",
    "GuildMemberResponse": "tm::guild::Member",
    "GuildPreviewResponse": "tm::guild::GuildPreview",
    "GuildPruneResponse": "tm::guild::GuildPrune",
    "GuildResponse": "tm::guild::Guild",
    "GuildWithCountsResponse": "tm::guild::Guild",
    "GuildRoleResponse": "tm::guild::Role",
    "GuildStickerResponse": "tm::channel::message::sticker::Sticker",
    "StandardStickerResponse": "tm::channel::message::sticker::Sticker",
    "GuildTemplateResponse": "tm::guild::template::Template",
    "GuildWelcomeScreenResponse": "tm::guild::invite::WelcomeScreen",
    "StageInstanceResponse": "tm::channel::StageInstance",
    "ThreadMemberResponse": "tm::channel::thread::ThreadMember",
    "ThreadsResponse": "tm::channel::thread::ThreadsListing",
    "UserResponse": "tm::user::User",
    "UserPIIResponse": "tm::user::CurrentUser",
    "MyGuildResponse": "tm::user::CurrentUserGuild",
    # twilight's Connection wants integrations with fields the spec does not promise.
    "ConnectedAccountResponse": "Value",
    "VoiceRegionResponse": "tm::voice::VoiceRegion",
    "VoiceStateResponse": "tm::voice::VoiceState",
    "PrivateApplicationResponse": "tm::oauth::Application",
    "EntitlementResponse": "tm::application::monetization::Entitlement",
    "SubscriptionResponse": "tm::application::monetization::Subscription",
    "CommandPermissionsResponse": "tm::application::command::permissions::GuildCommandPermissions",
    "WidgetSettingsResponse": "tm::guild::widget::GuildWidgetSettings",
    "WidgetResponse": "tm::guild::widget::GuildWidget",
    "ChannelFollowerResponse": "tm::channel::FollowedChannel",
    "OAuth2GetAuthorizationResponse": "tm::oauth::CurrentAuthorizationInformation",
    "GuildOnboardingResponse": "tm::guild::onboarding::Onboarding",
    "ScheduledEventUserResponse": "tm::guild::scheduled_event::GuildScheduledEventUser",
    "InteractionCallbackResponse": "tm::application::interaction::callback::InteractionCallbackResponse",
    "ApplicationIncomingWebhookResponse": "tm::channel::webhook::Webhook",
    "ChannelFollowerWebhookResponse": "tm::channel::webhook::Webhook",
    "GuildIncomingWebhookResponse": "tm::channel::webhook::Webhook",
    "DefaultKeywordRuleResponse": "tm::guild::auto_moderation::AutoModerationRule",
    "KeywordRuleResponse": "tm::guild::auto_moderation::AutoModerationRule",
    "MLSpamRuleResponse": "tm::guild::auto_moderation::AutoModerationRule",
    "MentionSpamRuleResponse": "tm::guild::auto_moderation::AutoModerationRule",
    "UserProfileRuleResponse": "tm::guild::auto_moderation::AutoModerationRule",
    "DiscordIntegrationResponse": "tm::guild::GuildIntegration",
    "ExternalConnectionIntegrationResponse": "tm::guild::GuildIntegration",
    "GuildSubscriptionIntegrationResponse": "tm::guild::GuildIntegration",
    "ExternalScheduledEventResponse": "tm::guild::scheduled_event::GuildScheduledEvent",
    "StageScheduledEventResponse": "tm::guild::scheduled_event::GuildScheduledEvent",
    "VoiceScheduledEventResponse": "tm::guild::scheduled_event::GuildScheduledEvent",
    "FriendInviteResponse": "tm::guild::invite::Invite",
    "GroupDMInviteResponse": "tm::guild::invite::Invite",
    "GuildInviteResponse": "tm::guild::invite::Invite",
}

# Path parameter -> Rust type and the test's argument.
ID_MARKERS = {
    "application_id": "ApplicationMarker",
    "channel_id": "ChannelMarker",
    "command_id": "CommandMarker",
    "emoji_id": "EmojiMarker",
    "entitlement_id": "EntitlementMarker",
    "exception_id": "GenericMarker",
    "guild_id": "GuildMarker",
    "guild_scheduled_event_exception_id": "GenericMarker",
    "guild_scheduled_event_id": "ScheduledEventMarker",
    "integration_id": "IntegrationMarker",
    "interaction_id": "InteractionMarker",
    "lobby_id": "GenericMarker",
    "message_id": "MessageMarker",
    "overwrite_id": "GenericMarker",
    "pack_id": "StickerPackMarker",
    "request_id": "GenericMarker",
    "role_id": "RoleMarker",
    "rule_id": "AutoModerationRuleMarker",
    "sku_id": "SkuMarker",
    "sound_id": "GenericMarker",
    "sticker_id": "StickerMarker",
    "subscription_id": "SubscriptionMarker",
    "user_id": "UserMarker",
    "user_id_1": "UserMarker",
    "user_id_2": "UserMarker",
    "webhook_id": "WebhookMarker",
}
STRINGS = {
    "code": '"abc"',
    "emoji_name": '"🔥"',
    "instance_id": '"i-1"',
    "interaction_token": '"token"',
    "webhook_token": '"token"',
}
TEST_IDS = {"guild_id": "g", "channel_id": "c", "user_id": "u"}
METHODS = ("get", "post", "put", "patch", "delete")
GROUPS = {
    "applications": "applications",
    "channels": "channels",
    "guilds": "guilds",
    "lobbies": "lobbies",
    "users": "users",
    "webhooks": "webhooks",
    "interactions": "webhooks",
}


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


class Gen:
    def __init__(self, spec):
        self.spec = spec
        self.schemas = spec["components"]["schemas"]

    def resolve(self, schema):
        while isinstance(schema, dict) and "$ref" in schema:
            schema = self.schemas[schema["$ref"].split("/")[-1]]
        return schema

    def ref_name(self, schema):
        return schema["$ref"].split("/")[-1] if "$ref" in schema else None

    def rust_type(self, schema):
        """The twilight-model type for a response schema, else serde_json::Value."""
        name = self.ref_name(schema)
        if name:
            return TYPES.get(name, "Value")
        if "oneOf" in schema:
            alts = [a for a in schema["oneOf"] if a.get("type") != "null"]
            types = {self.rust_type(a) for a in alts}
            return types.pop() if len(types) == 1 else "Value"
        kind = schema.get("type")
        kinds = kind if isinstance(kind, list) else [kind]
        if "array" in kinds:
            item = self.rust_type(schema.get("items", {}))
            return "Value" if item == "Value" else f"Vec<{item}>"
        return "Value"

    def output(self, op):
        ok = sorted(k for k in op["responses"] if k.startswith("2"))
        schemas = []
        for code in ok:
            content = op["responses"][code].get("content", {}).get("application/json")
            schemas.append(content["schema"] if content else None)
        bodies = [s for s in schemas if s is not None]
        if not bodies:
            return "()", ok
        if len({json.dumps(s, sort_keys=True) for s in bodies}) > 1:
            return "Value", ok
        ty = self.rust_type(bodies[0])
        return (f"Option<{ty}>" if None in schemas else ty), ok

    def query(self, op):
        out = []
        for p in op.get("parameters", []):
            if p.get("in") != "query":
                continue
            s = p["schema"]
            if self.ref_name(s) == "SnowflakeType":
                kind = "QueryKind::Snowflake"
            else:
                s = self.resolve(s)
                t = s.get("type")
                if t == "integer":
                    lo = s.get("minimum", -(2**63))
                    hi = s.get("maximum", 2**63 - 1)
                    kind = f"QueryKind::Int {{ min: {int_lit(lo)}, max: {int_lit(hi)} }}"
                elif t == "boolean":
                    kind = "QueryKind::Bool"
                elif t == "string" and "maxLength" in s and "enum" not in s:
                    kind = f"QueryKind::Text {{ max: {s['maxLength']} }}"
                else:
                    kind = "QueryKind::Other"
            out.append((p["name"], kind))
        return out

    def body(self, op):
        content = op.get("requestBody", {}).get("content", {})
        json_schema = content.get("application/json", {}).get("schema")
        mp = content.get("multipart/form-data", {}).get("schema")
        if json_schema is not None and mp is not None:
            return "JsonOrMultipart", json_schema, ["files[n]"]
        if json_schema is not None:
            return "Json", json_schema, []
        if mp is not None:
            props = self.resolve(mp).get("properties", {})
            files = [k for k, v in props.items() if v.get("contentEncoding") == "binary"]
            return "Multipart", mp, files
        return "None", None, []

    def rules(self, op_id, schema, files):
        """Required top-level fields and documented limits, from the body schema."""
        required, rules = [], {}
        if schema is not None:
            top = self.resolve(schema)
            kind = top.get("type")
            kinds = kind if isinstance(kind, list) else [kind]
            if "array" in kinds:
                rule = limit(top, "array")
                if rule:
                    rules[""] = rule
            elif "properties" in top:
                required = [r for r in top.get("required", []) if r not in files]
                for name, prop in top["properties"].items():
                    if name in files:
                        continue
                    rule = self.prop_rule(prop)
                    if rule:
                        rules[name] = rule
        rules.update(OVERRIDES.get(op_id, {}))
        return required, rules

    def prop_rule(self, prop):
        prop = self.resolve(prop)
        if "oneOf" in prop:
            alts = [a for a in prop["oneOf"] if a.get("type") != "null"]
            if len(alts) != 1:
                return None
            prop = self.resolve(alts[0])
        kind = prop.get("type")
        kinds = kind if isinstance(kind, list) else [kind]
        for k in ("string", "array", "integer"):
            if k in kinds:
                return limit(prop, k)
        return None

    def ops(self):
        for path, item in self.spec["paths"].items():
            for method in METHODS:
                if method in item:
                    yield path, method, item[method]


def int_lit(v):
    if v <= -(2**63):
        return "i64::MIN"
    if v >= 2**63 - 1:
        return "i64::MAX"
    return str(int(v))


def limit(schema, kind):
    if kind == "string":
        lo, hi = schema.get("minLength"), schema.get("maxLength")
        if (lo or hi) and (hi is None or hi < 100000):
            return ("Chars", lo or 0, hi if hi is not None else 2**32 - 1)
    elif kind == "array":
        lo, hi = schema.get("minItems"), schema.get("maxItems")
        if lo or hi:
            return ("Items", lo or 0, hi if hi is not None else 2**32 - 1)
    elif kind == "integer":
        lo, hi = schema.get("minimum"), schema.get("maximum")
        if lo is None and hi is None:
            return None
        lo = -(2**63) if lo is None else lo
        hi = 2**63 - 1 if hi is None else hi
        if lo <= -(2**31) and hi >= 2**31 - 1:
            return None
        return ("Range", lo, hi)
    return None


def rule_lit(field, rule):
    kind, lo, hi = rule
    if kind == "Range":
        return f'FieldRule {{ field: "{field}", check: Check::Range {{ min: {int_lit(lo)}, max: {int_lit(hi)} }} }}'
    hi_lit = "u32::MAX" if hi >= 2**32 - 1 else str(hi)
    return f'FieldRule {{ field: "{field}", check: Check::{kind} {{ min: {lo}, max: {hi_lit} }} }}'


def auth(path, op):
    names = [sorted(d.keys()) for d in op.get("security", [])]
    if "{webhook_token}" in path or "{interaction_token}" in path:
        return "Token"
    if [] in names:
        return "Optional"
    if ["BotToken"] in names:
        return "Bot"
    if ["OAuth2"] in names:
        return "OAuth"
    raise SystemExit(f"unknown security for {path}: {names}")


def params(path):
    return re.findall(r"\{([a-z0-9_]+)\}", path)


def param_type(name):
    if name in ID_MARKERS:
        return f"Id<{ID_MARKERS[name]}>"
    if name in STRINGS:
        return "&str"
    if name == "answer_id":
        return "u8"
    raise SystemExit(f"unknown path parameter {name}")


def doc_line(op):
    desc = (op.get("description") or "").strip().split("\n")[0]
    desc = desc.split(". ")[0].rstrip(".")
    return desc.replace("`", "'")


def group_of(path):
    first = path.strip("/").split("/")[0]
    return GROUPS.get(first, "misc")


HEADER = "// @generated by tools/gen_routes.py from Discord's OpenAPI spec: do not edit.\n// Regenerate: python3 tools/gen_routes.py ../shared/discord/openapi.json && cargo fmt\n"


def main():
    spec_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared", "discord", "openapi.json")
    g = Gen(load(spec_path))
    entries = []
    for path, method, op in g.ops():
        op_id = op["operationId"]
        out, ok = g.output(op)
        kind, schema, files = g.body(op)
        required, rules = g.rules(op_id, schema, files)
        entries.append(
            dict(
                op=op_id,
                const=op_id.upper(),
                method=method.capitalize(),
                path=path,
                key=f"{method.upper()} {path}",
                auth=auth(path, op),
                body=kind,
                files=files,
                query=g.query(op),
                required=required,
                rules=rules,
                success=ok,
                out=out,
                doc=doc_line(op),
                group=group_of(path),
            )
        )
    write_routes(entries)
    write_test(entries)
    print(f"{len(entries)} operations, {len(HAND)} hand-written", file=sys.stderr)


def route_static(e):
    q = ", ".join(f'QueryParam {{ name: "{n}", kind: {k} }}' for n, k in e["query"])
    req = ", ".join(f'"{r}"' for r in e["required"])
    rules = ", ".join(rule_lit(f, r) for f, r in e["rules"].items())
    files = ", ".join(f'"{f}"' for f in e["files"])
    success = ", ".join(e["success"])
    return f"""/// `{e['key']}` (`{e['op']}`).
pub static {e['const']}: Route = Route {{
    operation: "{e['op']}",
    method: Method::{e['method']},
    path: "{e['path']}",
    key: "{e['key']}",
    auth: Auth::{e['auth']},
    body: BodyKind::{e['body']},
    files: &[{files}],
    query: &[{q}],
    required: &[{req}],
    fields: &[{rules}],
    success: &[{success}],
}};
"""


def method_fn(e):
    ps = params(e["path"])
    args = "".join(f", {p}: {param_type(p)}" for p in ps)
    values = ", ".join(f"{p}.to_string()" for p in ps)
    doc = f"    /// `{e['key']}`"
    if e["doc"]:
        doc += f": {e['doc']}"
    doc += "."
    extra = []
    if e["query"]:
        extra.append("Query: " + ", ".join(f"`{n}`" for n, _ in e["query"]) + ".")
    if e["body"] != "None":
        body = {"Json": "JSON", "JsonOrMultipart": "JSON, or files", "Multipart": "multipart fields and files"}[e["body"]]
        extra.append(f"Body: {body} (`.json(..)`" + (", `.file(..)`" if e["files"] else "") + ").")
    if e["auth"] == "OAuth":
        extra.append("Needs a user's OAuth2 token: `.bearer(..)`.")
    if e["auth"] == "Token":
        extra.append("Authorized by the token in the path: the bot token is not sent.")
    lines = [doc]
    if extra:
        lines.append("    ///")
        lines.extend(f"    /// {x}" for x in extra)
    return "\n".join(lines) + f"""
    pub fn {e['op']}(&self{args}) -> Request<'_, {e['out']}> {{
        Request::new(self, &{e['const']}, vec![{values}])
    }}
"""


def write_routes(entries):
    os.makedirs(OUT_DIR, exist_ok=True)
    for name in os.listdir(OUT_DIR):
        if name.endswith(".rs"):
            os.remove(os.path.join(OUT_DIR, name))
    groups = {}
    for e in entries:
        groups.setdefault(e["group"], []).append(e)
    modules = []
    for group, es in groups.items():
        chunks = [es[i : i + CHUNK] for i in range(0, len(es), CHUNK)]
        for n, chunk in enumerate(chunks, 1):
            name = group if len(chunks) == 1 else f"{group}_{n}"
            modules.append(name)
            for e in chunk:
                e["module"] = name
            write_module(name, chunk)
    body = [
        "//! The route table: every operation of Discord's OpenAPI spec (generated by tools/gen_routes.py).\n",
        HEADER,
        "\n",
    ]
    for m in modules:
        body.append(f"mod {m};\n")
    body.append("\n")
    for m in modules:
        body.append(f"pub use {m}::*;\n")
    body.append("\nuse super::Route;\n\n")
    body.append(f"/// Every operation of Discord's API v10, in the spec's order ({len(entries)}).\n")
    body.append(f"pub static ROUTES: [&Route; {len(entries)}] = [\n")
    for e in entries:
        body.append(f"    &{e['const']},\n")
    body.append("];\n\n")
    body.append("/// Every operation has an `Http` method (generated or hand-written): this fails to build otherwise.\n")
    body.append("#[cfg(test)]\n#[test]\nfn every_operation_has_a_method() {\n    use super::Http;\n    let methods: &[&dyn std::any::Any] = &[\n")
    for e in entries:
        body.append(f"        &Http::{e['op']},\n")
    body.append(f"    ];\n    assert_eq!(methods.len(), ROUTES.len());\n}}\n")
    with open(os.path.join(OUT_DIR, "mod.rs"), "w", encoding="utf-8") as f:
        f.write("".join(body))


def write_module(name, chunk):
    hand = [e for e in chunk if e["op"] in HAND]
    gen = [e for e in chunk if e["op"] not in HAND]
    out = [
        f"//! Routes and methods of `{name}` operations (generated by tools/gen_routes.py).\n",
        HEADER,
        "\n#![allow(clippy::too_many_arguments, unused_imports)]\n\n",
        "use serde_json::Value;\nuse twilight_model as tm;\nuse twilight_model::id::Id;\nuse twilight_model::id::marker::*;\n\n",
        "use crate::http::route::{Auth, BodyKind, Check, FieldRule, Method, QueryKind, QueryParam, Route};\n",
        "use crate::http::{Http, Request};\n\n",
    ]
    for e in chunk:
        out.append(route_static(e))
        out.append("\n")
    if hand:
        out.append("// Hand-written in src/http/request/: " + ", ".join(e["op"] for e in hand) + ".\n\n")
    if gen:
        out.append("impl Http {\n")
        out.append("\n".join(method_fn(e) for e in gen))
        out.append("}\n")
    with open(os.path.join(OUT_DIR, f"{name}.rs"), "w", encoding="utf-8") as f:
        f.write("".join(out))


def test_arg(name, n):
    if name in TEST_IDS:
        return TEST_IDS[name]
    if name in STRINGS:
        return STRINGS[name]
    if name == "answer_id":
        return "1"
    return f"Id::new({n})"


def write_test(entries):
    out = [
        f"//! Calls all {len(entries)} operations through their typed `Http` methods against the spec-checking local Discord.\n",
        HEADER,
        "\n#![allow(clippy::too_many_lines)]\n\nmod rest_support;\n\n",
        "use nostrum_core::http::Http;\nuse nostrum_core::local::LocalDiscord;\nuse nostrum_core::model::id::Id;\n\n",
        "use rest_support::{Examples, Outcomes};\n\n",
        "#[tokio::test]\nasync fn every_operation_is_called_with_a_valid_body() {\n",
        "    let Some((discord, examples)) = rest_support::local_with_spec().await else {\n        return;\n    };\n",
        "    let http = rest_support::client(&discord);\n",
        "    let mut outcomes = Outcomes::default();\n",
        "    calls(&http, &examples, &discord, &mut outcomes).await;\n",
        f"    outcomes.assert_all({len(entries)}, &discord);\n}}\n\n",
        "/// One call per operation (one line each: generated, so not formatted).\n#[rustfmt::skip]\n",
        "async fn calls(http: &Http, ex: &Examples, discord: &LocalDiscord, out: &mut Outcomes) {\n",
        "    let (g, c, u) = rest_support::ids(discord);\n",
        "    let bytes = || b\"\\x89PNG-not-really\".to_vec();\n",
    ]
    for e in entries:
        op = e["op"]
        if op in HAND:
            expr = HAND[op]
        else:
            args = ", ".join(test_arg(p, i + 2) for i, p in enumerate(params(e["path"])))
            expr = f"http.{op}({args})"
            if e["body"] != "None":
                expr += f'.json(&ex.body("{op}"))'
            for f in e["files"]:
                if f != "files[n]":
                    expr += f'.file("{f}", "upload.png", bytes())'
            if e["auth"] == "OAuth":
                expr += '.bearer("user-oauth-token")'
        out.append(f'    out.record("{op}", {expr}.await.map(drop));\n')
    out.append("}\n")
    with open(TEST_OUT, "w", encoding="utf-8") as f:
        f.write("".join(out))


if __name__ == "__main__":
    main()
