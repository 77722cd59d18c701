//! Telegrams per CPU second for the full parse (CRC, grammar, every value as number and unit)
//! of each plain vector. Development aid: `cargo run --release --example timing`; under
//! `perf stat -e task-clock` the CPU time is independent of other load on the machine.
use std::hint::black_box;
use std::time::Instant;

use proto_dsmr::Telegram;

fn parse(bytes: &[u8]) -> usize {
    let telegram = Telegram::parse(bytes).unwrap();
    let mut n = 0;
    for object in telegram.objects() {
        black_box(object.value().unwrap().quantity());
        n += 1;
    }
    black_box(telegram.clock());
    n
}

fn main() {
    let n: u32 = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let mut files: Vec<_> = std::fs::read_dir("vectors/plain")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    let telegrams: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let t = Instant::now();
    for _ in 0..n {
        for bytes in &telegrams {
            black_box(parse(black_box(bytes)));
        }
    }
    let per = t.elapsed() / (n * telegrams.len() as u32);
    println!(
        "{} telegrams x {n}: {per:?} wall per telegram",
        telegrams.len()
    );
}
