//! The reading bus and the reading JSON, the two things every reading passes through on its way
//! from a source to the sinks.
//!
//! - `bus/fanout/N`: readings per second published and received by N subscriber tasks (1, 3,
//!   8) on a two-thread runtime, capacity 1024; each subscriber drains until the bus closes,
//!   so every reading is received N times (criterion's `elem/s` counts published readings).
//! - `reading/to_json`: the reading JSON of an EVN-like reading (meter clock, 11 values), as
//!   the `jsonl` and `mqtt` sinks write it.
//!
//! `cargo bench -p smart-meter-core --bench bus`; numbers go to `docs/performance.md` through
//! `scripts/bench`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use smart_meter_core::{Bus, Decimal, Key, MeterId, MeterTime, Obis, Reading, Sample, Unit};

/// An EVN push as the `mbus-dlms` adapter maps it: clock, 10 registers, meter number.
fn evn_reading() -> Reading {
    let mut r = Reading::new(MeterId::new("evn").expect("meter id"), "mbus-dlms");
    r.meter_time = MeterTime::new(2021, 9, 27, 9, 47, 15, None, Some(120));
    let n = |c, d, m: i128, e, u| {
        Sample::number(
            Key::Obis(Obis::new(1, 0, c, d, 0, 255)),
            Decimal::new(m, e),
            u,
        )
    };
    r.samples.push(n(1, 8, 12937, 0, Some(Unit::WH)));
    r.samples.push(n(2, 8, 0, 0, Some(Unit::WH)));
    r.samples.push(n(1, 7, 12, 0, Some(Unit::W)));
    r.samples.push(n(2, 7, 0, 0, Some(Unit::W)));
    r.samples.push(n(32, 7, 2337, -1, Some(Unit::V)));
    r.samples.push(n(52, 7, 0, -1, Some(Unit::V)));
    r.samples.push(n(72, 7, 0, -1, Some(Unit::V)));
    r.samples.push(n(31, 7, 5, -2, Some(Unit::A)));
    r.samples.push(n(51, 7, 0, -2, Some(Unit::A)));
    r.samples.push(n(71, 7, 0, -2, Some(Unit::A)));
    r.samples.push(n(13, 7, -819, -3, None));
    r.samples
        .push(Sample::text(Key::Obis(Obis::METER_NUMBER), "181220000009"));
    r
}

const BATCH: u64 = 10_000;

/// Publishes `BATCH` readings to `subscribers` draining tasks and waits until all have
/// received everything.
async fn fan_out(subscribers: usize, reading: &Reading) {
    let bus = Bus::new(1024);
    let mut tasks = Vec::new();
    for i in 0..subscribers {
        let mut sub = bus.subscribe(&format!("s{i}"));
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while let Some(r) = sub.next().await {
                black_box(&r);
                n += 1;
            }
            n
        }));
    }
    let publisher = bus.publisher();
    drop(bus);
    for k in 0..BATCH {
        publisher.publish(reading.clone());
        // A meter source yields after each chunk of bytes; so does this one, every 64.
        if k % 64 == 63 {
            tokio::task::yield_now().await;
        }
    }
    drop(publisher);
    for t in tasks {
        black_box(t.await.expect("subscriber"));
    }
}

fn bus(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("runtime");
    let reading = evn_reading();
    let mut group = c.benchmark_group("bus/fanout");
    group.throughput(Throughput::Elements(BATCH));
    for n in [1usize, 3, 8] {
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| rt.block_on(fan_out(n, &reading)))
        });
    }
    group.finish();
}

fn json(c: &mut Criterion) {
    let reading = evn_reading();
    let mut group = c.benchmark_group("reading");
    group.throughput(Throughput::Elements(1));
    group.bench_function("to_json", |b| b.iter(|| black_box(&reading).to_json()));
    group.finish();
}

criterion_group!(benches, bus, json);
criterion_main!(benches);
