//! Full decode per protocol, bytes to `Reading`, through the same adapters the gateway builds
//! for its sources: framing, reassembly, decryption, parsing and mapping, over every vector of
//! each protocol (keys from the vectors' JSON). One benchmark per vector with
//! `Throughput::Elements(1)`, so criterion's `elem/s` is frames (telegrams, pushes) per
//! second on one core; `decode_summary` prints one line per protocol with the mean over its
//! vectors, which `scripts/bench` copies into `docs/performance.md`.
//!
//! Kamstrup KMP is polled, so its adapter needs a conversation; here the response decoder of
//! `proto-kmp` runs on the captured responses instead.
//!
//! `cargo bench -p smart-meter --bench decode -- --warm-up-time 0.5 --measurement-time 1`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use criterion::{Criterion, Throughput};
use serde_json::Value;
use smart_meter_core::MeterId;
use smart_meter_sources::key::AesKey;
use smart_meter_sources::protocol::MeterProtocol;
use smart_meter_sources::{dsmr, hdlc_dlms, mbus_dlms};

fn proto_dir(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../proto")
        .join(p)
        .join("vectors")
}

/// (name, wire bytes, metadata) of every vector with extension `ext` in `dir`.
fn vectors(dir: &Path, ext: &str) -> Vec<(String, Vec<u8>, Value)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != ext) {
            continue;
        }
        let raw = std::fs::read(&p).unwrap();
        let wire = if ext == "hex" {
            let hex: String = String::from_utf8(raw)
                .unwrap()
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            hex::decode(hex).unwrap()
        } else {
            raw
        };
        let meta = std::fs::read_to_string(p.with_extension("json")).unwrap();
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        out.push((name, wire, serde_json::from_str(&meta).unwrap()));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn key(meta: &Value, field: &str) -> Option<AesKey> {
    meta[field].as_str().map(|k| AesKey::parse(k).unwrap())
}

/// (protocol, vector name, adapter, wire bytes).
type Case = (&'static str, String, Box<dyn MeterProtocol>, Vec<u8>);

/// An adapter for each vector of each protocol.
fn cases() -> Vec<Case> {
    let meter = || MeterId::new("bench").unwrap();
    let mut cases = Vec::new();
    for (name, wire, meta) in vectors(&proto_dir("mbus"), "hex") {
        let c = mbus_dlms::Config {
            key: key(&meta, "key_hex"),
            auth_key: key(&meta, "auth_key_hex"),
            ..mbus_dlms::Config::default()
        };
        cases.push(("mbus-dlms", name, c.build(meter()), wire));
    }
    for (name, wire, meta) in vectors(&proto_dir("hdlc"), "hex") {
        let c = hdlc_dlms::Config {
            key: key(&meta, "key_hex"),
            auth_key: key(&meta, "auth_key_hex"),
            layout: None,
            ..hdlc_dlms::Config::default()
        };
        cases.push(("hdlc-dlms", name, c.build(meter()), wire));
    }
    for (name, wire, _) in vectors(&proto_dir("dsmr").join("plain"), "txt") {
        cases.push(("dsmr", name, dsmr::Config::default().build(meter()), wire));
    }
    for (name, wire, meta) in vectors(&proto_dir("dsmr").join("encrypted"), "hex") {
        let c = dsmr::Config {
            key: key(&meta, "key_hex"),
            auth_key: key(&meta, "auth_key_hex"),
        };
        cases.push(("dsmr-encrypted", name, c.build(meter()), wire));
    }
    // Only vectors that decode to exactly one reading are timed; the rest are named.
    cases.retain_mut(|(proto, name, p, wire)| {
        let mut out = Vec::new();
        p.on_bytes(wire, &mut out);
        p.finish(&mut out);
        let ok = matches!(out.as_slice(), [Ok(_)]);
        if !ok {
            eprintln!(
                "decode bench: {proto}/{name} skipped: {} results, not one reading",
                out.len()
            );
        }
        p.reset();
        ok
    });
    cases
}

/// KMP response frames of the captured conversation (lines starting with `40`).
fn kmp_responses() -> Vec<Vec<u8>> {
    let dir = proto_dir("kmp");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "hex") {
            for line in std::fs::read_to_string(&p).unwrap().lines() {
                let line = line.trim();
                if line.starts_with("40") {
                    out.push(hex::decode(line).unwrap());
                }
            }
        }
    }
    out
}

fn decode_one(
    p: &mut dyn MeterProtocol,
    wire: &[u8],
    out: &mut smart_meter_sources::protocol::Output,
) {
    out.clear();
    p.on_bytes(black_box(wire), out);
    assert!(matches!(out.as_slice(), [Ok(_)]));
}

fn decode(c: &mut Criterion, cases: &mut [Case]) {
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(1));
    let mut out = Vec::with_capacity(4);
    for (proto, name, p, wire) in cases.iter_mut() {
        group.bench_function(format!("{proto}/{name}"), |b| {
            b.iter(|| decode_one(p.as_mut(), wire, &mut out))
        });
    }
    let responses = kmp_responses();
    for (i, r) in responses.iter().enumerate() {
        group.bench_function(format!("kmp/response-{i}"), |b| {
            b.iter(|| proto_kmp::Response::parse_bytes(black_box(r)).unwrap())
        });
    }
    group.finish();
}

/// Decodes each vector for about 0.2 s and prints frames per second per protocol (the mean
/// of its vectors' rates) and the slowest vector.
fn summary(cases: &mut [Case]) {
    let mut out = Vec::with_capacity(4);
    let mut rates: Vec<(&'static str, String, f64)> = Vec::new();
    for (proto, name, p, wire) in cases.iter_mut() {
        let t0 = Instant::now();
        let mut n = 0u64;
        while t0.elapsed().as_secs_f64() < 0.2 {
            for _ in 0..100 {
                decode_one(p.as_mut(), wire, &mut out);
            }
            n += 100;
        }
        rates.push((proto, name.clone(), n as f64 / t0.elapsed().as_secs_f64()));
    }
    let mut protos: Vec<&str> = rates.iter().map(|r| r.0).collect();
    protos.dedup();
    for proto in protos {
        let mine: Vec<&(&str, String, f64)> = rates.iter().filter(|r| r.0 == proto).collect();
        let mean = mine.iter().map(|r| r.2).sum::<f64>() / mine.len() as f64;
        let slowest = mine.iter().min_by(|a, b| a.2.total_cmp(&b.2)).unwrap();
        println!(
            "decode_summary {proto}: {} vectors, mean {:.0} frames/s, slowest {} {:.0} frames/s",
            mine.len(),
            mean,
            slowest.1,
            slowest.2
        );
    }
}

fn main() {
    let mut cases = cases();
    let mut c = Criterion::default().configure_from_args();
    decode(&mut c, &mut cases);
    summary(&mut cases);
    c.final_summary();
}
