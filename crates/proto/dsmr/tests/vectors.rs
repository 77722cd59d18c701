//! Every published vector decodes to its expected values: each entry of the JSON's `expected`
//! map is compared with the telegram's object (the last group's number and unit, or its text,
//! and every raw group).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

use std::path::{Path, PathBuf};

use proto_dsmr::{Checksum, Framer, Obis, Telegram};
use serde_json::Value;

fn vectors(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("vectors")
        .join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

fn meta(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn obis_key(key: &str) -> Obis {
    let g: Vec<u8> = key.split('.').map(|p| p.parse().unwrap()).collect();
    Obis::new(g[0], g[1], g[2], g[3], g[4], g[5])
}

/// Compares one telegram with the `expected` map; returns the number of entries checked.
fn compare(
    name: &str,
    telegram: &Telegram<'_>,
    expected: &serde_json::Map<String, Value>,
) -> usize {
    let objects: Vec<_> = telegram.objects().collect();
    assert_eq!(objects.len(), expected.len(), "{name}: number of objects");
    for (key, want) in expected {
        let obis = obis_key(key);
        let object = telegram
            .object(obis)
            .unwrap_or_else(|| panic!("{name}: {key} missing"));
        let value = object.value().unwrap();
        match &want["unit"] {
            Value::Null => {
                assert!(value.unit().is_none(), "{name}: {key} has a unit");
                assert_eq!(Some(value.raw()), want["value"].as_str(), "{name}: {key}");
            }
            Value::String(unit) => {
                let (number, got_unit) = value
                    .quantity()
                    .unwrap_or_else(|| panic!("{name}: {key} is not a quantity"));
                assert_eq!(got_unit, unit, "{name}: {key} unit");
                let got: f64 = number.to_string().parse().unwrap();
                assert_eq!(Some(got), want["value"].as_f64(), "{name}: {key} value");
            }
            other => panic!("{name}: {key}: unit {other}"),
        }
        if let Some(raw) = want.get("raw_groups") {
            let groups: Vec<&str> = object.groups().map(|g| g.raw()).collect();
            let raw: Vec<&str> = raw
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert_eq!(groups, raw, "{name}: {key} groups");
        } else {
            assert_eq!(object.group_count(), 1, "{name}: {key} groups");
        }
    }
    expected.len()
}

#[test]
fn every_plain_vector_decodes_to_its_expected_values() {
    let mut checked = 0;
    let files = vectors("plain");
    assert_eq!(files.len(), 16);
    for json in files {
        let meta = meta(&json);
        let name = meta["name"].as_str().unwrap();
        let bytes = std::fs::read(json.with_extension("txt")).unwrap();
        let telegram = Telegram::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            format!("/{}", telegram.header()),
            meta["header"].as_str().unwrap(),
            "{name}"
        );
        match (telegram.checksum(), meta["crc16"]["computed"].as_str()) {
            (Checksum::Verified(crc), Some(want)) => {
                assert_eq!(format!("{crc:04X}"), want, "{name}: crc");
            }
            (Checksum::Absent, None) => {}
            (got, want) => panic!("{name}: checksum {got:?}, expected {want:?}"),
        }
        checked += compare(name, &telegram, meta["expected"].as_object().unwrap());
    }
    assert!(checked > 400, "{checked} entries");
}

#[test]
fn every_decrypted_telegram_of_the_encrypted_vectors_decodes_to_its_expected_values() {
    let files = vectors("encrypted");
    assert_eq!(files.len(), 3);
    for json in files {
        let meta = meta(&json);
        let name = meta["name"].as_str().unwrap();
        let text = meta["decrypted_telegram"].as_str().unwrap();
        let telegram = Telegram::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            matches!(telegram.checksum(), Checksum::Verified(_)),
            "{name}"
        );
        assert_eq!(
            telegram.header(),
            &meta["decrypted_telegram_header"].as_str().unwrap()[1..]
        );
        compare(name, &telegram, meta["expected"].as_object().unwrap());
    }
}

/// A small deterministic generator for chunk sizes and garbage.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn framer_finds_every_vector_in_a_noisy_stream_whatever_the_chunking() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let telegrams: Vec<Vec<u8>> = vectors("plain")
        .iter()
        .map(|j| std::fs::read(j.with_extension("txt")).unwrap())
        .collect();
    let mut stream = b"1-0:1.8.1(000001.000*kWh)\r\n!1234\r\n".to_vec();
    for t in &telegrams {
        for _ in 0..rng.next() % 40 {
            // Garbage without '/', as line noise between telegrams.
            stream.push(match (rng.next() % 256) as u8 {
                b'/' => b'?',
                b => b,
            });
        }
        stream.extend_from_slice(t);
    }
    for round in 0..50 {
        let mut framer = Framer::new();
        let mut frames = Vec::new();
        let mut rest = &stream[..];
        while !rest.is_empty() {
            let n = if round == 0 {
                rest.len()
            } else {
                1 + (rng.next() % 300) as usize
            };
            let (chunk, tail) = rest.split_at(n.min(rest.len()));
            framer.feed(chunk, |_, f| frames.push(f.unwrap().to_vec()));
            rest = tail;
        }
        assert!(framer.finish().is_none());
        assert_eq!(frames, telegrams, "round {round}");
    }
}
