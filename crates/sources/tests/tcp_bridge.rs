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

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{json, Value as Json};
use smart_meter_core::stats::SourceState;
use smart_meter_core::{Reading, Stage};
use tokio::net::{TcpListener, TcpStream};

/// How long a wait may take before the test fails instead of hanging.
mod common;
use common::*;

// ---------------------------------------------------------------------------------------------
// The source.

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
