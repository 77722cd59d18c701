//! Line noise, telegrams cut short and telegrams with a corrupted byte between good ones, as a
//! flaky P1 cable delivers them, replayed from a capture file through the real gateway. Every
//! good telegram must become a reading (once, in order); every bad one must be counted at its
//! stage; the gateway must run to the end of the capture and exit cleanly.

use std::sync::atomic::Ordering;

use smart_meter_core::Stage;
use smart_meter_tests::dsmr::{indices, telegram};
use smart_meter_tests::gateway::Gateway;
use smart_meter_tests::{read_jsonl, replay_to_jsonl};

/// xorshift64*: a fixed, reproducible stream of pseudo-random numbers.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// `len` random bytes without any of `banned`.
    fn bytes(&mut self, len: usize, banned: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            let b = self.next() as u8;
            if !banned.contains(&b) {
                out.push(b);
            }
        }
        out
    }
}

/// What precedes good telegram `i` in the capture.
#[derive(Default)]
struct Counts {
    good: u64,
    noise: u64,
    cut: u64,
    false_start: u64,
    corrupt: u64,
}

fn capture(n: u64, rng: &mut Rng) -> (Vec<u8>, Counts) {
    let mut c = Counts::default();
    // The reader starts in the middle of a telegram: its tail comes first.
    let first = telegram(1_000_000);
    let mut out = first[first.len() / 3..].to_vec();
    for i in 0..n {
        match rng.below(8) {
            // Line noise between telegrams: any byte but `/` (which would start a telegram).
            0 => {
                let len = 1 + rng.below(300) as usize;
                out.extend(rng.bytes(len, b"/"));
                c.noise += 1;
            }
            // A telegram cut short (power dip, reader restart): the next `/` ends it.
            1 => {
                let t = telegram(2_000_000 + i);
                let at = 1 + rng.below(t.len() as u64 - 10) as usize;
                out.extend_from_slice(&t[..at]);
                c.cut += 1;
            }
            // A false start: a `/` in the noise, then noise without `!`.
            2 => {
                out.push(b'/');
                let len = rng.below(200) as usize;
                out.extend(rng.bytes(len, b"/!"));
                c.false_start += 1;
            }
            // A telegram with one digit of the long power failure counter changed: the CRC
            // catches it.
            3 => {
                let mut t = telegram(3_000_000 + i);
                let at = find(&t, b"0-0:96.7.9(0000") + 11;
                t[at] = if t[at] == b'9' { b'8' } else { b'9' };
                out.extend_from_slice(&t);
                c.corrupt += 1;
            }
            _ => {}
        }
        out.extend_from_slice(&telegram(i));
        c.good += 1;
    }
    (out, c)
}

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .expect("pattern in telegram")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noise_cut_and_corrupt_telegrams_cost_no_good_reading_and_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, counts) = capture(400, &mut Rng(0x5EED_CAFE));
    assert!(counts.noise > 10 && counts.cut > 10 && counts.false_start > 10 && counts.corrupt > 10);
    let out = replay_to_jsonl(dir.path(), 8192, "p1", "dsmr", "", &bytes);
    let gw = Gateway::start(dir.path(), "t").await;
    let src = gw.source("p1");
    let sink = gw.sink("out");
    // A finite replay: the gateway ends by itself, like `smart-meter run` exiting 0.
    gw.join()
        .await
        .expect("the replay runs to the end without error");

    let got = indices(&read_jsonl(&out));
    assert_eq!(got, (0..counts.good).collect::<Vec<_>>());
    assert_eq!(src.readings.load(Ordering::Relaxed), counts.good);
    assert_eq!(sink.delivered.load(Ordering::Relaxed), counts.good);
    assert_eq!(sink.lagged.load(Ordering::Relaxed), 0);
    assert_eq!(src.errors_at(Stage::Checksum), counts.corrupt);
    assert_eq!(
        src.errors_at(Stage::Framing),
        counts.cut + counts.false_start,
        "each cut telegram and false start is one framing error; noise is skipped silently"
    );
    assert_eq!(src.bytes.load(Ordering::Relaxed), bytes.len() as u64);
}

/// The EVN (Netz NÖ) Kaifa MA309 push of the M-Bus vectors: two M-Bus long frames (`68 FA FA
/// 68 …` and `68 14 14 68 …`), and the values it must decode to.
fn evn() -> (Vec<u8>, String, serde_json::Value) {
    let base =
        smart_meter_tests::repo().join("crates/proto/mbus/vectors/evn-netznoe-doc-kaifa-ma309");
    let hex: String = std::fs::read_to_string(base.with_extension("hex"))
        .unwrap()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(base.with_extension("json")).unwrap())
            .unwrap();
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    (bytes, meta["key_hex"].as_str().unwrap().to_string(), meta)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noise_and_broken_m_bus_frames_between_evn_pushes_cost_no_good_push() {
    let (push, key, meta) = evn();
    let second = find(&push[1..], &[0x68, 0x14, 0x14, 0x68]) + 1;
    let mut rng = Rng(0xE7A_0001);
    let mut bytes = push[second / 2..].to_vec(); // starts mid-frame
    let (mut good, mut corrupt, mut cut) = (0u64, 0u64, 0u64);
    for _ in 0..300 {
        match rng.below(6) {
            0 => {
                let len = 1 + rng.below(200) as usize;
                bytes.extend(rng.bytes(len, &[]));
            }
            // The first segment's checksum byte damaged: the push cannot be reassembled.
            1 => {
                let mut p = push.clone();
                p[second - 2] ^= 0x5A;
                bytes.extend_from_slice(&p);
                corrupt += 1;
            }
            // Only the first segment arrives (the second is lost on the line).
            2 => {
                bytes.extend_from_slice(&push[..second]);
                cut += 1;
            }
            _ => {}
        }
        bytes.extend_from_slice(&push);
        good += 1;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = replay_to_jsonl(
        dir.path(),
        8192,
        "evn",
        "mbus-dlms",
        &format!("key = \"{key}\"\n"),
        &bytes,
    );
    let gw = Gateway::start(dir.path(), "t").await;
    let src = gw.source("evn");
    gw.join()
        .await
        .expect("the replay runs to the end without error");

    let readings = read_jsonl(&out);
    assert_eq!(
        readings.len() as u64,
        good,
        "every intact push is a reading"
    );
    let expected = meta["expected"].as_object().unwrap();
    for r in &readings {
        for (obis, want) in expected {
            let got = &r["values"][obis]["value"];
            let same = match (got.as_f64(), want["value"].as_f64()) {
                (Some(a), Some(b)) => a == b,
                _ => got == &want["value"],
            };
            assert!(same, "{obis}: got {got}, want {}", want["value"]);
        }
    }
    let errors: u64 = Stage::ALL.iter().map(|s| src.errors_at(*s)).sum();
    assert!(
        src.errors_at(Stage::Checksum) >= corrupt,
        "each damaged segment is a checksum error: {} < {corrupt}",
        src.errors_at(Stage::Checksum)
    );
    assert!(
        errors >= corrupt + cut,
        "each broken push is counted: {errors} < {}",
        corrupt + cut
    );
}
