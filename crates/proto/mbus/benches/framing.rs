//! Framing and reassembly throughput over every capture in `vectors/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use proto_mbus::Decoder;
use proto_stream::testing;
use std::hint::black_box;

fn framing(c: &mut Criterion) {
    let mut group = c.benchmark_group("mbus_decode");
    for testing::Vector { name, wire, .. } in
        testing::vectors(concat!(env!("CARGO_MANIFEST_DIR"), "/vectors"))
    {
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
