//! Full decode of one push, bytes to `Reading`: framing, reassembly, AES decryption, APDU and
//! A-XDR parsing, mapping. The target is at least 500,000 EVN telegrams per second on one core.
//!
//! `cargo bench -p smart-meter-sources --bench dlms_decode` prints the time per telegram and
//! the telegrams per second (criterion's `elem/s`), the stages of the EVN decode, and at the
//! end EVN telegrams per CPU-second of the benchmarking thread.
//!
//! Measured when the adapters were written (2-core build machine shared with other builds,
//! load average about 6): 420,000–480,000 EVN telegrams per CPU-second (2.1–2.4 µs each).
//! Callgrind counts about 27,500 instructions per telegram: A-XDR parsing of the
//! notification 44 %, freeing the parsed `Data` tree 17 %, mapping to the `Reading` 13 %,
//! `entries` 11 %, decryption 4 %, M-Bus framing and reassembly 3 %; malloc/free account for
//! about 30 % of all instructions, so fewer allocations in the DLMS data model are what would
//! lift it past 500,000.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, Criterion, Throughput};
use serde_json::Value;
use smart_meter_core::MeterId;
use smart_meter_sources::key::AesKey;
use smart_meter_sources::{hdlc_dlms, mbus_dlms};

fn vector(link: &str, name: &str) -> (Vec<u8>, Value) {
    let base = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../proto")
        .join(link)
        .join("vectors")
        .join(name);
    let hex: String = std::fs::read_to_string(base.with_extension("hex"))
        .unwrap()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let meta = std::fs::read_to_string(base.with_extension("json")).unwrap();
    (
        hex::decode(hex).unwrap(),
        serde_json::from_str(&meta).unwrap(),
    )
}

fn key(meta: &Value, field: &str) -> Option<AesKey> {
    meta[field].as_str().map(|k| AesKey::parse(k).unwrap())
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("full_decode");
    group.throughput(Throughput::Elements(1));

    let (wire, meta) = vector("mbus", "evn-netznoe-doc-kaifa-ma309");
    let config = mbus_dlms::Config {
        key: key(&meta, "key_hex"),
        auth_key: None,
        ..Default::default()
    };
    let mut p = config.build(MeterId::new("evn").unwrap());
    let mut out = Vec::with_capacity(4);
    group.bench_function("mbus-dlms/evn-netznoe-doc-kaifa-ma309", |b| {
        b.iter(|| {
            out.clear();
            p.on_bytes(black_box(&wire), &mut out);
            assert!(matches!(out.as_slice(), [Ok(_)]));
        })
    });

    for name in ["wienernetze-iskra-am550-ir", "ch-lg-e450-gbt-plain"] {
        let (wire, meta) = vector("hdlc", name);
        let config = hdlc_dlms::Config {
            key: key(&meta, "key_hex"),
            auth_key: key(&meta, "auth_key_hex"),
            layout: None,
            ..Default::default()
        };
        let mut p = config.build(MeterId::new("ir").unwrap());
        group.bench_function(format!("hdlc-dlms/{name}"), |b| {
            b.iter(|| {
                out.clear();
                p.on_bytes(black_box(&wire), &mut out);
                assert!(matches!(out.as_slice(), [Ok(_)]));
            })
        });
    }
    group.finish();
}

/// The stages of the EVN decode on their own, to see where the time goes.
fn stages(c: &mut Criterion) {
    let (wire, meta) = vector("mbus", "evn-netznoe-doc-kaifa-ma309");
    let k = key(&meta, "key_hex").unwrap();
    let keys = proto_dlms::Keys {
        encryption: k.bytes(),
        authentication: None,
    };
    let mut link = proto_mbus::Decoder::new();
    link.push(&wire);
    let apdu = link.pop().unwrap().unwrap().bytes.to_vec();
    let (plain, _) = proto_dlms::decrypt_glo(&apdu, &keys).unwrap();
    let push = proto_dlms::decode_apdu(&apdu, Some(&keys)).unwrap();
    let entries = proto_dlms::entries(&push.notification.body, None).unwrap();
    let meter = MeterId::new("evn").unwrap();

    let mut group = c.benchmark_group("evn_stage");
    group.bench_function("1-mbus-framing-reassembly", |b| {
        b.iter(|| {
            link.push(black_box(&wire));
            link.pop().unwrap().unwrap().bytes.len()
        })
    });
    group.bench_function("2-decrypt", |b| {
        b.iter(|| proto_dlms::decrypt_glo(black_box(&apdu), &keys).unwrap())
    });
    group.bench_function("3-parse-notification", |b| {
        b.iter(|| proto_dlms::parse_notification(black_box(&plain.plaintext)).unwrap())
    });
    group.bench_function("4-entries", |b| {
        b.iter(|| proto_dlms::entries(black_box(&push.notification.body), None).unwrap())
    });
    group.bench_function("5-map-to-reading", |b| {
        b.iter(|| mbus_dlms::map::reading(&meter, mbus_dlms::NAME, black_box(&push), &entries))
    });
    group.finish();
}

/// CPU time of this thread in nanoseconds (Linux `schedstat`), so that the rate below does
/// not depend on how busy the other cores' tenants keep the machine.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Decodes the EVN telegram for about a second and prints telegrams per CPU-second.
fn evn_rate() {
    let (wire, meta) = vector("mbus", "evn-netznoe-doc-kaifa-ma309");
    let config = mbus_dlms::Config {
        key: key(&meta, "key_hex"),
        auth_key: None,
        ..Default::default()
    };
    let mut p = config.build(MeterId::new("evn").unwrap());
    let mut out = Vec::with_capacity(4);
    let n = 200_000u32;
    let (Some(cpu0), wall0) = (thread_cpu_ns(), std::time::Instant::now()) else {
        return;
    };
    for _ in 0..n {
        out.clear();
        p.on_bytes(black_box(&wire), &mut out);
        assert!(matches!(out.as_slice(), [Ok(_)]));
    }
    let cpu = thread_cpu_ns().unwrap_or(cpu0).saturating_sub(cpu0).max(1) as f64 / 1e9;
    let wall = wall0.elapsed().as_secs_f64();
    println!(
        "mbus-dlms EVN telegram, full decode: {n} telegrams in {cpu:.3} s CPU ({wall:.3} s wall): \
         {:.0} telegrams per CPU-second, {:.2} µs each",
        f64::from(n) / cpu,
        cpu * 1e6 / f64::from(n)
    );
}

criterion_group!(benches, decode, stages);

fn main() {
    benches();
    evn_rate();
    Criterion::default().configure_from_args().final_summary();
}
