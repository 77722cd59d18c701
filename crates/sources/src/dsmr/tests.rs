//! End to end: every copied vector's wire bytes through `Config::build(..).on_bytes` (whole,
//! and in random chunks with noise between frames) and `finish`, compared with the vector
//! JSON's `expected` map through `Reading::to_json`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;
use smart_meter_core::{MeterId, Reading, Stage};

use super::*;

fn vector_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto/dsmr/vectors")
}

struct Vector {
    name: String,
    /// Bytes exactly as on the serial line.
    wire: Vec<u8>,
    meta: Value,
    config: Config,
}

fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text.split_whitespace().collect::<String>()).unwrap()
}

fn load(dir: &str) -> Vec<Vector> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(vector_dir().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|json| {
            let meta: Value =
                serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
            let wire = if dir == "plain" {
                std::fs::read(json.with_extension("txt")).unwrap()
            } else {
                unhex(&std::fs::read_to_string(json.with_extension("hex")).unwrap())
            };
            let config: Config = serde_json::from_value(serde_json::json!({
                "key": meta["key_hex"],
                "auth_key": meta["auth_key_hex"],
            }))
            .unwrap();
            Vector {
                name: meta["name"].as_str().unwrap().to_string(),
                wire,
                meta,
                config,
            }
        })
        .collect()
}

fn all_vectors() -> Vec<Vector> {
    let mut v = load("plain");
    v.extend(load("encrypted"));
    assert_eq!(v.len(), 19);
    v
}

fn decode(config: &Config, chunks: &[&[u8]]) -> Output {
    let mut protocol = config.build(MeterId::new("p1").unwrap());
    assert_eq!(protocol.name(), "dsmr");
    let mut out = Output::new();
    for chunk in chunks {
        protocol.on_bytes(chunk, &mut out);
    }
    protocol.finish(&mut out);
    out
}

/// Compares a reading with the vector's `expected` map, value by value.
fn assert_matches_expected(v: &Vector, reading: &Reading) {
    let name = &v.name;
    let json: Value = serde_json::from_str(&reading.to_json()).unwrap();
    assert_eq!(json["protocol"], "dsmr", "{name}");
    let values = json["values"].as_object().unwrap();
    let expected = v.meta["expected"].as_object().unwrap();
    let got_keys: BTreeSet<&String> = values.keys().collect();
    let want_keys: BTreeSet<&String> = expected.keys().collect();
    assert_eq!(got_keys, want_keys, "{name}: keys");
    // The meter clock: the raw `YYMMDDhhmmssX` of `0.0.1.0.0.255`, with S = +02:00, W = +01:00.
    let want_time = expected.get("0.0.1.0.0.255").map(|clock| {
        let raw = clock["value"].as_str().unwrap();
        let (digits, flag) = raw.split_at(12);
        let offset = match flag {
            "S" => "+02:00",
            "W" => "+01:00",
            other => panic!("{name}: flag {other:?}"),
        };
        let d = |i: usize| &digits[i..i + 2];
        format!(
            "20{}-{}-{}T{}:{}:{}{offset}",
            d(0),
            d(2),
            d(4),
            d(6),
            d(8),
            d(10)
        )
    });
    for (key, want) in expected {
        let got = &values[key];
        match &want["unit"] {
            Value::Null if key == "0.0.1.0.0.255" => {
                // SPEC.md: the meter clock is an ISO time string; the vectors keep the raw text.
                assert_eq!(got["unit"], Value::Null, "{name}: {key} unit");
                assert_eq!(got["value"].as_str(), want_time.as_deref(), "{name}: clock");
            }
            Value::Null => {
                assert_eq!(got["unit"], Value::Null, "{name}: {key} unit");
                assert!(want["value"].is_string(), "{name}: {key}");
                assert_eq!(got["value"], want["value"], "{name}: {key} value");
            }
            Value::String(unit) => {
                let unit = if unit == "m3" { "m³" } else { unit.as_str() };
                assert_eq!(got["unit"], unit, "{name}: {key} unit");
                assert!(got["value"].is_number(), "{name}: {key} {got}");
                assert_eq!(
                    got["value"].as_f64(),
                    want["value"].as_f64(),
                    "{name}: {key} value"
                );
            }
            other => panic!("{name}: {key}: unit {other}"),
        }
    }
    assert_eq!(json["meter_time"].as_str(), want_time.as_deref(), "{name}");
    let want_auth = match v.config.key {
        None => Value::Null,
        Some(_) => Value::Bool(v.config.auth_key.is_some()),
    };
    assert_eq!(
        json.get("authenticated").cloned().unwrap_or(Value::Null),
        want_auth,
        "{name}"
    );
}

#[test]
fn every_vector_decodes_to_its_expected_values() {
    for v in all_vectors() {
        let out = decode(&v.config, &[&v.wire]);
        assert_eq!(out.len(), 1, "{}: {out:?}", v.name);
        let reading = out[0]
            .as_ref()
            .unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_matches_expected(&v, reading);
    }
}

/// A small deterministic generator for chunk sizes and noise.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Noise that cannot start a frame (`/` for plain, `DB` for encrypted P1).
    fn noise(&mut self, out: &mut Vec<u8>) {
        for _ in 0..self.next() % 48 {
            let b = (self.next() % 256) as u8;
            out.push(if b == b'/' || b == 0xDB { b'.' } else { b });
        }
    }
}

#[test]
fn every_vector_decodes_the_same_in_random_chunks_with_noise_between_frames() {
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    for v in all_vectors() {
        // Starts mid-frame, then three copies with noise between them.
        let mut stream = v.wire[v.wire.len() / 2..].to_vec();
        for _ in 0..3 {
            rng.noise(&mut stream);
            stream.extend_from_slice(&v.wire);
        }
        rng.noise(&mut stream);
        for _ in 0..10 {
            let mut chunks = Vec::new();
            let mut rest = &stream[..];
            while !rest.is_empty() {
                let n = (1 + rng.next() % 200) as usize;
                let (chunk, tail) = rest.split_at(n.min(rest.len()));
                chunks.push(chunk);
                rest = tail;
            }
            let out = decode(&v.config, &chunks);
            let readings: Vec<&Reading> = out
                .iter()
                .map(|r| r.as_ref().unwrap_or_else(|e| panic!("{}: {e}", v.name)))
                .collect();
            assert_eq!(readings.len(), 3, "{}", v.name);
            for r in readings {
                assert_matches_expected(&v, r);
            }
        }
    }
}

fn plain_vector(name: &str) -> Vector {
    load("plain").into_iter().find(|v| v.name == name).unwrap()
}

fn encrypted_vector(prefix: &str) -> Vector {
    load("encrypted")
        .into_iter()
        .find(|v| v.name.starts_with(prefix))
        .unwrap()
}

fn stages(out: &Output) -> Vec<Result<(), Stage>> {
    out.iter()
        .map(|r| r.as_ref().map(|_| ()).map_err(|e| e.stage))
        .collect()
}

#[test]
fn reports_a_bad_crc_as_checksum_and_resumes_at_the_next_telegram() {
    let v = plain_vector("nl-dsmr5-iskra-am550-two-mbus");
    let mut bad = v.wire.clone();
    let at = bad.windows(8).position(|w| w == b"002130.1").unwrap();
    bad[at] = b'1';
    let mut stream = v.wire.clone();
    stream.extend_from_slice(&bad);
    stream.extend_from_slice(&v.wire);
    let out = decode(&v.config, &[&stream]);
    assert_eq!(stages(&out), vec![Ok(()), Err(Stage::Checksum), Ok(())]);
    let detail = &out[1].as_ref().unwrap_err().detail;
    assert!(detail.contains("56DD"), "{detail}");
    let at = format!("frame at byte {}:", v.wire.len());
    assert!(detail.starts_with(&at), "{detail}");
}

#[test]
fn reports_a_telegram_cut_by_the_end_of_input_as_framing() {
    let v = plain_vector("be-fluvius-emucs-171");
    let mut cut = v.wire.clone();
    cut.extend_from_slice(&v.wire[..500]);
    let out = decode(&v.config, &[&cut]);
    assert_eq!(stages(&out), vec![Ok(()), Err(Stage::Framing)]);
    let detail = &out[1].as_ref().unwrap_err().detail;
    let at = format!("frame at byte {}: telegram cut short", v.wire.len());
    assert!(detail.starts_with(&at), "{detail}");
    let v = encrypted_vector("lu-smarty");
    let mut cut = b"noise".to_vec();
    cut.extend_from_slice(&v.wire[..300]);
    let out = decode(&v.config, &[&cut]);
    assert_eq!(stages(&out), vec![Err(Stage::Framing)]);
    let detail = &out[0].as_ref().unwrap_err().detail;
    assert!(
        detail.starts_with("frame at byte 5: input ended inside"),
        "{detail}"
    );
}

#[test]
fn reports_a_tag_that_does_not_verify_as_authentication() {
    let mut v = encrypted_vector("lu-smarty");
    let last = v.wire.len() - 1;
    v.wire[last] ^= 0x80;
    let out = decode(&v.config, &[&v.wire]);
    assert_eq!(stages(&out), vec![Err(Stage::Authentication)]);
    // Steiermark: the key printed next to the frame in its source is not its authentication key.
    let v = encrypted_vector("est5-sagemcom-t210dr-energienetze-steiermark-1");
    let config: Config = serde_json::from_value(serde_json::json!({
        "key": v.meta["key_hex"],
        "auth_key": v.meta["auth_key_in_source_not_verifying"],
    }))
    .unwrap();
    let out = decode(&config, &[&v.wire]);
    assert_eq!(stages(&out), vec![Err(Stage::Authentication)]);
    let detail = &out[0].as_ref().unwrap_err().detail;
    assert!(
        detail.contains("authentication key is probably wrong"),
        "{detail}"
    );
}

#[test]
fn reports_a_wrong_key_as_decryption_saying_the_key_is_probably_wrong() {
    let v = encrypted_vector("est5-sagemcom-t210dr-energienetze-steiermark-2");
    let key = "000102030405060708090A0B0C0D0E0F";
    let config: Config = serde_json::from_value(serde_json::json!({ "key": key })).unwrap();
    let out = decode(&config, &[&v.wire, &v.wire]);
    assert_eq!(
        stages(&out),
        vec![Err(Stage::Decryption), Err(Stage::Decryption)]
    );
    for r in &out {
        let detail = &r.as_ref().unwrap_err().detail;
        assert!(detail.contains("key is probably wrong"), "{detail}");
        assert!(!detail.contains(key) && !detail.contains(&key.to_lowercase()));
    }
}

#[test]
fn decrypts_without_the_authentication_key_but_says_unauthenticated() {
    let mut v = encrypted_vector("lu-smarty");
    v.config.auth_key = None;
    let out = decode(&v.config, &[&v.wire]);
    let reading = out[0].as_ref().unwrap();
    assert_eq!(reading.authenticated, Some(false));
    assert_matches_expected(&v, reading);
}

#[test]
fn reset_drops_a_partial_frame() {
    let v = plain_vector("at-est5-sagemcom-t210dr-plain");
    let mut protocol = v.config.build(MeterId::new("p1").unwrap());
    let mut out = Output::new();
    protocol.on_bytes(&v.wire[..200], &mut out);
    protocol.reset();
    protocol.on_bytes(&v.wire[200..], &mut out);
    protocol.on_bytes(&v.wire, &mut out);
    protocol.finish(&mut out);
    assert_eq!(stages(&out), vec![Ok(())]);
}

#[test]
fn config_takes_key_and_auth_key_and_rejects_unknown_keys() {
    let c: Config = serde_json::from_str(r#"{}"#).unwrap();
    assert!(c.key.is_none() && c.validate().is_empty());
    let c: Config = serde_json::from_str(
        r#"{"key":"D491470F47126332B07D1923B3504188","auth_key":"00112233445566778899AABBCCDDEEFF"}"#,
    )
    .unwrap();
    assert!(c.validate().is_empty());
    let debug = format!("{c:?}");
    assert!(
        !debug.contains("D491") && !debug.contains("0011"),
        "{debug}"
    );
    assert!(serde_json::from_str::<Config>(r#"{"layout":"x"}"#).is_err());
    assert!(serde_json::from_str::<Config>(r#"{"key":"12"}"#).is_err());
    let c: Config =
        serde_json::from_str(r#"{"auth_key":"00112233445566778899AABBCCDDEEFF"}"#).unwrap();
    let problems = c.validate();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].0, "auth_key");
}

#[test]
fn line_defaults_are_115200_8n1() {
    assert_eq!(LINE, LineDefaults::n81(115_200));
    assert_eq!(NAME, "dsmr");
}

#[test]
fn says_to_set_key_when_the_line_carries_encrypted_frames() {
    for v in load("encrypted") {
        let mut stream = Vec::new();
        for _ in 0..3 {
            stream.extend_from_slice(&v.wire);
        }
        let out = decode(&Config::default(), &[&stream]);
        let hints: Vec<&FrameError> = out
            .iter()
            .filter_map(|r| r.as_ref().err())
            .filter(|e| e.stage == Stage::Decryption && e.detail.contains("set `key`"))
            .collect();
        assert_eq!(hints.len(), 3, "{}: {out:?}", v.name);
        assert!(out.iter().all(Result::is_err), "{}", v.name);
        // Only noise from the ciphertext of the first frame may precede the first hint.
        let first = out
            .iter()
            .position(|r| r.as_ref().is_err_and(|e| e.detail.contains("set `key`")));
        assert!(
            out[first.unwrap() + 1..]
                .iter()
                .all(|r| r.as_ref().is_err_and(|e| e.detail.contains("set `key`"))),
            "{}: {out:?}",
            v.name
        );
    }
}

#[test]
fn says_to_remove_key_when_the_line_carries_plain_telegrams() {
    let v = plain_vector("at-est5-sagemcom-t210dr-plain");
    let config: Config =
        serde_json::from_str(r#"{"key":"D491470F47126332B07D1923B3504188"}"#).unwrap();
    let out = decode(&config, &[&v.wire, &v.wire]);
    assert_eq!(
        stages(&out),
        vec![Err(Stage::Decryption), Err(Stage::Decryption)]
    );
    let detail = &out[0].as_ref().unwrap_err().detail;
    assert!(detail.contains("plain (unencrypted) telegram"), "{detail}");
    assert!(detail.starts_with("frame at byte 0:"), "{detail}");
}
