//! The event table against Discord's own tables, and the event parser against real payloads: the
//! docs' examples and other libraries' captures in `../shared/discord` (not copied into the repo).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nostrum_core::{Event, EventKind, Intents};
use serde_json::Value;
use serde_json::value::RawValue;

fn shared() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/discord");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipped: {} is absent (these tests read Discord's tables and payloads from ../shared)",
            dir.display()
        );
        None
    }
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_table_has_exactly_the_documented_dispatch_events_with_their_intents() {
    let Some(dir) = shared() else { return };
    let reference = json(&dir.join("gateway-reference.json"));
    let documented: Vec<String> = reference["receive_events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|event| event["t"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(documented.len(), 79);
    let ours: Vec<&str> = EventKind::ALL
        .iter()
        .filter(|kind| kind.is_dispatch())
        .map(|kind| kind.name())
        .collect();
    assert_eq!(
        ours, documented,
        "the table lists Discord's dispatch events, in the docs' order"
    );
    for name in [
        "VOICE_READY",
        "VOICE_SPEAKING_UPDATE",
        "VOICE_INCOMING_PACKET",
        "SHARD_CONNECTED",
        "SHARD_DISCONNECTED",
        "SHARD_RESUMED",
        "UNKNOWN",
    ] {
        assert!(
            EventKind::from_name(name).is_some_and(|kind| !kind.is_dispatch()),
            "{name}"
        );
    }

    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for intent in reference["intents"].as_array().unwrap() {
        let bit = 1u64 << intent["bit"].as_u64().unwrap();
        for event in intent["events"].as_array().unwrap() {
            *expected
                .entry(event.as_str().unwrap().to_owned())
                .or_default() |= bit;
        }
    }
    for kind in EventKind::ALL {
        let want = expected.get(kind.name()).copied().unwrap_or(0);
        assert_eq!(
            kind.intents(),
            Intents::from_bits_retain(want),
            "intents of {}",
            kind.name()
        );
    }
}

/// Parses every op-0 envelope in `files`; returns (typed, unknown) names.
fn parse_envelopes(files: impl Iterator<Item = PathBuf>) -> (Vec<String>, Vec<String>) {
    let (mut typed, mut unknown) = (Vec::new(), Vec::new());
    for path in files {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Ok(value) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let (Some(0), Some(name)) = (value["op"].as_u64(), value["t"].as_str()) else {
            continue;
        };
        let raw = RawValue::from_string(value["d"].to_string()).unwrap();
        let event = Event::from_dispatch(name, &raw);
        let label = format!("{name} ({})", path.file_name().unwrap().to_string_lossy());
        match EventKind::from_name(name) {
            Some(kind) if event.kind() == kind => typed.push(label),
            _ => {
                assert_eq!(
                    event.kind(),
                    EventKind::Unknown,
                    "{label}: the right variant or Unknown"
                );
                unknown.push(label);
            }
        }
    }
    (typed, unknown)
}

fn files_in(dir: &Path) -> impl Iterator<Item = PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files.into_iter()
}

#[test]
fn captured_gateway_dispatches_become_their_events() {
    let Some(dir) = shared() else { return };
    let gateway = dir.join("peers/Discord4J-discord-json/src/test/resources/gateway");
    let (typed, unknown) = parse_envelopes(files_in(&gateway));
    eprintln!(
        "Discord4J captures: {} typed, {} unknown: {unknown:#?}",
        typed.len(),
        unknown.len()
    );
    assert!(typed.len() >= 36, "most captures are typed: {typed:?}");
    // These still fail after the lenient pass and arrive as Unknown, never lost. Two are anonymised
    // beyond repair (a junk image hash, zeroed snowflakes); the other four lack fields twilight-model
    // requires with no documented default yet (work left: see the consumer-heart issue's note).
    // Anything else failing is a regression.
    let allowed_unknown = [
        "INTEGRATION_UPDATE (IntegrationUpdate.json)",
        "PRESENCE_UPDATE (PresenceUpdate.Activities.json)",
        "INTERACTION_CREATE (InteractionCreate.SubCommandGroup.json)",
        "INTERACTION_CREATE (InteractionCreate.json)",
        "MESSAGE_REACTION_ADD (MessageReactionAdd.json)",
        "MESSAGE_UPDATE (MessageUpdate.Embeds.json)",
    ];
    for name in &unknown {
        assert!(
            allowed_unknown.contains(&name.as_str()),
            "{name} no longer parses"
        );
    }
}

#[test]
fn docs_example_dispatches_become_their_events() {
    let Some(dir) = shared() else { return };
    let (typed, unknown) = parse_envelopes(files_in(&dir.join("docs-examples")));
    eprintln!("docs envelopes: typed {typed:?}, unknown {unknown:?}");
    // The docs' real dispatch envelopes type; only the generic placeholder name stays Unknown.
    assert!(
        typed
            .iter()
            .any(|name| name.starts_with("VOICE_SERVER_UPDATE")),
        "{typed:?}"
    );
    assert!(
        unknown
            .iter()
            .all(|name| name.starts_with("GATEWAY_EVENT_NAME")),
        "a documented dispatch no longer types: {unknown:?}"
    );
}

/// The docs' object examples, as the payloads of the events that carry them.
#[test]
fn docs_example_objects_parse_as_their_events() {
    let Some(dir) = shared() else { return };
    let examples = dir.join("docs-examples");
    let cases = [
        (
            "channel__channel-object__example-guild-text-channel.json",
            "CHANNEL_CREATE",
        ),
        (
            "channel__channel-object__example-guild-voice-channel.json",
            "CHANNEL_UPDATE",
        ),
        (
            "channel__channel-object__example-thread-channel.json",
            "THREAD_CREATE",
        ),
        (
            "channel__channel-object__example-channel-category.json",
            "CHANNEL_DELETE",
        ),
        (
            "voice__voice-state-object__example-voice-state.json",
            "VOICE_STATE_UPDATE",
        ),
        (
            "soundboard__soundboard-sound-object__example-guild-soundboard-sound.json",
            "GUILD_SOUNDBOARD_SOUND_CREATE",
        ),
        (
            "auto-moderation__auto-moderation-rule-object__example-auto-moderation-rule.json",
            "AUTO_MODERATION_RULE_CREATE",
        ),
        (
            "gateway-events__voice-server-update__example-voice-server-update-payload.json",
            "VOICE_SERVER_UPDATE",
        ),
    ];
    let mut typed = 0;
    for (file, name) in cases {
        let path = examples.join(file);
        let Ok(text) = std::fs::read_to_string(&path) else {
            panic!("{file} is missing")
        };
        let value: Value = serde_json::from_str(&text).unwrap();
        let d = if value.get("op").is_some() {
            value["d"].clone()
        } else {
            value
        };
        let event = Event::from_dispatch(name, &RawValue::from_string(d.to_string()).unwrap());
        let kind = EventKind::from_name(name).unwrap();
        if event.kind() == kind {
            typed += 1;
        } else {
            eprintln!("{file} as {name}: Unknown");
            assert_eq!(event.kind(), EventKind::Unknown);
        }
    }
    assert!(typed >= 6, "{typed} of {} docs objects typed", cases.len());
}

#[test]
fn a_thousand_member_chunk_parses() {
    let Some(dir) = shared() else { return };
    let path =
        dir.join("peers/Discord4J-discord-json/src/test/resources/gateway/GuildMembersChunk.json");
    let value = json(&path);
    let event = Event::from_dispatch(
        "GUILD_MEMBERS_CHUNK",
        &RawValue::from_string(value["d"].to_string()).unwrap(),
    );
    let Event::GuildMembersChunk(chunk) = event else {
        panic!("not typed: {event:?}")
    };
    assert_eq!(
        chunk.members.len(),
        value["d"]["members"].as_array().unwrap().len()
    );
}

/// GUILD_CREATE, PRESENCE_UPDATE and GUILD_MEMBER_ADD are typed by parsers of our own (their
/// derives buffer JSON): on every real payload we have, the event holds what twilight-model's
/// derive makes of it.
#[test]
fn direct_parsers_agree_with_the_derive_on_real_payloads() {
    use twilight_model::gateway::payload::incoming::{GuildCreate, MemberAdd};
    use twilight_model::gateway::presence::Presence;
    let Some(dir) = shared() else { return };
    let gateway = dir.join("peers/Discord4J-discord-json/src/test/resources/gateway");
    let mut compared = BTreeMap::<String, usize>::new();
    for path in files_in(&gateway).chain(files_in(&dir.join("docs-examples"))) {
        let Ok(value) = serde_json::from_str::<Value>(&std::fs::read_to_string(&path).unwrap())
        else {
            continue;
        };
        let (Some(0), Some(name)) = (value["op"].as_u64(), value["t"].as_str()) else {
            continue;
        };
        let d = value["d"].to_string();
        let event = Event::from_dispatch(name, &RawValue::from_string(d.clone()).unwrap());
        let label = format!("{name} ({})", path.display());
        let same = match (name, &event) {
            ("GUILD_CREATE", Event::GuildCreate(ours)) => serde_json::from_str::<GuildCreate>(&d)
                .ok()
                .map(|derived| **ours == derived),
            ("PRESENCE_UPDATE", Event::PresenceUpdate(ours)) => {
                serde_json::from_str::<Presence>(&d)
                    .ok()
                    .map(|derived| ours.new == derived)
            }
            ("GUILD_MEMBER_ADD", Event::GuildMemberAdd(ours)) => {
                serde_json::from_str::<MemberAdd>(&d)
                    .ok()
                    .map(|derived| **ours == derived)
            }
            _ => None,
        };
        if let Some(same) = same {
            assert!(same, "{label}: not what the derive makes of it");
            *compared.entry(name.to_owned()).or_default() += 1;
        }
    }
    eprintln!("compared: {compared:?}");
    for name in ["GUILD_CREATE", "PRESENCE_UPDATE", "GUILD_MEMBER_ADD"] {
        assert!(
            compared.contains_key(name),
            "no {name} payload compared: {compared:?}"
        );
    }
}
