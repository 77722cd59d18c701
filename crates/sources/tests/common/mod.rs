//! Shared by the end-to-end transport tests: the copied captures and their published values, a
//! simulated meter that writes them in small chunks with noise between telegrams, and a running
//! source observed through a bus subscription.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};
use smart_meter_core::stats::{SourceState, SourceStats};
use smart_meter_core::{Bus, Reading, Stage, Subscription};
use smart_meter_sources::{RawSource, SourceConfig};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const GUARD: Duration = Duration::from_secs(25);

/// EVN/Netz NÖ meters pause about 160 ms between the two M-Bus frames of a telegram.
pub const MBUS_SEGMENT_GAP: Duration = Duration::from_millis(160);

// ---------------------------------------------------------------------------------------------
// Captures and their published values.

/// One capture: the bytes a meter sends for one telegram, cut where the meter pauses, and the
/// vector's metadata.
pub struct Capture {
    pub name: String,
    /// M-Bus or HDLC frames, DSMR lines, or one encrypted P1 frame.
    pub segments: Vec<Vec<u8>>,
    pub meta: Json,
}

pub fn vector_dir(link: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../proto")
        .join(link)
        .join("vectors")
}

pub fn read_json(path: &Path) -> Json {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

pub fn read_hex(path: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    hex::decode(text.split_whitespace().collect::<String>()).unwrap()
}

/// Cuts `wire` into pieces of `lengths`, which must cover it exactly.
pub fn split(name: &str, wire: &[u8], lengths: impl Iterator<Item = usize>) -> Vec<Vec<u8>> {
    let mut rest = wire;
    let mut out = Vec::new();
    for n in lengths {
        assert!(n <= rest.len(), "{name}: frame of {n} bytes past the end");
        let (frame, tail) = rest.split_at(n);
        out.push(frame.to_vec());
        rest = tail;
    }
    assert!(
        rest.is_empty(),
        "{name}: the JSON's frames do not cover the capture"
    );
    out
}

impl Capture {
    /// An M-Bus capture, cut into its long frames (`68 L L 68 … CS 16`, L + 6 bytes). The JSON
    /// gives the real L of each frame: 257 for the Sagemcom T210-D frame whose L byte says 01.
    pub fn mbus(name: &str) -> Capture {
        let dir = vector_dir("mbus");
        let meta = read_json(&dir.join(format!("{name}.json")));
        let wire = read_hex(&dir.join(format!("{name}.hex")));
        let lengths = meta["framing"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["L"].as_u64().unwrap() as usize + 6);
        let segments = split(name, &wire, lengths);
        for s in &segments {
            assert_eq!((s[0], s[3], s[s.len() - 1]), (0x68, 0x68, 0x16), "{name}");
        }
        assert!(segments.len() >= 2, "{name}: a segmented telegram");
        Capture {
            name: name.to_string(),
            segments,
            meta,
        }
    }

    /// An HDLC capture, cut into its frames: the frame format field (`A0 67`) holds the length
    /// without the two flags in its low 11 bits.
    pub fn hdlc(name: &str) -> Capture {
        let dir = vector_dir("hdlc");
        let meta = read_json(&dir.join(format!("{name}.json")));
        let wire = read_hex(&dir.join(format!("{name}.hex")));
        let lengths = meta["framing"].as_array().unwrap().iter().map(|f| {
            let format = u16::from_str_radix(f["format"].as_str().unwrap(), 16).unwrap();
            usize::from(format & 0x07FF) + 2
        });
        let segments = split(name, &wire, lengths);
        for s in &segments {
            assert_eq!((s[0], s[s.len() - 1]), (0x7E, 0x7E), "{name}");
        }
        Capture {
            name: name.to_string(),
            segments,
            meta,
        }
    }

    /// A plain DSMR telegram, line by line.
    pub fn dsmr_plain(name: &str) -> Capture {
        let dir = vector_dir("dsmr").join("plain");
        let meta = read_json(&dir.join(format!("{name}.json")));
        let wire = std::fs::read(dir.join(format!("{name}.txt"))).unwrap();
        let segments: Vec<Vec<u8>> = wire
            .split_inclusive(|b| *b == b'\n')
            .map(<[u8]>::to_vec)
            .collect();
        assert!(segments.len() > 5, "{name}");
        Capture {
            name: name.to_string(),
            segments,
            meta,
        }
    }

    /// An encrypted P1 frame (a bare general-glo-ciphering APDU), sent in one go.
    pub fn dsmr_encrypted(name: &str) -> Capture {
        let dir = vector_dir("dsmr").join("encrypted");
        let meta = read_json(&dir.join(format!("{name}.json")));
        let wire = read_hex(&dir.join(format!("{name}.hex")));
        assert_eq!(wire[0], 0xDB, "{name}");
        Capture {
            name: name.to_string(),
            segments: vec![wire],
            meta,
        }
    }

    pub fn field(&self, field: &str) -> &str {
        self.meta[field]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no {field}", self.name))
    }
}

/// `keys` and `meters` tables by system title, so one source decodes several meters' captures
/// and names each reading after its capture.
pub fn per_title(captures: &[Capture]) -> (Json, Json) {
    let mut keys = serde_json::Map::new();
    let mut meters = serde_json::Map::new();
    for c in captures {
        let title = c.field("system_title_hex").to_string();
        keys.insert(title.clone(), json!(c.field("key_hex")));
        meters.insert(title, json!(c.name));
    }
    (Json::Object(keys), Json::Object(meters))
}

/// The DSMR clock `YYMMDDhhmmssX` as the ISO time of the reading (S: +02:00, W: +01:00).
pub fn dsmr_clock(raw: &str) -> Option<String> {
    let b = raw.as_bytes();
    if b.len() != 13 || !b[..12].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let offset = match b[12] {
        b'S' => "+02:00",
        b'W' => "+01:00",
        _ => return None,
    };
    let d = |i: usize| &raw[i..i + 2];
    Some(format!(
        "20{}-{}-{}T{}:{}:{}{offset}",
        d(0),
        d(2),
        d(4),
        d(6),
        d(8),
        d(10)
    ))
}

/// One published value (`{"value", "unit", …}` of the vector JSON) against the reading JSON's
/// entry for the same OBIS code.
pub fn compare(name: &str, key: &str, want: &Json, got: &Json) {
    assert!(got.is_object(), "{name}: {key} missing");
    let unit = want["unit"].as_str();
    match &want["value"] {
        Json::Number(n) => {
            let n = n.as_f64().unwrap();
            let (value, unit) = match unit {
                // Netz Burgenland's currents: the JSON publishes the raw hundredths of an
                // ampere (the frame has no scaler); the layout applies the scaler.
                Some(u) if u.contains("scaler not in frame") => (n / 100.0, u.split(' ').next()),
                Some("m3") => (n, Some("m³")),
                u => (n, u),
            };
            assert_eq!(got["value"].as_f64(), Some(value), "{name}: {key} {got}");
            assert_eq!(got["unit"].as_str(), unit, "{name}: {key} unit");
        }
        Json::String(want_text) => {
            assert_eq!(got["unit"], Json::Null, "{name}: {key} unit");
            let text = got["value"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: {key} {got}"));
            if let Some(iso) = dsmr_clock(want_text) {
                assert_eq!(text, iso, "{name}: {key}");
            } else if want_text.len() >= 19 && want_text.as_bytes()[10] == b'T' {
                // A COSEM date-time, published as the meter's local time; the reading adds
                // the UTC offset the meter sends (deviation −120 min = +02:00).
                assert!(
                    text.starts_with(&want_text[..19]),
                    "{name}: {key} {text} != {want_text}"
                );
                if let Some(dev) = want["deviation_min"].as_i64() {
                    let offset = -dev;
                    let sign = if offset < 0 { '-' } else { '+' };
                    let suffix = format!("{sign}{:02}:{:02}", offset.abs() / 60, offset.abs() % 60);
                    assert!(text.ends_with(&suffix), "{name}: {key} {text} not {suffix}");
                }
            } else {
                assert!(
                    text.eq_ignore_ascii_case(want_text),
                    "{name}: {key} {text:?} != {want_text:?}"
                );
            }
        }
        other => panic!("{name}: {key}: unexpected published value {other}"),
    }
}

/// Compares a reading, through its JSON as sinks see it, with every value its capture
/// publishes: the `expected` map, the `expected_unlabeled` entries that name an OBIS code (EVN
/// sends the clock and meter number without one) and the clock as the reading's meter time.
/// Returns how many values were compared.
pub fn check(c: &Capture, r: &Reading) -> usize {
    let json: Json = serde_json::from_str(&r.to_json()).unwrap();
    let values = &json["values"];
    let mut compared = 0;
    for (key, want) in c.meta["expected"].as_object().unwrap() {
        compare(&c.name, key, want, &values[key.as_str()]);
        compared += 1;
    }
    for e in c.meta["expected_unlabeled"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let key = e["meaning"].as_str().and_then(|m| m.split(' ').next());
        if let Some(key) = key.filter(|k| k.starts_with("0.0.")) {
            compare(&c.name, key, e, &values[key]);
            compared += 1;
        }
    }
    let meter_time = json["meter_time"].as_str();
    if let Some(clock) = c.meta["notification"]["date_time"]["value"].as_str() {
        let t = meter_time.unwrap_or_else(|| panic!("{}: no meter time", c.name));
        assert!(t.starts_with(&clock[..19]), "{}: {t} != {clock}", c.name);
    }
    let dsmr_time = c.meta["expected"]["0.0.1.0.0.255"]["value"]
        .as_str()
        .and_then(dsmr_clock);
    if let Some(iso) = dsmr_time {
        assert_eq!(meter_time, Some(iso.as_str()), "{}", c.name);
    }
    assert!(compared > 0, "{}: nothing to compare", c.name);
    compared
}

// ---------------------------------------------------------------------------------------------
// The simulated meter.

/// xorshift64: chunk sizes and noise, deterministic so failures reproduce.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Line noise of `len` bytes containing none of `avoid` (the bytes that start a frame).
    pub fn noise(&mut self, len: usize, avoid: &[u8]) -> Vec<u8> {
        (0..len)
            .map(|_| self.next() as u8)
            .map(|b| if avoid.contains(&b) { 0x55 } else { b })
            .collect()
    }
}

/// The meter's end of the line: writes bytes in chunks of 1 to 24 bytes, sometimes pausing a
/// millisecond between them, so the source sees frames in many pieces.
pub struct Meter<W> {
    pub line: W,
    pub rng: Rng,
    /// Bytes written so far.
    pub sent: u64,
}

impl<W: AsyncWrite + Unpin> Meter<W> {
    pub fn new(line: W, seed: u64) -> Self {
        Meter {
            line,
            rng: Rng(seed),
            sent: 0,
        }
    }

    pub async fn write(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = (1 + self.rng.below(24) as usize).min(rest.len());
            let (chunk, tail) = rest.split_at(n);
            self.line
                .write_all(chunk)
                .await
                .expect("the line takes bytes");
            self.line.flush().await.expect("the line flushes");
            self.sent += n as u64;
            rest = tail;
            if self.rng.below(3) == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            } else {
                tokio::task::yield_now().await;
            }
        }
    }

    /// One telegram, segment by segment with `gap` between segments.
    pub async fn telegram(&mut self, c: &Capture, gap: Duration) {
        for (i, segment) in c.segments.iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(gap).await;
            }
            self.write(segment).await;
        }
    }

    /// 5 to 40 bytes of noise without the bytes in `avoid`.
    pub async fn noise(&mut self, avoid: &[u8]) {
        let len = 5 + self.rng.below(36) as usize;
        let noise = self.rng.noise(len, avoid);
        self.write(&noise).await;
    }
}

/// A running source and what it publishes.
pub struct Source {
    pub readings: Subscription,
    pub stats: Arc<SourceStats>,
    pub cancel: CancellationToken,
    pub task: JoinHandle<()>,
    pub _bus: Bus,
}

impl Source {
    /// Validates the source table `table` named `name` and runs it.
    pub fn start(name: &str, table: Json) -> Source {
        let raw: RawSource = serde_json::from_value(table).unwrap();
        let config = SourceConfig::from_raw(name, raw, Path::new("."))
            .unwrap_or_else(|e| panic!("source {name}: {e:?}"));
        let bus = Bus::new(64);
        let readings = bus.subscribe("test");
        let stats = Arc::new(SourceStats::default());
        let cancel = CancellationToken::new();
        let task = tokio::spawn(config.run(bus.publisher(), stats.clone(), cancel.clone()));
        Source {
            readings,
            stats,
            cancel,
            task,
            _bus: bus,
        }
    }

    pub async fn reading(&mut self) -> Arc<Reading> {
        tokio::time::timeout(GUARD, self.readings.next())
            .await
            .expect("a reading before the guard")
            .expect("the bus is open")
    }

    /// Waits until `done` holds for the source's counters.
    pub async fn until(&self, what: &str, done: impl Fn(&SourceStats) -> bool) {
        let start = Instant::now();
        while !done(self.stats.as_ref()) {
            assert!(
                start.elapsed() < GUARD,
                "gave up waiting until {what}: state {:?}, {:?}",
                self.stats.state(),
                self.stats
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub async fn until_connected(&self, n: u64) {
        self.until(&format!("open {n} time(s)"), |s| {
            s.connects.load(Ordering::Relaxed) >= n && s.state() == SourceState::Running
        })
        .await;
        assert_eq!(self.connects(), n);
    }

    /// Waits until the source has received `n` bytes in all.
    pub async fn until_received(&self, n: u64) {
        self.until(&format!("{n} bytes received"), |s| {
            s.bytes.load(Ordering::Relaxed) >= n
        })
        .await;
    }

    pub fn connects(&self) -> u64 {
        self.stats.connects.load(Ordering::Relaxed)
    }

    pub fn errors(&self) -> Vec<(Stage, u64)> {
        Stage::ALL
            .iter()
            .map(|s| (*s, self.stats.errors_at(*s)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    pub fn last_error(&self) -> Option<String> {
        self.stats.last_error.lock().unwrap().clone()
    }

    /// Stops the source; nothing beyond what the test took may have been published.
    pub async fn stop(mut self) -> Arc<SourceStats> {
        self.cancel.cancel();
        tokio::time::timeout(GUARD, self.task)
            .await
            .expect("the source stops when cancelled")
            .unwrap();
        assert_eq!(self.stats.state(), SourceState::Ended);
        let extra = self.readings.try_next().ok().flatten();
        assert!(extra.is_none(), "an unexpected reading: {extra:?}");
        self.stats
    }

    pub fn framing_errors(&self) -> u64 {
        self.stats.errors_at(Stage::Framing)
    }
}

/// Sends each capture after noise (when `noise_avoiding` is set), waits for its reading and
/// checks it. Returns how many values were compared.
pub async fn stream<W: AsyncWrite + Unpin>(
    meter: &mut Meter<W>,
    source: &mut Source,
    captures: &[&Capture],
    gap: Duration,
    noise_avoiding: Option<&[u8]>,
    check_meter: impl Fn(&Capture, &Reading),
) -> usize {
    let mut compared = 0;
    for c in captures {
        if let Some(avoid) = noise_avoiding {
            meter.noise(avoid).await;
        }
        meter.telegram(c, gap).await;
        let r = source.reading().await;
        check_meter(c, &r);
        compared += check(c, &r);
    }
    compared
}
