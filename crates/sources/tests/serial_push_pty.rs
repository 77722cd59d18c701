//! The push protocols end to end over pseudo-terminals. A simulated meter writes the real
//! captures copied into `crates/proto/{mbus,hdlc,dsmr}/vectors/` into the master side of a pty:
//! segment by segment with the pauses of the real meters (EVN's 160 ms between the two M-Bus
//! frames of a telegram), each segment in small chunks, with line noise between telegrams. The
//! gateway side is a real source: a source table parsed by `SourceConfig::from_raw` and run by
//! `SourceConfig::run`, so the serial transport opens the device path with the protocol's line
//! settings and publishes on a `Bus`.
//!
//! Every telegram must come out as one reading with the values its vector's JSON publishes, in
//! order, and as soon as it is complete: the meter waits for each reading before it sends the
//! next telegram, so a decoder that held a frame back until more bytes came would hang (and
//! fail on the guard). Noise between M-Bus and HDLC frames is one `framing` error per run;
//! DSMR skips it silently (as `dsmr` documents).
//!
//! The device path the source opens is a symlink to the pty's slave, like
//! `/dev/serial/by-id/…`: unplugging closes the pty and removes the link; plugging in makes a
//! new pty and points the link at it, as udev does for a USB adapter.
//!
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
use tokio::task::JoinHandle;
use tokio_serial::{SerialPort, SerialStream};
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
// The serial port and the source.

/// A serial adapter that can be unplugged: a pty pair whose slave is reached through a stable
/// symlink, the path the source is configured with.
struct Port {
    _dir: tempfile::TempDir,
    link: PathBuf,
    /// (master: the meter's end, slave: held so the pty stays open between the source's opens).
    pty: Option<(SerialStream, SerialStream)>,
}

impl Port {
    /// A port that is not plugged in yet.
    fn absent() -> Port {
        let dir = tempfile::Builder::new()
            .prefix("serial-")
            .tempdir()
            .unwrap();
        let link = dir.path().join("ttyUSB0");
        Port {
            _dir: dir,
            link,
            pty: None,
        }
    }

    fn plugged() -> Port {
        let mut p = Port::absent();
        p.plug();
        p
    }

    fn path(&self) -> String {
        self.link.to_str().unwrap().to_string()
    }

    /// A new pty, reachable at the link.
    fn plug(&mut self) {
        assert!(self.pty.is_none(), "already plugged in");
        let (master, slave) = SerialStream::pair().expect("a pty pair");
        let device = slave.name().expect("the pty's device path");
        std::os::unix::fs::symlink(device, &self.link).unwrap();
        self.pty = Some((master, slave));
    }

    /// The adapter is pulled: the link goes away and the pty closes, so the source's reads
    /// fail and the path cannot be opened.
    fn unplug(&mut self) {
        std::fs::remove_file(&self.link).unwrap();
        self.pty = None;
    }

    /// The meter's end of the plugged-in pty.
    fn meter(&mut self, seed: u64) -> Meter<&mut SerialStream> {
        let (master, _) = self.pty.as_mut().expect("plugged in");
        Meter::new(master, seed)
    }
}

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
// M-Bus (Netz NÖ, TINETZ).

fn mbus_captures() -> Vec<Capture> {
    [
        // The EVN Kaifa frame pair (68 FA FA 68 + 68 14 14 68).
        "evn-netznoe-kaifa-ma309-real",
        // The Sagemcom T210-D frame whose L byte overflowed (68 01 01 68, 257 bytes).
        "evn-netznoe-sagemcom-t210d-lfield-0101",
        // TINETZ: 68 FA FA 68 + 68 26 26 68, SC 0x21, nested structures.
        "tinetz-doc-kaifa-ma309",
        "evn-netznoe-doc-kaifa-ma309",
        "evn-netznoe-sagemcom-t210d-1",
        "kaifa-ma309-amsreader-gh905",
    ]
    .iter()
    .map(|n| Capture::mbus(n))
    .collect()
}

fn mbus_source(port: &Port, captures: &[Capture]) -> Source {
    let (keys, meters) = per_title(captures);
    Source::start(
        "netz-noe",
        json!({
            "protocol": "mbus-dlms",
            "serial": port.path(),
            "keys": keys,
            "meters": meters,
        }),
    )
}

/// M-Bus readings: named after their capture, decrypted without a tag to verify.
fn mbus_reading(c: &Capture, r: &Reading) {
    assert_eq!(r.meter.as_str(), c.name);
    assert_eq!(r.protocol, "mbus-dlms");
    assert_eq!(r.authenticated, Some(false), "{}", c.name);
}

#[tokio::test]
async fn mbus_telegrams_from_a_pty_decode_in_order_with_noise_counted_as_framing_errors() {
    let captures = mbus_captures();
    let mut port = Port::plugged();
    let mut source = mbus_source(&port, &captures);
    source.until_connected(1).await;

    let mut meter = port.meter(0x6A09_E667_F3BC_C909);
    let all: Vec<&Capture> = captures.iter().chain(&captures[..2]).collect();
    let compared = stream(
        &mut meter,
        &mut source,
        &all,
        MBUS_SEGMENT_GAP,
        Some(&[0x68]),
        mbus_reading,
    )
    .await;
    assert!(compared >= 90, "only {compared} values compared");
    let sent = meter.sent;
    source.until_received(sent).await;

    // One framing error per noise run, nothing else lost or rejected.
    assert_eq!(source.errors(), [(Stage::Framing, all.len() as u64)]);
    assert_eq!(source.stats.readings.load(Ordering::Relaxed), 8);
    assert_eq!(source.stats.bytes.load(Ordering::Relaxed), sent);
    assert_eq!(source.connects(), 1);
    assert_eq!(source.stats.state(), SourceState::Running);
    source.stop().await;
}

#[tokio::test]
async fn an_unplugged_mbus_adapter_loses_only_the_cut_telegram_and_is_reopened_with_backoff() {
    let captures = mbus_captures();
    let mut port = Port::plugged();
    let path = port.path();
    let mut source = mbus_source(&port, &captures);
    source.until_connected(1).await;

    let mut meter = port.meter(0xBB67_AE85_84CA_A73B);
    stream(
        &mut meter,
        &mut source,
        &[&captures[0], &captures[1]],
        MBUS_SEGMENT_GAP,
        None,
        mbus_reading,
    )
    .await;

    // The adapter is pulled in the middle of the first frame of the next telegram, once the
    // source has read the bytes that made it through.
    let cut = &captures[2].segments[0];
    meter.write(&cut[..cut.len() / 2]).await;
    let sent = meter.sent;
    source.until_received(sent).await;
    assert!(source.errors().is_empty());
    port.unplug();

    // The cut frame is counted; the source keeps trying the missing port with backoff.
    source
        .until("a reopen failed for the missing port", |s| {
            s.state() == SourceState::Backoff
                && s.last_error
                    .lock()
                    .unwrap()
                    .as_deref()
                    .is_some_and(|e| e.contains(&path))
        })
        .await;
    assert_eq!(source.errors(), [(Stage::Framing, 1)], "the cut frame");
    assert_eq!(source.connects(), 1);

    // Plugged in again: reopened by itself; the frames after it decode.
    port.plug();
    source.until_connected(2).await;
    assert_eq!(source.last_error(), None);
    let mut meter = port.meter(0x3C6E_F372_FE94_F82B);
    let after: Vec<&Capture> = captures[2..].iter().collect();
    stream(
        &mut meter,
        &mut source,
        &after,
        MBUS_SEGMENT_GAP,
        None,
        mbus_reading,
    )
    .await;

    assert_eq!(source.stats.readings.load(Ordering::Relaxed), 6);
    assert_eq!(source.errors(), [(Stage::Framing, 1)]);
    assert_eq!(source.connects(), 2);
    source.stop().await;
}

// ---------------------------------------------------------------------------------------------
// HDLC (Wiener Netze IR, Netz Burgenland).

#[tokio::test]
async fn wiener_netze_hdlc_pushes_from_a_pty_decode_with_their_layout() {
    let captures: Vec<Capture> = [
        "wienernetze-iskra-am550-ir",
        "wienernetze-lg-e450-ir",
        "wienernetze-siemens-im350-ir",
    ]
    .iter()
    .map(|n| Capture::hdlc(n))
    .collect();
    let (keys, meters) = per_title(&captures);
    let mut port = Port::plugged();
    let mut source = Source::start(
        "wien",
        json!({
            "protocol": "hdlc-dlms",
            "serial": { "port": port.path(), "baud": 9600 },
            "layout": "wiener-netze",
            "keys": keys,
            "meters": meters,
        }),
    );
    source.until_connected(1).await;

    let mut meter = port.meter(0xA54F_F53A_5F1D_36F1);
    let all: Vec<&Capture> = captures.iter().chain(&captures).collect();
    let compared = stream(
        &mut meter,
        &mut source,
        &all,
        Duration::ZERO,
        Some(&[0x7E]),
        |c, r| {
            assert_eq!(r.meter.as_str(), c.name);
            assert_eq!(r.protocol, "hdlc-dlms");
            assert_eq!(r.authenticated, Some(false), "{}: no tag", c.name);
        },
    )
    .await;
    assert!(compared >= 50, "only {compared} values compared");
    source.until_received(meter.sent).await;

    assert_eq!(source.errors(), [(Stage::Framing, all.len() as u64)]);
    assert_eq!(source.stats.readings.load(Ordering::Relaxed), 6);
    assert_eq!(source.connects(), 1);
    source.stop().await;
}

fn burgenland() -> Vec<Capture> {
    ["netzburgenland-lg-e450-1", "netzburgenland-lg-e450-2"]
        .iter()
        .map(|n| Capture::hdlc(n))
        .collect()
}

fn burgenland_source(port: &Port, c: &Capture) -> Source {
    Source::start(
        "burgenland",
        json!({
            "protocol": "hdlc-dlms",
            "serial": { "port": port.path(), "baud": 2400 },
            "layout": "netz-burgenland",
            "key": c.field("key_hex"),
            "auth_key": c.field("auth_key_hex"),
        }),
    )
}

fn burgenland_reading(c: &Capture, r: &Reading) {
    assert_eq!(r.meter.as_str(), "burgenland");
    assert_eq!(r.authenticated, Some(true), "{}: tag verified", c.name);
}

#[tokio::test]
async fn netz_burgenland_pushes_from_a_pty_decode_and_authenticate() {
    let captures = burgenland();
    let mut port = Port::plugged();
    let mut source = burgenland_source(&port, &captures[0]);
    source.until_connected(1).await;

    let mut meter = port.meter(0x510E_527F_ADE6_82D1);
    let all: Vec<&Capture> = captures.iter().chain(&captures).collect();
    let compared = stream(
        &mut meter,
        &mut source,
        &all,
        Duration::ZERO,
        Some(&[0x7E]),
        burgenland_reading,
    )
    .await;
    assert!(compared >= 40, "only {compared} values compared");
    source.until_received(meter.sent).await;

    assert_eq!(source.errors(), [(Stage::Framing, 4)]);
    assert_eq!(source.stats.readings.load(Ordering::Relaxed), 4);
    source.stop().await;
}

#[tokio::test]
async fn a_serial_port_missing_at_start_is_opened_once_it_is_plugged_in() {
    let captures = burgenland();
    let mut port = Port::absent();
    let path = port.path();
    let mut source = burgenland_source(&port, &captures[0]);
    source
        .until("the source backs off", |s| {
            s.state() == SourceState::Backoff
        })
        .await;
    let error = source.last_error().expect("why the port did not open");
    assert!(error.contains(&path), "{error}");
    assert_eq!(source.connects(), 0);

    port.plug();
    source.until_connected(1).await;
    let mut meter = port.meter(0x9B05_688C_2B3E_6C1F);
    let all: Vec<&Capture> = captures.iter().collect();
    stream(
        &mut meter,
        &mut source,
        &all,
        Duration::ZERO,
        None,
        burgenland_reading,
    )
    .await;
    assert!(source.errors().is_empty());
    source.stop().await;
}

// ---------------------------------------------------------------------------------------------
// DSMR (plain, and Energienetze Steiermark's encrypted P1).

/// Noise for DSMR lines: no `/` (starts a telegram) and no `DB` (starts an encrypted frame).
const DSMR_FRAME_STARTS: &[u8] = b"/\xDB";

#[tokio::test]
async fn plain_dsmr_telegrams_from_a_pty_decode_line_by_line_and_noise_is_skipped() {
    let captures: Vec<Capture> = [
        "at-est5-sagemcom-t210dr-plain",
        "nl-dsmr5-iskra-am550-two-mbus",
        "be-fluvius-emucs-171",
    ]
    .iter()
    .map(|n| Capture::dsmr_plain(n))
    .collect();
    let mut port = Port::plugged();
    let mut source = Source::start("p1", json!({ "protocol": "dsmr", "serial": port.path() }));
    source.until_connected(1).await;

    let mut meter = port.meter(0x1F83_D9AB_FB41_BD6B);
    let all: Vec<&Capture> = captures.iter().chain(&captures).collect();
    let compared = stream(
        &mut meter,
        &mut source,
        &all,
        Duration::from_millis(2),
        Some(DSMR_FRAME_STARTS),
        |c, r| {
            assert_eq!(r.meter.as_str(), "p1", "{}", c.name);
            assert_eq!(r.protocol, "dsmr");
            assert_eq!(r.authenticated, None, "{}: plain", c.name);
        },
    )
    .await;
    assert!(compared >= 100, "only {compared} values compared");
    source.until_received(meter.sent).await;

    assert!(
        source.errors().is_empty(),
        "noise between telegrams is skipped: {:?}",
        source.errors()
    );
    assert_eq!(source.stats.readings.load(Ordering::Relaxed), 6);
    source.stop().await;
}

#[tokio::test]
async fn encrypted_steiermark_p1_frames_from_a_pty_decrypt_and_decode() {
    for (name, seed) in [
        (
            "est5-sagemcom-t210dr-energienetze-steiermark-1",
            0x5BE0_CD19_137E_2179,
        ),
        (
            "est5-sagemcom-t210dr-energienetze-steiermark-2",
            0xCBBB_9D5D_C105_9ED8,
        ),
    ] {
        let c = Capture::dsmr_encrypted(name);
        assert_eq!(c.meta["auth_key_hex"], Json::Null);
        let mut port = Port::plugged();
        let mut source = Source::start(
            "steiermark",
            json!({ "protocol": "dsmr", "serial": port.path(), "key": c.field("key_hex") }),
        );
        source.until_connected(1).await;

        // The meter pushes every second; three pushes with noise before each.
        let mut meter = port.meter(seed);
        let compared = stream(
            &mut meter,
            &mut source,
            &[&c, &c, &c],
            Duration::ZERO,
            Some(DSMR_FRAME_STARTS),
            |c, r| {
                assert_eq!(r.meter.as_str(), "steiermark");
                // Decrypted; no authentication key, so only the telegram's CRC guards it.
                assert_eq!(r.authenticated, Some(false), "{}", c.name);
            },
        )
        .await;
        assert!(
            compared >= 3 * 17,
            "{name}: only {compared} values compared"
        );
        source.until_received(meter.sent).await;
        assert!(source.errors().is_empty(), "{name}: {:?}", source.errors());
        assert_eq!(source.stats.readings.load(Ordering::Relaxed), 3);
        source.stop().await;
    }
}
