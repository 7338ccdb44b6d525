#!/usr/bin/env python3
"""Writes the small seed corpora under fuzz/corpus/<target>/ (hand-written JSON shaped like the
local Discord's payloads). Re-run after changing it; libFuzzer's own finds go elsewhere (run.sh)."""
import json, os, re, struct, subprocess, zlib

HERE = os.path.dirname(os.path.abspath(__file__))
TABLE = os.path.join(HERE, "..", "nostrum-macros", "src", "table.rs")
NAMES = re.findall(r'ev\(\s*"([A-Z_]+)"', open(TABLE).read())

G, C, U, B, M = "1100000000000000001", "1100000000000000002", "1100000000000000003", "1100000000000000004", "1100000000000000005"
user = {"id": U, "username": "alice", "discriminator": "0", "global_name": None, "avatar": None, "bot": False, "public_flags": 0, "flags": 0}
bot = dict(user, id=B, username="bot", bot=True)
member = {"nick": None, "avatar": None, "roles": [], "joined_at": "2021-01-01T00:00:00.000000+00:00", "premium_since": None, "deaf": False, "mute": False, "flags": 0, "pending": False, "communication_disabled_until": None}
channel = {"id": C, "type": 0, "name": "general", "position": 0, "permission_overwrites": [{"id": U, "type": 1, "allow": "1024", "deny": "2048"}], "parent_id": None, "topic": None, "nsfw": False, "last_message_id": None, "rate_limit_per_user": 0, "flags": 0}
everyone = {"id": G, "name": "@everyone", "color": 0, "hoist": False, "icon": None, "unicode_emoji": None, "position": 0, "permissions": "1071698660929", "managed": False, "mentionable": False, "flags": 0}
guild = {"id": G, "name": "guild", "icon": None, "splash": None, "discovery_splash": None, "owner_id": B, "afk_channel_id": None, "afk_timeout": 300, "verification_level": 0, "default_message_notifications": 0, "explicit_content_filter": 0, "roles": [everyone], "emojis": [], "features": [], "mfa_level": 0, "application_id": None, "system_channel_id": C, "system_channel_flags": 0, "rules_channel_id": None, "max_members": 500000, "vanity_url_code": None, "description": None, "banner": None, "premium_tier": 0, "preferred_locale": "en-US", "public_updates_channel_id": None, "nsfw_level": 0, "stickers": [], "premium_progress_bar_enabled": False, "joined_at": "2021-01-01T00:00:00.000000+00:00", "large": False, "unavailable": False, "member_count": 2, "voice_states": [], "members": [dict(member, user=user), dict(member, user=bot)], "channels": [channel], "threads": [], "presences": [], "stage_instances": [], "guild_scheduled_events": []}
message = {"id": M, "channel_id": C, "guild_id": G, "author": user, "member": member, "content": "!ping", "timestamp": "2024-01-01T00:00:00.000000+00:00", "edited_timestamp": None, "tts": False, "mention_everyone": False, "mentions": [], "mention_roles": [], "attachments": [], "embeds": [], "reactions": [], "pinned": False, "type": 0, "flags": 0, "components": []}
ready = {"v": 10, "user": dict(bot, verified=True, mfa_enabled=False), "guilds": [{"id": G, "unavailable": True}], "session_id": "s" * 32, "resume_gateway_url": "ws://127.0.0.1:1", "shard": [0, 1], "application": {"id": B, "flags": 0}}
EVENTS = {
    "READY": ready,
    "GUILD_CREATE": guild,
    "MESSAGE_CREATE": message,
    "MESSAGE_UPDATE": {"id": M, "channel_id": C, "guild_id": G, "content": "edited", "author": user},
    "MESSAGE_DELETE": {"id": M, "channel_id": C, "guild_id": G},
    "GUILD_MEMBER_UPDATE": {"guild_id": G, "roles": [G], "user": user, "nick": "al", "joined_at": "2021-01-01T00:00:00.000000+00:00"},
    "GUILD_ROLE_CREATE": {"guild_id": G, "role": dict(everyone, id="1100000000000000006", name="mods", permissions="8", position=1)},
    "CHANNEL_UPDATE": dict(channel, guild_id=G, name="renamed"),
    "MESSAGE_REACTION_ADD": {"user_id": U, "channel_id": C, "message_id": M, "guild_id": G, "emoji": {"id": None, "name": "x"}, "type": 0},
    "TYPING_START": {"channel_id": C, "guild_id": G, "user_id": U, "timestamp": 1},
    "GUILD_DELETE": {"id": G, "unavailable": True},
}

def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    open(os.path.join(d, name), "wb").write(data)

def chunks(flags, parts):
    return bytes([flags]) + b"".join(struct.pack("<H", len(p)) + p for p in parts)

def env(seq, t, d):
    return json.dumps({"op": 0, "s": seq, "t": t, "d": d}, separators=(",", ":")).encode()

# event_parser: 255, name length, name, payload.
for t, d in EVENTS.items():
    n = t.encode()
    write("event_parser", t.lower(), bytes([255, len(n)]) + n + json.dumps(d).encode())
write("event_parser", "unknown", bytes([255, 9]) + b"NOT_EVENT" + b'{"x":[1,2,{"y":null}]}')
write("event_parser", "missing_field", bytes([255, 14]) + b"MESSAGE_CREATE" + json.dumps({k: v for k, v in message.items() if k != "author"}).encode())

# The gateway session the shard targets play: HELLO, READY, dispatches, op 1, op 11, op 7.
session = [
    json.dumps({"op": 10, "d": {"heartbeat_interval": 45000}}).encode(),
    env(1, "READY", ready), env(2, "GUILD_CREATE", guild), env(3, "MESSAGE_CREATE", message),
    json.dumps({"op": 11}).encode(), json.dumps({"op": 1, "d": None}).encode(),
    env(4, "SOMETHING_NEW", {"a": 1}), json.dumps({"op": 9, "d": True}).encode(),
]
bomb = b" " * 20000  # over the harness's 16 KiB limit once decompressed
def zlib_frames(messages):
    c = zlib.compressobj()
    return [c.compress(m) + c.flush(zlib.Z_SYNC_FLUSH) for m in messages]

def zstd_frames(messages):
    # Independent zstd frames, one per message (the decoder takes a new frame after the last one).
    return [subprocess.run(["zstd", "-q", "-c", "-3"], input=m, capture_output=True, check=True).stdout for m in messages]

# Compressed by the harness itself (flags bit 0): the session, a bomb, a message split in two.
for target in ["zlib_stream", "zstd_stream"]:
    write(target, "session_plain", chunks(1, session))
    write(target, "session_plain_split", chunks(3, session[:4]))
    write(target, "bomb_plain", chunks(1, [session[0], bomb, session[1]]))
# Raw compressed frames (flags 0) for the mutator to corrupt.
write("zlib_stream", "session_raw", chunks(0, zlib_frames(session)))
write("zlib_stream", "bomb_raw", chunks(0, zlib_frames([session[0], b"[" + b"0," * 200000 + b"0]"])))
write("zlib_stream", "garbage_suffix", chunks(0, [b"not zlib\x00\x00\xff\xff", b"\x78\x9c"]))
write("zstd_stream", "session_raw", chunks(0, zstd_frames(session)))
write("zstd_stream", "bomb_raw", chunks(0, zstd_frames([session[0], b"[" + b"0," * 200000 + b"0]"])))
# Text frames (flags bit 2) for the envelope parser.
write("gateway_text", "session", chunks(4, session))
write("gateway_text", "malformed", chunks(4, [b"{", b'{"op":0,"d":{}}', b'{"op":0,"s":1,"t":"READY","d":{}}', b'{"op":10}', b'{"op":300}', b"\xff\xfe"]))

# rest_error: status (LE u16, mapped to 200 + v % 400), header mask, header values, body.
def rest(status, mask, values, body):
    return struct.pack("<H", status - 200) + bytes([mask]) + b"".join(struct.pack("<H", len(p)) + p for p in values + [body])
write("rest_error", "ok", rest(200, 0b1111, [b"abc", b"5", b"4", b"1.5"], json.dumps(bot).encode()))
write("rest_error", "401", rest(401, 0, [], b'{"message": "401: Unauthorized", "code": 0}'))
write("rest_error", "400_fields", rest(400, 0, [], json.dumps({"code": 50035, "message": "Invalid Form Body", "errors": {"content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "too long"}]}, "embeds": {"0": {"title": {"_errors": [{"code": "X", "message": "y"}]}}}}}).encode()))
write("rest_error", "429", rest(429, 0b1110000, [b"true", b"global", b"2"], b'{"message":"You are being rate limited.","retry_after":1.5,"global":true}'))
write("rest_error", "500_html", rest(502, 0, [], b"<html>bad gateway</html>"))

# cache_sequence: chunks of [index into EventKind::ALL] + payload.
def ev(t, d):
    return bytes([NAMES.index(t)]) + json.dumps(d).encode()
write("cache_sequence", "life", chunks(0, [ev(t, EVENTS[t]) for t in ["READY", "GUILD_CREATE", "MESSAGE_CREATE", "MESSAGE_UPDATE", "GUILD_MEMBER_UPDATE", "GUILD_ROLE_CREATE", "CHANNEL_UPDATE", "MESSAGE_DELETE", "GUILD_DELETE"]]))
write("cache_sequence", "guild_only", chunks(0, [ev("GUILD_CREATE", guild), ev("GUILD_DELETE", {"id": G})]))
print("event names:", len(NAMES))
