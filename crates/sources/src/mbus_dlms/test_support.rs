//! Test helpers shared by the `mbus-dlms` and `hdlc-dlms` adapter tests: the captures copied
//! into the proto crates' `vectors/` folders, and the comparison of a reading with the
//! vector's published `expected` values.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;

use serde_json::Value as Json;
use smart_meter_core::{Decimal, FrameError, Key, Obis, Reading, Value};

use crate::key::AesKey;
use crate::protocol::{MeterProtocol, Output};

/// One capture: wire bytes and metadata.
pub(crate) struct Vector {
    pub name: String,
    pub wire: Vec<u8>,
    pub meta: Json,
}

impl Vector {
    /// A key field of the metadata (`key_hex`, `auth_key_hex`).
    pub fn key(&self, field: &str) -> Option<AesKey> {
        self.meta[field].as_str().map(|k| AesKey::parse(k).unwrap())
    }
}

/// Every capture in `crates/proto/<link>/vectors`.
pub(crate) fn load(link: &str) -> Vec<Vector> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../proto")
        .join(link)
        .join("vectors");
    let mut out: Vec<Vector> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "hex"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let hex: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            let meta = std::fs::read_to_string(p.with_extension("json")).unwrap();
            Vector {
                name: p.file_stem().unwrap().to_string_lossy().into_owned(),
                wire: hex::decode(hex).unwrap(),
                meta: serde_json::from_str(&meta).unwrap(),
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// A deterministic generator (xorshift64*), so failures reproduce.
pub(crate) struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Feeds `input` whole, then finishes.
pub(crate) fn feed(p: &mut dyn MeterProtocol, input: &[u8]) -> Output {
    let mut out = Vec::new();
    p.on_bytes(input, &mut out);
    p.finish(&mut out);
    out
}

/// Feeds `input` in random chunks of 1..=`max` bytes, then finishes.
pub(crate) fn feed_chunked(
    p: &mut dyn MeterProtocol,
    input: &[u8],
    rng: &mut Rng,
    max: usize,
) -> Output {
    let mut out = Vec::new();
    let mut at = 0;
    while at < input.len() {
        let n = (1 + rng.below(max)).min(input.len() - at);
        p.on_bytes(&input[at..at + n], &mut out);
        at += n;
    }
    p.finish(&mut out);
    out
}

/// The readings of `out`, panicking on any error.
pub(crate) fn readings(name: &str, out: Output) -> Vec<Reading> {
    out.into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("{name}: {e}")))
        .collect()
}

/// The errors of `out`.
pub(crate) fn errors(out: &Output) -> Vec<&FrameError> {
    out.iter().filter_map(|r| r.as_ref().err()).collect()
}

/// Noise for between frames that contains none of the bytes in `avoid`.
pub(crate) fn noise(len: usize, seed: u8, avoid: &[u8]) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 0x01)
        .map(|b| if avoid.contains(&b) { 0x55 } else { b })
        .collect()
}

fn key_of(text: &str) -> Key {
    // "0.8.25.9.0.255 attr 1": the push setup's logical name (attribute 1), keyed by its OBIS
    // code like every other value.
    let obis = text.split(' ').next().unwrap();
    Key::Obis(obis.parse::<Obis>().unwrap())
}

/// Compares one expected value (`{"value": …, "unit": …}` of the vector JSON) with the
/// reading, both directly and through the reading JSON. Returns a description of the first
/// difference.
fn compare(r: &Reading, json: &Json, key: &Key, expected: &Json) -> Result<(), String> {
    let sample = r.get(key).ok_or_else(|| format!("{key}: missing"))?;
    let got = &json["values"][key.to_string()];
    let mut unit = expected["unit"].as_str();
    let mut want_value = expected["value"].clone();
    if let Some(u) = unit.filter(|u| u.contains("(raw, scaler not in frame")) {
        // Netz Burgenland currents: the JSON publishes the raw hundredths of an ampere; the
        // layout applies the scaler the frame lacks.
        unit = u.split(' ').next();
        let raw = want_value.as_i64().unwrap();
        want_value = serde_json::from_str(&Decimal::new(raw.into(), -2).to_string()).unwrap();
    }
    if got["unit"].as_str() != unit {
        return Err(format!("{key}: unit {} != {unit:?}", got["unit"]));
    }
    match (&want_value, &sample.value) {
        (Json::Number(n), Value::Number(d)) => {
            let want: Decimal = n.to_string().parse().unwrap();
            if *d != want {
                return Err(format!("{key}: {d} != {want}"));
            }
            if got["value"].as_f64() != n.as_f64() {
                return Err(format!("{key}: JSON {} != {n}", got["value"]));
            }
        }
        (Json::String(want), Value::Time(t)) => {
            // The published form is the meter's local time "YYYY-MM-DDTHH:MM:SS[.hh]"; the
            // reading adds the UTC offset where the meter gives one.
            let text = t.to_string();
            if !text.starts_with(&want[..19]) {
                return Err(format!("{key}: time {text} != {want}"));
            }
            if let Some(dev) = expected["deviation_min"].as_i64() {
                if t.offset_minutes.map(i64::from) != Some(-dev) {
                    return Err(format!("{key}: offset {:?} != {}", t.offset_minutes, -dev));
                }
            }
            if got["value"].as_str() != Some(text.as_str()) {
                return Err(format!("{key}: JSON {} != {text}", got["value"]));
            }
        }
        (Json::String(want), Value::Text(text)) => {
            if !text.eq_ignore_ascii_case(want) {
                return Err(format!("{key}: text {text:?} != {want:?}"));
            }
            if got["value"].as_str() != Some(text.as_str()) {
                return Err(format!("{key}: JSON {} != {text}", got["value"]));
            }
        }
        (want, got) => return Err(format!("{key}: expected {want}, got {got:?}")),
    }
    Ok(())
}

/// Checks the reading against every entry of the vector's `expected` map, the clock and
/// meter number that EVN sends without OBIS code (`expected_unlabeled` entries whose meaning
/// names an OBIS code), and OBIS/value pairs listed position by position (pushes without
/// object list). Returns how many values were compared.
pub(crate) fn check_reading(v: &Vector, r: &Reading) -> usize {
    let json: Json = serde_json::from_str(&r.to_json()).unwrap();
    let mut checked = 0;
    for (k, expected) in v.meta["expected"].as_object().unwrap() {
        compare(r, &json, &key_of(k), expected).unwrap_or_else(|e| panic!("{}: {e}", v.name));
        checked += 1;
    }
    let unlabeled: &[Json] = v.meta["expected_unlabeled"]
        .as_array()
        .map_or(&[], Vec::as_slice);
    for (i, e) in unlabeled.iter().enumerate() {
        if let Some(obis) = e["meaning"]
            .as_str()
            .and_then(|m| m.split(' ').next())
            .filter(|m| m.starts_with("0.0."))
        {
            compare(r, &json, &key_of(obis), e).unwrap_or_else(|e| panic!("{}: {e}", v.name));
            checked += 1;
        }
        // {octet-string OBIS, value} pairs listed by position.
        let is_obis = e["axdr_type"] == "octet-string"
            && e["value"]
                .as_str()
                .is_some_and(|s| s.len() == 12 && s.starts_with('0'));
        if let (true, Some(next)) = (is_obis, unlabeled.get(i + 1)) {
            if next["value"].is_number() {
                let bytes = hex::decode(e["value"].as_str().unwrap()).unwrap();
                let key = Key::Obis(Obis::from_bytes(&bytes).unwrap());
                compare(r, &json, &key, next).unwrap_or_else(|e| panic!("{}: {e}", v.name));
                checked += 1;
            }
        }
    }
    // The meter clock as the reading's time.
    if let Some(dt) = v.meta["notification"]["date_time"]["value"].as_str() {
        let t = r
            .meter_time
            .unwrap_or_else(|| panic!("{}: no meter time", v.name));
        assert!(
            t.to_string().starts_with(&dt[..19]),
            "{}: {t} != {dt}",
            v.name
        );
    }
    checked
}
