//! Framing and reassembly throughput over every capture in `vectors/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use proto_mbus::Decoder;

fn vectors() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "hex"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let hex: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (name, hex::decode(hex).unwrap())
        })
        .collect();
    out.sort();
    out
}

fn framing(c: &mut Criterion) {
    let mut group = c.benchmark_group("mbus_decode");
    for (name, wire) in vectors() {
        group.throughput(Throughput::Bytes(wire.len() as u64));
        let mut d = Decoder::new();
        group.bench_function(name, |b| {
            b.iter(|| {
                d.push(black_box(&wire));
                let mut n = 0;
                while let Some(r) = d.pop() {
                    n += r.unwrap().bytes.len();
                }
                n
            })
        });
    }
    group.finish();
}

criterion_group!(benches, framing);
criterion_main!(benches);
