//! Helpers shared by the Homie and Home Assistant integration tests: readings built from the
//! vector metadata in `src/homie/testdata/`.
#![allow(dead_code)]

use std::path::PathBuf;

use smart_meter_core::{Decimal, Key, MeterId, Reading, Sample, Unit};

/// A vector's name and the reading its `expected` values make.
pub struct Fixture {
    pub file: String,
    pub reading: Reading,
    /// (key, expected value as text: exact decimal or the string).
    pub expected: Vec<(Key, String)>,
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/homie/testdata")
}

/// Every fixture, each as a reading of a meter named after its position (`m0`, `m1`, …).
pub fn all() -> Vec<Fixture> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "fixtures missing in {}", dir().display());
    files
        .iter()
        .enumerate()
        .map(|(i, p)| load(p, &format!("m{i}")))
        .collect()
}

/// The reading of one fixture file.
pub fn load(path: &std::path::Path, meter: &str) -> Fixture {
    let text = std::fs::read_to_string(path).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let protocol: &'static str = match v["transport"].as_str().unwrap() {
        "mbus-dlms" => "mbus-dlms",
        "hdlc-dlms" => "hdlc-dlms",
        "dsmr" | "dsmr-encrypted" => "dsmr",
        "kmp" => "kamstrup",
        other => panic!("unknown transport {other}"),
    };
    let mut reading = Reading::new(MeterId::new(meter).unwrap(), protocol);
    let mut expected = Vec::new();
    for (k, e) in v["expected"].as_object().unwrap() {
        let key = if let Some(rest) = k.strip_prefix("register ") {
            let id: u16 = rest.split(' ').next().unwrap().parse().unwrap();
            Key::Kmp(id)
        } else {
            Key::Obis(k.parse().unwrap())
        };
        let unit = e["unit"].as_str().map(|u| if u == "m3" { "m³" } else { u });
        let unit = unit.and_then(Unit::from_symbol);
        match &e["value"] {
            serde_json::Value::Number(n) => {
                let d: Decimal = n.to_string().parse().unwrap();
                expected.push((key.clone(), d.to_string()));
                reading.samples.push(Sample::number(key, d, unit));
            }
            serde_json::Value::String(s) => {
                expected.push((key.clone(), s.clone()));
                reading.samples.push(Sample::text(key, s.clone()));
            }
            other => panic!("{k}: unexpected value {other}"),
        }
    }
    Fixture {
        file: path.file_name().unwrap().to_string_lossy().into_owned(),
        reading,
        expected,
    }
}
