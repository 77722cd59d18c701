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

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{json, Value as Json};
use smart_meter_core::stats::SourceState;
use smart_meter_core::{Reading, Stage};
use tokio_serial::{SerialPort, SerialStream};

/// How long a wait may take before the test fails instead of hanging.
mod common;
use common::*;

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
