//! The `kamstrup` adapter end to end: replayed captures against their published values, and
//! polling a simulated meter with a fake clock.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proto_kmp::{Frame, Number, Register, Request, Response, Unit as KmpUnit};
use serde_json::Value as Json;
use smart_meter_core::{FrameError, MeterId, Reading, Stage};

use super::*;
use crate::protocol::Output;

fn vector_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto/kmp/vectors")
}

struct Vector {
    name: String,
    bytes: Vec<u8>,
    /// `kmp.<register>` → (value as normalised decimal, unit as published).
    expected: BTreeMap<String, ((i128, i32), String)>,
}

fn vectors() -> Vec<Vector> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(vector_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "hex"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty());
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let bytes = hex::decode(text.split_whitespace().collect::<String>()).unwrap();
            let meta: Json =
                serde_json::from_str(&std::fs::read_to_string(p.with_extension("json")).unwrap())
                    .unwrap();
            let expected = meta["exchanges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|ex| {
                    let want = &ex["expected"];
                    (
                        format!("kmp.{}", ex["register"]),
                        (
                            json_decimal(&want["value"]),
                            want["unit"].as_str().unwrap().to_string(),
                        ),
                    )
                })
                .collect();
            Vector {
                name: p.file_stem().unwrap().to_string_lossy().into_owned(),
                bytes,
                expected,
            }
        })
        .collect()
}

fn normalize(mut m: i128, mut e: i32) -> (i128, i32) {
    if m == 0 {
        return (0, 0);
    }
    while m % 10 == 0 {
        m /= 10;
        e += 1;
    }
    (m, e)
}

/// A JSON number as an exact normalised decimal (the text, not an f64).
fn json_decimal(v: &Json) -> (i128, i32) {
    let text = v.to_string();
    assert!(!text.contains(['e', 'E']), "{text}");
    let (neg, body) = match text.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, text.as_str()),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let m: i128 = format!("{int}{frac}").parse().unwrap();
    normalize(if neg { -m } else { m }, -(frac.len() as i32))
}

/// The metadata writes `m3` where the reading JSON writes `m³`.
fn same_unit(ours: &Json, theirs: &str) -> bool {
    ours.as_str() == Some(theirs) || (theirs == "m3" && ours.as_str() == Some("m³"))
}

fn meter() -> MeterId {
    MeterId::new("heat").unwrap()
}

fn split(out: Output) -> (Vec<Reading>, Vec<FrameError>) {
    let mut readings = Vec::new();
    let mut errors = Vec::new();
    for r in out {
        match r {
            Ok(reading) => readings.push(reading),
            Err(e) => errors.push(e),
        }
    }
    (readings, errors)
}

/// Every value of every reading, keyed as in the reading JSON, checked against `v`.
fn assert_matches_vector(v: &Vector, readings: &[Reading]) {
    let mut seen = BTreeMap::new();
    for r in readings {
        assert_eq!(r.protocol, "kamstrup");
        assert_eq!(r.meter.as_str(), "heat");
        let json: Json = serde_json::from_str(&r.to_json()).unwrap();
        for (key, sample) in json["values"].as_object().unwrap() {
            assert!(
                seen.insert(key.clone(), sample.clone()).is_none(),
                "{}: {key} twice",
                v.name
            );
        }
    }
    assert_eq!(
        seen.keys().collect::<Vec<_>>(),
        v.expected.keys().collect::<Vec<_>>(),
        "{}",
        v.name
    );
    for (key, (value, unit)) in &v.expected {
        let got = &seen[key];
        assert_eq!(&json_decimal(&got["value"]), value, "{}: {key}", v.name);
        assert!(
            same_unit(&got["unit"], unit),
            "{}: {key} unit {} vs {unit}",
            v.name,
            got["unit"]
        );
    }
}

#[test]
fn every_vector_replayed_whole_gives_its_published_values() {
    for v in vectors() {
        let mut p = Config::default().build(meter());
        let mut out = Output::new();
        p.on_bytes(&v.bytes, &mut out);
        p.finish(&mut out);
        let (readings, errors) = split(out);
        assert!(errors.is_empty(), "{}: {errors:?}", v.name);
        assert_eq!(readings.len(), v.expected.len());
        assert_matches_vector(&v, &readings);
    }
}

/// xorshift64*: a fixed, dependency-free pseudo-random sequence.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The vector's frames (one per line) with garbage between them.
fn with_garbage(vector_name: &str, rng: &mut Rng) -> Vec<u8> {
    let text = std::fs::read_to_string(vector_dir().join(format!("{vector_name}.hex"))).unwrap();
    let mut bytes = Vec::new();
    for line in text.split_whitespace() {
        for _ in 0..rng.below(12) {
            bytes.push(rng.next() as u8);
        }
        bytes.extend(hex::decode(line).unwrap());
    }
    bytes
}

#[test]
fn every_vector_in_random_chunks_with_garbage_between_frames_gives_its_published_values() {
    let mut rng = Rng(0x5EED_0F4B_4D50);
    for v in vectors() {
        for _round in 0..50 {
            let bytes = with_garbage(&v.name, &mut rng);
            let mut p = Config::default().build(meter());
            let mut out = Output::new();
            let mut rest = bytes.as_slice();
            while !rest.is_empty() {
                let n = 1 + rng.below(rest.len().min(40));
                let (chunk, tail) = rest.split_at(n);
                p.on_bytes(chunk, &mut out);
                rest = tail;
            }
            p.finish(&mut out);
            // Garbage may look like a cut-off frame and be reported; it never becomes a value.
            let (readings, errors) = split(out);
            assert!(errors.iter().all(|e| e.stage != Stage::Data), "{errors:?}");
            assert_matches_vector(&v, &readings);
        }
    }
}

#[test]
fn a_replay_that_stops_inside_a_frame_reports_it_as_framing() {
    let v = &vectors()[0];
    let mut p = Config::default().build(meter());
    let mut out = Output::new();
    p.on_bytes(&v.bytes[..v.bytes.len() - 3], &mut out);
    p.finish(&mut out);
    let (readings, errors) = split(out);
    assert_eq!(readings.len(), v.expected.len() - 1);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].stage, Stage::Framing);
    assert!(
        errors[0].detail.contains("before its stop byte"),
        "{}",
        errors[0]
    );
}

#[test]
fn a_replayed_response_with_a_bad_crc_is_a_checksum_error() {
    let mut bytes = hex::decode("403F10003C0304430000D6DE03220D").unwrap();
    bytes[8] ^= 0x01;
    let mut p = Config::default().build(meter());
    let mut out = Output::new();
    p.on_bytes(&bytes, &mut out);
    let (readings, errors) = split(out);
    assert!(readings.is_empty());
    assert_eq!(errors[0].stage, Stage::Checksum);
    assert!(
        errors[0].detail.contains("frame says 0322"),
        "{}",
        errors[0]
    );
}

/// A simulated Multical: the capture's values for the registers it has, 4-byte mantissas.
struct Meter {
    known: Vec<Register>,
}

impl Meter {
    fn multical() -> Meter {
        let r = |id, unit, mantissa, exponent| {
            Register::new(id, unit, Number { mantissa, exponent }, 4).unwrap()
        };
        Meter {
            known: vec![
                r(60, KmpUnit::MWh, 55006, -3),
                r(80, KmpUnit::KW, 0, -1),
                r(86, KmpUnit::DegC, 5365, -2),
                r(87, KmpUnit::DegC, 4579, -2),
                r(89, KmpUnit::K, 786, -2),
                r(74, KmpUnit::LPerH, 0, 0),
                r(68, KmpUnit::M3, 187556, -2),
                r(1004, KmpUnit::H, 61234, 0),
                r(1002, KmpUnit::HhMmSs, 130512, 0),
                r(1003, KmpUnit::YyMmDd, 240315, 0),
            ],
        }
    }

    fn answer(&self, request: &[u8]) -> Vec<u8> {
        let req = Request::parse(&Frame::parse(request).unwrap()).unwrap();
        Response {
            address: req.address,
            registers: req
                .registers
                .iter()
                .filter_map(|id| self.known.iter().find(|r| r.id == *id).cloned())
                .collect(),
        }
        .emit()
    }
}

fn ms(t0: Instant, ms: u64) -> Instant {
    t0 + Duration::from_millis(ms)
}

#[test]
fn a_poll_of_the_default_registers_is_one_reading_with_the_meters_units() {
    let t0 = Instant::now();
    let meter_sim = Meter::multical();
    let mut p = Poller::new(&Config::default(), meter(), t0);
    let mut out = Output::new();
    assert_eq!(p.next_wakeup(), Some(t0));
    let req = p.poll(t0, &mut out).unwrap();
    assert_eq!(
        Request::parse(&Frame::parse(&req).unwrap())
            .unwrap()
            .registers,
        [60, 80, 86, 87, 89, 74, 68, 1004]
    );
    // The optical head echoes the request before the meter answers.
    let mut line = req.clone();
    line.extend(meter_sim.answer(&req));
    p.on_bytes(&line, &mut out);
    let (readings, errors) = split(std::mem::take(&mut out));
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(readings.len(), 1);
    let json: Json = serde_json::from_str(&readings[0].to_json()).unwrap();
    assert_eq!(json["protocol"], "kamstrup");
    let values = json["values"].as_object().unwrap();
    // In the order configured.
    let keys: Vec<String> = readings[0]
        .samples
        .iter()
        .map(|s| s.key.to_string())
        .collect();
    assert_eq!(
        keys,
        ["kmp.60", "kmp.80", "kmp.86", "kmp.87", "kmp.89", "kmp.74", "kmp.68", "kmp.1004"]
    );
    let units: Vec<&str> = keys
        .iter()
        .map(|k| values[k]["unit"].as_str().unwrap())
        .collect();
    assert_eq!(units, ["MWh", "kW", "°C", "°C", "K", "l/h", "m³", "h"]);
    assert_eq!(values["kmp.86"]["value"], serde_json::json!(53.65));
    assert_eq!(values["kmp.68"]["value"], serde_json::json!(1875.56));

    // Nothing more until the next interval.
    assert!(p.poll(ms(t0, 1_000), &mut out).is_none());
    assert_eq!(p.next_wakeup(), Some(ms(t0, 60_000)));
    assert!(p.poll(ms(t0, 60_000), &mut out).is_some());
}

#[test]
fn the_meter_clock_registers_set_the_readings_meter_time() {
    let t0 = Instant::now();
    let config = Config {
        registers: vec![60, 1002, 1003],
        ..Config::default()
    };
    let mut p = Poller::new(&config, meter(), t0);
    let mut out = Output::new();
    let req = p.poll(t0, &mut out).unwrap();
    p.on_bytes(&Meter::multical().answer(&req), &mut out);
    let (readings, _) = split(out);
    let json: Json = serde_json::from_str(&readings[0].to_json()).unwrap();
    assert_eq!(json["meter_time"], "2024-03-15T13:05:12");
    assert_eq!(json["values"]["kmp.1003"]["value"], "2024-03-15");
}

#[test]
fn a_register_the_meter_does_not_know_is_missing_and_reported() {
    let t0 = Instant::now();
    let config = Config {
        registers: vec![60, 4242, 68],
        ..Config::default()
    };
    let mut p = Poller::new(&config, meter(), t0);
    let mut out = Output::new();
    let req = p.poll(t0, &mut out).unwrap();
    p.on_bytes(&Meter::multical().answer(&req), &mut out);
    let (readings, errors) = split(out);
    assert_eq!(readings.len(), 1);
    let json = readings[0].to_json();
    assert!(!json.contains("4242"), "{json}");
    assert!(!json.contains("None"), "{json}");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].stage, Stage::Data);
    assert!(
        errors[0].detail.starts_with("register 4242: left out"),
        "{}",
        errors[0]
    );
}

#[test]
fn a_silent_meter_is_retried_then_reported_and_polled_again_next_interval() {
    let t0 = Instant::now();
    let mut p = Poller::new(&Config::default(), meter(), t0);
    let mut out = Output::new();
    let first = p.poll(t0, &mut out).unwrap();
    assert_eq!(p.next_wakeup(), Some(ms(t0, 2_000)));
    assert_eq!(p.poll(ms(t0, 2_000), &mut out), Some(first.clone()));
    assert_eq!(p.poll(ms(t0, 4_000), &mut out), Some(first.clone()));
    assert!(out.is_empty());
    assert_eq!(p.poll(ms(t0, 6_000), &mut out), None);
    let (readings, errors) = split(std::mem::take(&mut out));
    assert!(readings.is_empty());
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].stage, Stage::Framing);
    assert_eq!(
        errors[0].detail,
        "registers 60 (heat energy E1), 80 (power), 86 (flow temperature t1), 87 (return \
         temperature t2), 89 (temperature difference), 74 (flow V1), 68 (volume V1), 1004 (hour \
         counter): no response to 3 requests (timeout 2s each)"
    );
    // The next poll still happens, and a meter that is back is read normally.
    assert_eq!(p.next_wakeup(), Some(ms(t0, 60_000)));
    let req = p.poll(ms(t0, 60_000), &mut out).unwrap();
    p.on_bytes(&Meter::multical().answer(&req), &mut out);
    let (readings, errors) = split(out);
    assert_eq!((readings.len(), errors.len()), (1, 0));
}

#[test]
fn a_garbled_reply_is_retried_and_the_poll_completes() {
    let t0 = Instant::now();
    let mut p = Poller::new(&Config::default(), meter(), t0);
    let mut out = Output::new();
    let req = p.poll(t0, &mut out).unwrap();
    let mut garbled = Meter::multical().answer(&req);
    garbled[12] ^= 0x55;
    p.on_bytes(&garbled, &mut out);
    assert!(out.is_empty());
    assert!(p.next_wakeup().unwrap() <= ms(t0, 1));
    let again = p.poll(ms(t0, 700), &mut out).unwrap();
    assert_eq!(again, req);
    p.on_bytes(&Meter::multical().answer(&again), &mut out);
    let (readings, errors) = split(out);
    assert_eq!((readings.len(), errors.len()), (1, 0));
    assert_eq!(readings[0].samples.len(), 8);
}

#[test]
fn more_than_eight_registers_take_several_requests_and_give_one_reading() {
    let t0 = Instant::now();
    let config = Config {
        registers: vec![60, 80, 86, 87, 89, 74, 68, 1004, 1002, 1003],
        ..Config::default()
    };
    let mut p = Poller::new(&config, meter(), t0);
    let sim = Meter::multical();
    let mut out = Output::new();
    let mut t = 0;
    while let Some(req) = p.poll(ms(t0, t), &mut out) {
        p.on_bytes(&sim.answer(&req), &mut out);
        t += 500;
        if t > 5_000 {
            break;
        }
    }
    let (readings, errors) = split(out);
    assert!(errors.is_empty());
    assert_eq!(readings.len(), 1);
    assert_eq!(readings[0].samples.len(), 10);
    assert!(readings[0].meter_time.is_some());
}

#[test]
fn reset_abandons_the_poll_and_asks_again() {
    let t0 = Instant::now();
    let mut p = Poller::new(&Config::default(), meter(), t0);
    let mut out = Output::new();
    let req = p.poll(t0, &mut out).unwrap();
    p.on_bytes(&Meter::multical().answer(&req)[..10], &mut out);
    p.reset();
    let again = p.poll(ms(t0, 3_000), &mut out).unwrap();
    assert_eq!(again, req);
    p.on_bytes(&Meter::multical().answer(&again), &mut out);
    let (readings, errors) = split(out);
    assert_eq!((readings.len(), errors.len()), (1, 0));
}

#[test]
fn config_defaults_are_the_predecessors_registers_every_60s() {
    let c: Config = serde_json::from_value(serde_json::json!({})).unwrap();
    assert_eq!(c, Config::default());
    assert_eq!(c.registers, [60, 80, 86, 87, 89, 74, 68, 1004]);
    assert_eq!(c.interval, Duration::from_secs(60));
    assert_eq!(c.timeout, Duration::from_secs(2));
    assert_eq!(c.retries, 2);
    assert!(c.validate().is_empty());
    assert_eq!(Config::default().build(meter()).name(), "kamstrup");
}

#[test]
fn config_reads_every_key() {
    let c: Config = serde_json::from_value(serde_json::json!({
        "registers": [60, 266, 1003],
        "interval": "1h",
        "timeout": "1500ms",
        "retries": 0
    }))
    .unwrap();
    assert_eq!(c.registers, [60, 266, 1003]);
    assert_eq!(c.interval, Duration::from_secs(3600));
    assert_eq!(c.timeout, Duration::from_millis(1500));
    assert_eq!(c.retries, 0);
    assert!(c.validate().is_empty());
}

#[test]
fn config_rejects_unknown_keys_and_impossible_values() {
    let e = serde_json::from_value::<Config>(serde_json::json!({ "key": "00" })).unwrap_err();
    assert!(e.to_string().contains("unknown field `key`"), "{e}");
    assert!(serde_json::from_value::<Config>(serde_json::json!({ "registers": [70000] })).is_err());
    assert!(serde_json::from_value::<Config>(serde_json::json!({ "interval": "soon" })).is_err());

    let c = Config {
        registers: vec![],
        interval: Duration::ZERO,
        timeout: Duration::ZERO,
        retries: 11,
    };
    let keys: Vec<String> = c.validate().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["registers", "interval", "timeout", "retries"]);

    let c = Config {
        registers: vec![60, 68, 60],
        interval: Duration::from_secs(2),
        timeout: Duration::from_secs(2),
        ..Config::default()
    };
    assert_eq!(
        c.validate(),
        [
            (
                "registers".to_string(),
                "register 60 is listed twice".to_string()
            ),
            (
                "timeout".to_string(),
                "must be shorter than interval (2s)".to_string()
            ),
        ]
    );
}

#[test]
fn the_line_is_1200_baud_8n2() {
    assert_eq!(LINE.baud, 1200);
    assert_eq!(LINE.parity, Parity::None);
    assert_eq!(LINE.data_bits, 8);
    assert_eq!(LINE.stop_bits, 2);
}
