//! Decrypt + parse + entries over every vector (`cargo bench -p proto-dlms`).

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

#[path = "../tests/support/mod.rs"]
mod support;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use proto_dlms::{cosem, decode_apdu, Keys, Scratch};

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for v in support::load_all() {
        let apdu = v.apdu();
        let ek = v.key("key_hex").unwrap_or([0; 16]);
        let ak = v.key("auth_key_hex");
        group.throughput(Throughput::Bytes(apdu.len() as u64));
        let mut scratch = Scratch::new();
        group.bench_function(&v.name, |b| {
            b.iter(|| {
                let keys = Keys {
                    encryption: &ek,
                    authentication: ak.as_ref(),
                };
                let push =
                    decode_apdu(std::hint::black_box(&apdu), Some(&keys), &mut scratch).unwrap();
                cosem::entries(&push.notification.body, None).unwrap().len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
