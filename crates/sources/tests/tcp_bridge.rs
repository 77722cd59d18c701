//! The push protocols end to end over a TCP serial bridge (ser2net, ESP-Link, a Moxa box). A
//! listener in the test plays the bridge: it accepts the source's connection and writes real
//! captures (copied into `crates/proto/{mbus,hdlc,dsmr}/vectors/`) segment by segment, in small
//! chunks, with line noise between telegrams, as the meter behind it sends them. The gateway
//! side is a real source (`tcp = "host:port"` parsed by `SourceConfig::from_raw`, run by
//! `SourceConfig::run`) publishing on a `Bus`.
//!
//! The bridge drops the connection in the middle of a frame and accepts the reconnect; a bridge
//! that is not listening yet is retried with backoff until it is. Every telegram the bridge
//! delivers whole must come out as one reading with the values its vector's JSON publishes,
//! in order, as soon as it is complete; the cut one is counted as a `framing` error; the
//! counters in `SourceStats` (connects, state, last error) show what happened.
//!
//! The capture, meter and source helpers are the same as in `serial_push_pty.rs`.
//! Waits are bounded only to fail instead of hanging; nothing asserts how long anything takes.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};
use smart_meter_core::stats::{SourceState, SourceStats};
use smart_meter_core::{Bus, Reading, Stage, Subscription};
use smart_meter_sources::{RawSource, SourceConfig};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long a wait may take before the test fails instead of hanging.
const GUARD: Duration = Duration::from_secs(25);

/// EVN/Netz NÖ meters pause about 160 ms between the two M-Bus frames of a telegram.
const MBUS_SEGMENT_GAP: Duration = Duration::from_millis(160);

// ---------------------------------------------------------------------------------------------
// Captures and their published values.

/// One capture: the bytes a meter sends for one telegram, cut where the meter pauses, and the
/// vector's metadata.
struct Capture {
    name: String,
    /// M-Bus or HDLC frames, DSMR lines, or one encrypted P1 frame.
    segments: Vec<Vec<u8>>,
    meta: Json,
}

fn vector_dir(link: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../proto")
        .join(link)
        .join("vectors")
}

fn read_json(path: &Path) -> Json {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn read_hex(path: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    hex::decode(text.split_whitespace().collect::<String>()).unwrap()
}

/// Cuts `wire` into pieces of `lengths`, which must cover it exactly.
fn split(name: &str, wire: &[u8], lengths: impl Iterator<Item = usize>) -> Vec<Vec<u8>> {
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
    fn mbus(name: &str) -> Capture {
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
    fn hdlc(name: &str) -> Capture {
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
    fn dsmr_plain(name: &str) -> Capture {
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
    fn dsmr_encrypted(name: &str) -> Capture {
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

    fn field(&self, field: &str) -> &str {
        self.meta[field]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no {field}", self.name))
    }
}

/// `keys` and `meters` tables by system title, so one source decodes several meters' captures
/// and names each reading after its capture.
fn per_title(captures: &[Capture]) -> (Json, Json) {
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
fn dsmr_clock(raw: &str) -> Option<String> {
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
fn compare(name: &str, key: &str, want: &Json, got: &Json) {
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
fn check(c: &Capture, r: &Reading) -> usize {
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
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Line noise of `len` bytes containing none of `avoid` (the bytes that start a frame).
    fn noise(&mut self, len: usize, avoid: &[u8]) -> Vec<u8> {
        (0..len)
            .map(|_| self.next() as u8)
            .map(|b| if avoid.contains(&b) { 0x55 } else { b })
            .collect()
    }
}

/// The meter's end of the line: writes bytes in chunks of 1 to 24 bytes, sometimes pausing a
/// millisecond between them, so the source sees frames in many pieces.
struct Meter<W> {
    line: W,
    rng: Rng,
    /// Bytes written so far.
    sent: u64,
}

impl<W: AsyncWrite + Unpin> Meter<W> {
    fn new(line: W, seed: u64) -> Self {
        Meter {
            line,
            rng: Rng(seed),
            sent: 0,
        }
    }

    async fn write(&mut self, bytes: &[u8]) {
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
    async fn telegram(&mut self, c: &Capture, gap: Duration) {
        for (i, segment) in c.segments.iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(gap).await;
            }
            self.write(segment).await;
        }
    }

    /// 5 to 40 bytes of noise without the bytes in `avoid`.
    async fn noise(&mut self, avoid: &[u8]) {
        let len = 5 + self.rng.below(36) as usize;
        let noise = self.rng.noise(len, avoid);
        self.write(&noise).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The source.

/// A running source and what it publishes.
struct Source {
    readings: Subscription,
    stats: Arc<SourceStats>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
    _bus: Bus,
}

impl Source {
    /// Validates the source table `table` named `name` and runs it.
    fn start(name: &str, table: Json) -> Source {
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

    async fn reading(&mut self) -> Arc<Reading> {
        tokio::time::timeout(GUARD, self.readings.next())
            .await
            .expect("a reading before the guard")
            .expect("the bus is open")
    }

    /// Waits until `done` holds for the source's counters.
    async fn until(&self, what: &str, done: impl Fn(&SourceStats) -> bool) {
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

    async fn until_connected(&self, n: u64) {
        self.until(&format!("open {n} time(s)"), |s| {
            s.connects.load(Ordering::Relaxed) >= n && s.state() == SourceState::Running
        })
        .await;
        assert_eq!(self.connects(), n);
    }

    /// Waits until the source has received `n` bytes in all.
    async fn until_received(&self, n: u64) {
        self.until(&format!("{n} bytes received"), |s| {
            s.bytes.load(Ordering::Relaxed) >= n
        })
        .await;
    }

    fn connects(&self) -> u64 {
        self.stats.connects.load(Ordering::Relaxed)
    }

    fn errors(&self) -> Vec<(Stage, u64)> {
        Stage::ALL
            .iter()
            .map(|s| (*s, self.stats.errors_at(*s)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    fn framing_errors(&self) -> u64 {
        self.stats.errors_at(Stage::Framing)
    }

    fn last_error(&self) -> Option<String> {
        self.stats.last_error.lock().unwrap().clone()
    }

    /// Stops the source; nothing beyond what the test took may have been published.
    async fn stop(mut self) -> Arc<SourceStats> {
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
}

/// Sends each capture after noise (when `noise_avoiding` is set), waits for its reading and
/// checks it. Returns how many values were compared.
async fn stream<W: AsyncWrite + Unpin>(
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

// ---------------------------------------------------------------------------------------------
// The bridge.

/// Accepts the source's next connection, as the bridge does.
async fn accept(listener: &TcpListener) -> TcpStream {
    let (conn, _) = tokio::time::timeout(GUARD, listener.accept())
        .await
        .expect("the source connects before the guard")
        .expect("accept");
    conn.set_nodelay(true).unwrap();
    conn
}

/// What one protocol's meter behind the bridge sends, and how its source is configured.
struct Line {
    /// The source's name (the meter id of its readings unless `meters` says otherwise).
    name: &'static str,
    /// The source table without the transport.
    table: Json,
    captures: Vec<Capture>,
    /// Pause between the segments of a telegram.
    gap: Duration,
    /// Noise before each telegram, without these bytes; `None`: no noise.
    noise: Option<&'static [u8]>,
    /// Whether each noise run is a framing error (M-Bus, HDLC) or skipped silently (DSMR).
    noise_is_an_error: bool,
    /// Checks a reading's meter id, protocol and authentication.
    reading: fn(&Capture, &Reading),
}

impl Line {
    fn start(&self, addr: &str) -> Source {
        let mut table = self.table.clone();
        table["tcp"] = json!(addr);
        Source::start(self.name, table)
    }
}

fn mbus_line() -> Line {
    let captures: Vec<Capture> = [
        "evn-netznoe-kaifa-ma309-real",
        "evn-netznoe-sagemcom-t210d-lfield-0101",
        "tinetz-doc-kaifa-ma309",
        "evn-netznoe-sagemcom-t210d-1",
    ]
    .iter()
    .map(|n| Capture::mbus(n))
    .collect();
    let (keys, meters) = per_title(&captures);
    Line {
        name: "netz-noe",
        table: json!({ "protocol": "mbus-dlms", "keys": keys, "meters": meters }),
        captures,
        gap: MBUS_SEGMENT_GAP,
        noise: Some(&[0x68]),
        noise_is_an_error: true,
        reading: |c, r| {
            assert_eq!(r.meter.as_str(), c.name);
            assert_eq!(r.protocol, "mbus-dlms");
            assert_eq!(r.authenticated, Some(false), "{}: no tag", c.name);
        },
    }
}

fn hdlc_line() -> Line {
    let captures: Vec<Capture> = [
        "wienernetze-iskra-am550-ir",
        "wienernetze-lg-e450-ir",
        "wienernetze-siemens-im350-ir",
    ]
    .iter()
    .map(|n| Capture::hdlc(n))
    .collect();
    let (keys, meters) = per_title(&captures);
    Line {
        name: "wien",
        table: json!({
            "protocol": "hdlc-dlms",
            "layout": "wiener-netze",
            "keys": keys,
            "meters": meters,
        }),
        captures,
        gap: Duration::ZERO,
        noise: Some(&[0x7E]),
        noise_is_an_error: true,
        reading: |c, r| {
            assert_eq!(r.meter.as_str(), c.name);
            assert_eq!(r.protocol, "hdlc-dlms");
            assert_eq!(r.authenticated, Some(false), "{}: no tag", c.name);
        },
    }
}

/// Noise for DSMR lines: no `/` (starts a telegram) and no `DB` (starts an encrypted frame).
const DSMR_FRAME_STARTS: &[u8] = b"/\xDB";

fn dsmr_plain_line() -> Line {
    Line {
        name: "p1",
        table: json!({ "protocol": "dsmr" }),
        captures: [
            "at-est5-sagemcom-t210dr-plain",
            "nl-dsmr5-iskra-am550-two-mbus",
            "se-kamstrup-omnia-p1",
        ]
        .iter()
        .map(|n| Capture::dsmr_plain(n))
        .collect(),
        gap: Duration::from_millis(2),
        noise: Some(DSMR_FRAME_STARTS),
        noise_is_an_error: false,
        reading: |c, r| {
            assert_eq!(r.meter.as_str(), "p1", "{}", c.name);
            assert_eq!(r.protocol, "dsmr");
            assert_eq!(r.authenticated, None, "{}: plain", c.name);
        },
    }
}

fn dsmr_encrypted_line() -> Line {
    let c = Capture::dsmr_encrypted("est5-sagemcom-t210dr-energienetze-steiermark-1");
    Line {
        name: "steiermark",
        table: json!({ "protocol": "dsmr", "key": c.field("key_hex") }),
        captures: vec![c],
        gap: Duration::ZERO,
        noise: Some(DSMR_FRAME_STARTS),
        noise_is_an_error: false,
        reading: |c, r| {
            assert_eq!(r.meter.as_str(), "steiermark");
            assert_eq!(r.protocol, "dsmr");
            assert_eq!(r.authenticated, Some(false), "{}: no auth key", c.name);
        },
    }
}

/// The bridge sends two telegrams, half of the first segment of a third, and closes the
/// connection; the source reconnects (after its backoff) and the bridge sends the third and
/// the rest on the new connection.
async fn bridge_drops_the_connection_mid_frame(line: Line, seed: u64) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mut source = line.start(&addr);
    let n = line.captures.len();
    let nth = |i: usize| &line.captures[i % n];
    let noise_errors = |telegrams: u64| if line.noise_is_an_error { telegrams } else { 0 };

    let mut bridge = Meter::new(accept(&listener).await, seed);
    source.until_connected(1).await;
    let first: Vec<&Capture> = (0..2).map(nth).collect();
    let mut compared = stream(
        &mut bridge,
        &mut source,
        &first,
        line.gap,
        line.noise,
        line.reading,
    )
    .await;
    let cut = &nth(2).segments[0];
    bridge.write(&cut[..cut.len() / 2]).await;
    let sent = bridge.sent;
    source.until_received(sent).await;
    assert_eq!(source.framing_errors(), noise_errors(2));
    drop(bridge);

    // The source notices, counts the cut frame and backs off before reconnecting.
    source
        .until("the source backs off after the close", |s| {
            s.state() == SourceState::Backoff
        })
        .await;
    assert_eq!(source.last_error().as_deref(), Some("closed"));
    assert_eq!(
        source.framing_errors(),
        noise_errors(2) + 1,
        "the cut frame"
    );

    let mut bridge = Meter::new(accept(&listener).await, seed.rotate_left(17));
    source.until_connected(2).await;
    assert_eq!(source.last_error(), None);
    let rest: Vec<&Capture> = (2..2 + n.max(2)).map(nth).collect();
    compared += stream(
        &mut bridge,
        &mut source,
        &rest,
        line.gap,
        line.noise,
        line.reading,
    )
    .await;
    source.until_received(sent + bridge.sent).await;

    let telegrams = (first.len() + rest.len()) as u64;
    // At least the nine values of a Wiener Netze push per telegram.
    assert!(compared >= 9 * telegrams as usize, "only {compared} values");
    assert_eq!(source.stats.readings.load(Ordering::Relaxed), telegrams);
    let framing = noise_errors(telegrams) + 1;
    assert_eq!(source.errors(), [(Stage::Framing, framing)]);
    assert_eq!(source.connects(), 2);
    assert_eq!(source.stats.state(), SourceState::Running);
    source.stop().await;
}

#[tokio::test]
async fn an_mbus_bridge_that_drops_the_connection_mid_frame_is_reconnected_and_later_telegrams_decode(
) {
    bridge_drops_the_connection_mid_frame(mbus_line(), 0x243F_6A88_85A3_08D3).await;
}

#[tokio::test]
async fn an_hdlc_bridge_that_drops_the_connection_mid_frame_is_reconnected_and_later_frames_decode()
{
    bridge_drops_the_connection_mid_frame(hdlc_line(), 0x1319_8A2E_0370_7344).await;
}

#[tokio::test]
async fn a_plain_p1_bridge_that_drops_the_connection_mid_telegram_is_reconnected() {
    bridge_drops_the_connection_mid_frame(dsmr_plain_line(), 0xA409_3822_299F_31D0).await;
}

#[tokio::test]
async fn an_encrypted_p1_bridge_that_drops_the_connection_mid_frame_is_reconnected() {
    bridge_drops_the_connection_mid_frame(dsmr_encrypted_line(), 0x082E_FA98_EC4E_6C89).await;
}

#[tokio::test]
async fn a_bridge_that_is_not_listening_yet_is_retried_with_backoff_until_it_is() {
    // A free port that nothing listens on (yet).
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let line = mbus_line();
    let mut source = line.start(&addr.to_string());
    source
        .until("the refused source backs off", |s| {
            s.state() == SourceState::Backoff
        })
        .await;
    let error = source.last_error().expect("why the connection failed");
    assert!(error.to_lowercase().contains("refused"), "{error}");
    assert_eq!(source.connects(), 0);

    // The bridge comes up: the next attempt connects, and everything it sends decodes.
    let listener = TcpListener::bind(addr).await.unwrap();
    let mut bridge = Meter::new(accept(&listener).await, 0x4528_21E6_38D0_1377);
    source.until_connected(1).await;
    assert_eq!(source.last_error(), None);
    let all: Vec<&Capture> = line.captures.iter().collect();
    stream(&mut bridge, &mut source, &all, line.gap, None, line.reading).await;
    assert!(source.errors().is_empty(), "{:?}", source.errors());
    assert_eq!(
        source.stats.readings.load(Ordering::Relaxed),
        all.len() as u64
    );
    assert_eq!(source.connects(), 1);
    source.stop().await;
}
