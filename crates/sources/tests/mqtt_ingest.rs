//! The raw-frame MQTT source against a real Mosquitto.
//!
//! Transport behaviour (hex and binary payloads, per-topic decoders, shared subscriptions,
//! broker restarts, frames queued while the gateway is away) is tested with `Lines`, a tiny
//! protocol defined here whose frames are decimal numbers ending in `\n`. Real frames go
//! through the `dsmr` adapter: an encrypted T210-D-r capture as hex, the way ESP8266 boxes
//! forward them, compared with the vector's published expectations.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use smart_meter_core::stats::{SourceState, SourceStats};
use smart_meter_core::{
    Bus, FrameError, Key, MeterId, Reading, Sample, Stage, Subscription, Value,
};
use smart_meter_sources::mqtt_ingest::{self, Config};
use smart_meter_sources::protocol::{MeterProtocol, Output};
use smart_meter_sources::transport::Sink;
use smart_meter_testkit::{publish, publish_many, Mosquitto};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

/// Frames are decimal numbers terminated by `\n`; anything else up to `\n` is a framing error.
struct Lines {
    meter: MeterId,
    buf: Vec<u8>,
}

impl MeterProtocol for Lines {
    fn name(&self) -> &'static str {
        "test-lines"
    }

    fn on_bytes(&mut self, bytes: &[u8], out: &mut Output) {
        self.buf.extend_from_slice(bytes);
        while let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=pos).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]).to_string();
            match text.parse::<u64>() {
                Ok(n) => {
                    let mut r = Reading::new(self.meter.clone(), "test-lines");
                    r.samples
                        .push(Sample::text(Key::Named("n".into()), n.to_string()));
                    out.push(Ok(r));
                }
                Err(_) => out.push(Err(FrameError::new(
                    Stage::Framing,
                    format!("not a number: {text:?}"),
                ))),
            }
        }
    }
}

fn lines() -> Box<dyn MeterProtocol> {
    Box::new(Lines {
        meter: MeterId::new("box").unwrap(),
        buf: Vec::new(),
    })
}

struct Gateway {
    sub: Subscription,
    stats: Arc<SourceStats>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), String>>,
}

fn start(config: Config, name: &str, make: fn() -> Box<dyn MeterProtocol>) -> Gateway {
    let bus = Bus::new(10_000);
    let sub = bus.subscribe("test");
    let stats = Arc::new(SourceStats::default());
    let mut sink = Sink::new(name.to_string(), bus.publisher(), stats.clone());
    drop(bus);
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    let task = tokio::spawn(async move { mqtt_ingest::run(&config, make, &mut sink, &c).await });
    Gateway {
        sub,
        stats,
        cancel,
        task,
    }
}

impl Gateway {
    /// Waits until the subscription is acknowledged (the source is running).
    async fn running(&self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.stats.state() != SourceState::Running {
            assert!(
                tokio::time::Instant::now() < deadline,
                "source never subscribed"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Readings (numbers of `Lines`) until `n` arrived or the wait runs out.
    async fn numbers(&mut self, n: usize) -> Vec<u64> {
        let mut got = Vec::new();
        let _ = tokio::time::timeout(WAIT, async {
            while got.len() < n {
                match self.sub.next().await {
                    Some(r) => got.push(number(&r)),
                    None => break,
                }
            }
        })
        .await;
        got
    }

    /// Whatever readings are buffered now.
    fn drain(&mut self) -> Vec<Arc<Reading>> {
        let mut out = Vec::new();
        while let Ok(Some(r)) = self.sub.try_next() {
            out.push(r);
        }
        out
    }

    async fn stop(self) -> Arc<SourceStats> {
        self.cancel.cancel();
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("source did not stop")
            .unwrap()
            .unwrap();
        assert_eq!(self.stats.state(), SourceState::Ended);
        self.stats
    }
}

fn number(r: &Reading) -> u64 {
    match &r.samples[0].value {
        Value::Text(t) => t.parse().unwrap(),
        v => panic!("unexpected value {v:?}"),
    }
}

fn config(broker: &Mosquitto, topic: &str, client_id: &str) -> Config {
    let mut c = Config::new(broker.url(), topic);
    c.client_id = Some(client_id.to_string());
    c
}

#[tokio::test]
async fn hex_and_binary_payloads_are_decoded_per_topic() {
    let broker = Mosquitto::new();
    let url = broker.url();
    let mut gw = start(config(&broker, "boxes/+/raw", "ingest-hex"), "esp", lines);
    gw.running().await;
    // Hex as the ESP firmware sends it ("1\n"), hex with spaces, and raw bytes.
    publish(&url, "boxes/a/raw", b"310A", false).await;
    publish(&url, "boxes/a/raw", b"32 0a", false).await;
    publish(&url, "boxes/b/raw", b"3\n", false).await;
    // A frame split over two messages of one box, interleaved with another box's frame:
    // each topic has its own decoder, so neither is garbled.
    publish(&url, "boxes/a/raw", b"4", false).await;
    publish(&url, "boxes/b/raw", b"5\n", false).await;
    publish(&url, "boxes/a/raw", b"4\n", false).await;
    let got = gw.numbers(5).await;
    assert_eq!(got, [1, 2, 3, 5, 44]);
    // A bad frame is counted, the source carries on.
    publish(&url, "boxes/a/raw", b"oops\n", false).await;
    publish(&url, "boxes/a/raw", b"6\n", false).await;
    assert_eq!(gw.numbers(1).await, [6]);
    let stats = gw.stop().await;
    assert_eq!(stats.errors_at(Stage::Framing), 1);
    assert_eq!(stats.readings.load(Ordering::Relaxed), 6);
    assert_eq!(stats.connects.load(Ordering::Relaxed), 1);
    assert!(stats.bytes.load(Ordering::Relaxed) > 0);
}

#[tokio::test]
async fn mqtt5_gateways_split_a_shared_subscription_too() {
    let broker = Mosquitto::new();
    let url = broker.url();
    let mut gateways = Vec::new();
    for i in 0..2 {
        let mut c = config(&broker, "v5/frames", &format!("ingest-v5-{i}"));
        c.protocol_version = mqtt_ingest::ProtocolVersion::V5;
        c.shared_group = Some("v5group".into());
        let gw = start(c, &format!("v5-{i}"), lines);
        gw.running().await;
        gateways.push(gw);
    }
    let frames: Vec<Vec<u8>> = (0..20u64)
        .map(|n| hex_upper(format!("{n}\n").as_bytes()).into_bytes())
        .collect();
    let messages: Vec<(&str, &[u8])> = frames.iter().map(|f| ("v5/frames", f.as_slice())).collect();
    publish_many(&url, &messages, false).await;
    let mut all = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while all.len() < 20 && tokio::time::Instant::now() < deadline {
        for gw in gateways.iter_mut() {
            all.extend(gw.drain().iter().map(|r| number(r)));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    all.sort_unstable();
    assert_eq!(all, (0..20).collect::<Vec<u64>>());
    for gw in gateways {
        gw.stop().await;
    }
}

#[tokio::test]
async fn three_gateways_on_one_shared_subscription_process_each_frame_exactly_once() {
    let broker = Mosquitto::new();
    let url = broker.url();
    let mut gateways = Vec::new();
    for i in 0..3 {
        let mut c = config(&broker, "sensors/smartmeter", &format!("ingest-shared-{i}"));
        c.shared_group = Some("gateways".into());
        let gw = start(c, &format!("esp{i}"), lines);
        gw.running().await;
        gateways.push(gw);
    }
    let frames: Vec<Vec<u8>> = (0..300u64)
        .map(|n| hex_upper(format!("{n}\n").as_bytes()).into_bytes())
        .collect();
    let messages: Vec<(&str, &[u8])> = frames
        .iter()
        .map(|f| ("sensors/smartmeter", f.as_slice()))
        .collect();
    publish_many(&url, &messages, false).await;

    let mut per_gateway: Vec<Vec<u64>> = vec![Vec::new(); 3];
    let deadline = tokio::time::Instant::now() + WAIT;
    while per_gateway.iter().map(Vec::len).sum::<usize>() < 300
        && tokio::time::Instant::now() < deadline
    {
        for (i, gw) in gateways.iter_mut().enumerate() {
            per_gateway[i].extend(gw.drain().iter().map(|r| number(r)));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Let any duplicate show up before judging.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (i, gw) in gateways.iter_mut().enumerate() {
        per_gateway[i].extend(gw.drain().iter().map(|r| number(r)));
    }
    let all: Vec<u64> = per_gateway.iter().flatten().copied().collect();
    let unique: HashSet<u64> = all.iter().copied().collect();
    assert_eq!(all.len(), 300, "frames processed: {}", all.len());
    assert_eq!(unique, (0..300).collect::<HashSet<u64>>());
    for (i, got) in per_gateway.iter().enumerate() {
        assert!(!got.is_empty(), "gateway {i} got no share of the stream");
    }
    for gw in gateways {
        gw.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_sent_while_the_gateway_is_away_or_the_broker_restarts_are_not_lost() {
    let mut broker = Mosquitto::new();
    let url = broker.url();
    let mut gw = start(
        config(&broker, "sensors/smartmeter", "ingest-away"),
        "esp",
        lines,
    );
    gw.running().await;
    publish(&url, "sensors/smartmeter", b"310A", false).await;
    assert_eq!(gw.numbers(1).await, [1]);

    // The broker restarts: the subscription is renewed.
    broker.stop();
    broker.start();
    let connects = gw.stats.connects.load(Ordering::Relaxed);
    let deadline = tokio::time::Instant::now() + WAIT;
    while gw.stats.connects.load(Ordering::Relaxed) == connects {
        assert!(tokio::time::Instant::now() < deadline, "no reconnect");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gw.running().await;
    publish(&url, "sensors/smartmeter", b"320A", false).await;
    assert_eq!(gw.numbers(1).await, [2]);

    // The gateway is down for a while: its persistent session collects the frames.
    gw.stop().await;
    publish_many(
        &url,
        &[
            ("sensors/smartmeter", b"330A".as_slice()),
            ("sensors/smartmeter", b"340A".as_slice()),
        ],
        false,
    )
    .await;
    let mut gw = start(
        config(&broker, "sensors/smartmeter", "ingest-away"),
        "esp",
        lines,
    );
    assert_eq!(gw.numbers(2).await, [3, 4]);
    gw.stop().await;
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn dsmr_vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../proto/dsmr/vectors")
}

/// Compares a reading with a vector's published `expected` map: the same keys, and every
/// value and unit (DSMR writes `m3`, readings `m³`).
fn assert_matches(meta: &serde_json::Value, r: &Reading) {
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    let values = json["values"].as_object().unwrap();
    let expected = meta["expected"].as_object().unwrap();
    let got_keys: Vec<&String> = values.keys().collect();
    let mut want_keys: Vec<&String> = expected.keys().collect();
    let mut got_sorted = got_keys.clone();
    got_sorted.sort();
    want_keys.sort();
    assert_eq!(got_sorted, want_keys, "keys of {}", meta["name"]);
    for (key, want) in expected {
        let got = &values[key];
        match &want["unit"] {
            serde_json::Value::String(unit) => {
                let unit = if unit == "m3" { "m³" } else { unit.as_str() };
                assert_eq!(got["unit"], unit, "unit of {key}");
                assert_eq!(
                    got["value"].as_f64(),
                    want["value"].as_f64(),
                    "value of {key}"
                );
            }
            _ if key == "0.0.1.0.0.255" => {
                // The vector gives the raw YYMMDDhhmmssX; readings carry the ISO time with the
                // offset of the S (summer, +02:00) or W (winter, +01:00) flag.
                let raw = want["value"].as_str().unwrap();
                let d = |i: usize| &raw[i..i + 2];
                let offset = if raw.ends_with('S') {
                    "+02:00"
                } else {
                    "+01:00"
                };
                let iso = format!(
                    "20{}-{}-{}T{}:{}:{}{offset}",
                    d(0),
                    d(2),
                    d(4),
                    d(6),
                    d(8),
                    d(10)
                );
                assert_eq!(got["value"], iso.as_str(), "value of {key}");
            }
            _ => {
                assert_eq!(got["unit"], serde_json::Value::Null, "unit of {key}");
                assert_eq!(got["value"], want["value"], "value of {key}");
            }
        }
    }
}

fn t210_protocol() -> Box<dyn MeterProtocol> {
    let meta = t210_meta();
    let key = meta["key_hex"].as_str().unwrap();
    let config: smart_meter_sources::dsmr::Config =
        serde_json::from_value(serde_json::json!({ "key": key })).unwrap();
    config.build(MeterId::new("t210").unwrap())
}

fn t210_meta() -> serde_json::Value {
    let path = dsmr_vectors().join("encrypted/est5-sagemcom-t210dr-energienetze-steiermark-1.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn an_encrypted_p1_frame_forwarded_as_hex_decodes_to_the_published_values() {
    let broker = Mosquitto::new();
    let url = broker.url();
    let mut gw = start(
        config(&broker, "sensors/smartmeter", "ingest-t210"),
        "t210",
        t210_protocol,
    );
    gw.running().await;
    let hex = std::fs::read_to_string(
        dsmr_vectors().join("encrypted/est5-sagemcom-t210dr-energienetze-steiermark-1.hex"),
    )
    .unwrap();
    // As the box sends it: one upper-case hex string per burst, line breaks and all.
    publish(&url, "sensors/smartmeter", hex.as_bytes(), false).await;
    let r = tokio::time::timeout(WAIT, gw.sub.next())
        .await
        .expect("no reading")
        .unwrap();
    assert_eq!(r.meter.as_str(), "t210");
    assert_eq!(r.protocol, "dsmr");
    assert_eq!(r.authenticated, Some(false));
    assert_matches(&t210_meta(), &r);
    let stats = gw.stop().await;
    assert_eq!(stats.readings.load(Ordering::Relaxed), 1);
}

fn plain_dsmr() -> Box<dyn MeterProtocol> {
    smart_meter_sources::dsmr::Config::default().build(MeterId::new("p1").unwrap())
}

#[tokio::test]
async fn plain_telegrams_of_two_meters_arrive_as_text_on_their_own_topics() {
    let broker = Mosquitto::new();
    let url = broker.url();
    let mut gw = start(config(&broker, "p1/+", "ingest-plain"), "p1", plain_dsmr);
    gw.running().await;
    let names = ["at-est5-sagemcom-t210dr-plain", "nl-dsmr5-iskra-mt382"];
    let mut metas = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let dir = dsmr_vectors().join("plain");
        let telegram = std::fs::read(dir.join(format!("{name}.txt"))).unwrap();
        metas.push(
            serde_json::from_str::<serde_json::Value>(
                &std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap(),
            )
            .unwrap(),
        );
        publish(&url, &format!("p1/{i}"), &telegram, false).await;
    }
    for meta in &metas {
        let r = tokio::time::timeout(WAIT, gw.sub.next())
            .await
            .expect("no reading")
            .unwrap();
        assert_matches(meta, &r);
    }
    gw.stop().await;
}

fn mbus_vector(name: &str) -> (String, serde_json::Value) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../proto/mbus/vectors");
    let hex = std::fs::read_to_string(dir.join(format!("{name}.hex"))).unwrap();
    let meta = std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap();
    (hex, serde_json::from_str(&meta).unwrap())
}

/// Every OBIS value of the vector's `expected` map, compared numerically with the reading.
fn assert_mbus_values(meta: &serde_json::Value, r: &Reading) {
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    let expected = meta["expected"].as_object().unwrap();
    assert!(expected.len() >= 10);
    for (key, want) in expected {
        let got = &json["values"][key];
        assert_eq!(got["unit"], want["unit"], "{key}");
        assert_eq!(got["value"].as_f64(), want["value"].as_f64(), "{key}");
    }
}

fn two_evn_meters() -> Box<dyn MeterProtocol> {
    let (_, kaifa) = mbus_vector("evn-netznoe-doc-kaifa-ma309");
    let (_, t210) = mbus_vector("evn-netznoe-sagemcom-t210d-1");
    let title = |m: &serde_json::Value| m["system_title_hex"].as_str().unwrap().to_string();
    let key = |m: &serde_json::Value| m["key_hex"].as_str().unwrap().to_string();
    let config: smart_meter_sources::mbus_dlms::Config =
        serde_json::from_value(serde_json::json!({
            "keys": { title(&kaifa): key(&kaifa), title(&t210): key(&t210) },
            "meters": { title(&kaifa): "house", title(&t210): "garage" },
        }))
        .unwrap();
    assert!(config.validate().is_empty());
    config.build(MeterId::new("esp").unwrap())
}

#[tokio::test]
async fn one_gateway_serves_two_encrypted_meters_with_keys_chosen_by_system_title() {
    let broker = Mosquitto::new();
    let url = broker.url();
    let mut gw = start(
        config(&broker, "boxes/+/raw", "ingest-evn"),
        "esp",
        two_evn_meters,
    );
    gw.running().await;
    let (kaifa_hex, kaifa) = mbus_vector("evn-netznoe-doc-kaifa-ma309");
    let (t210_hex, t210) = mbus_vector("evn-netznoe-sagemcom-t210d-1");
    // Each box sends its burst (both M-Bus frames) as one upper-case hex string.
    let squash = |h: &str| -> String { h.split_whitespace().collect::<String>().to_uppercase() };
    publish(
        &url,
        "boxes/house/raw",
        squash(&kaifa_hex).as_bytes(),
        false,
    )
    .await;
    publish(
        &url,
        "boxes/garage/raw",
        squash(&t210_hex).as_bytes(),
        false,
    )
    .await;
    let mut got = Vec::new();
    for _ in 0..2 {
        let r = tokio::time::timeout(WAIT, gw.sub.next())
            .await
            .expect("no reading")
            .unwrap();
        got.push(r);
    }
    assert_eq!(got[0].meter.as_str(), "house");
    assert_mbus_values(&kaifa, &got[0]);
    assert_eq!(got[1].meter.as_str(), "garage");
    assert_mbus_values(&t210, &got[1]);
    let stats = gw.stop().await;
    assert_eq!(stats.readings.load(Ordering::Relaxed), 2);
    assert_eq!(stats.errors_at(Stage::Decryption), 0);
}
