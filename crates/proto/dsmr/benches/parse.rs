//! Telegram parse throughput over every plain vector: CRC check, line grammar, and every
//! object's value as number and unit (what an adapter does per telegram). Target: at least
//! 200,000 telegrams/s on one core. Also the framer over a stream of all vectors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use proto_dsmr::{Framer, Telegram};

fn vectors() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors/plain");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

/// Parses a telegram and touches every value: the work per telegram of the `dsmr` adapter.
fn parse(bytes: &[u8]) -> usize {
    let telegram = Telegram::parse(bytes).unwrap();
    let mut n = 0;
    for object in telegram.objects() {
        let value = object.value().unwrap();
        match value.quantity() {
            Some((number, unit)) => {
                black_box((number, unit));
            }
            None => {
                black_box(value.raw());
            }
        }
        n += 1;
    }
    black_box(telegram.clock());
    n
}

fn bench(c: &mut Criterion) {
    let all = vectors();
    let mut group = c.benchmark_group("telegram_parse");
    for (name, bytes) in &all {
        group.throughput(Throughput::Elements(1));
        group.bench_function(name.as_str(), |b| b.iter(|| parse(black_box(bytes))));
    }
    let total: usize = all.iter().map(|(_, b)| b.len()).sum();
    group.throughput(Throughput::Elements(all.len() as u64));
    group.bench_function("all_vectors", |b| {
        b.iter(|| all.iter().map(|(_, t)| parse(black_box(t))).sum::<usize>())
    });
    group.finish();

    let stream: Vec<u8> = all.iter().flat_map(|(_, b)| b.iter().copied()).collect();
    let mut group = c.benchmark_group("framer");
    group.throughput(Throughput::Bytes(total as u64));
    group.bench_function("all_vectors_in_256_byte_chunks", |b| {
        b.iter(|| {
            let mut framer = Framer::new();
            let mut frames = 0;
            for chunk in stream.chunks(256) {
                framer.feed(chunk, |_, f| {
                    black_box(f.unwrap());
                    frames += 1;
                });
            }
            frames
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
