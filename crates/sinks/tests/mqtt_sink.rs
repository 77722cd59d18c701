//! The `mqtt` sink against a real Mosquitto: every format's topics and payloads, broker
//! outages, a gateway that starts before its broker, and the on-disk spool.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use smart_meter_core::stats::SinkStats;
use smart_meter_core::{
    Bus, Decimal, Key, MeterId, MeterTime, Obis, Publisher, Reading, Sample, Unit,
};
use smart_meter_sinks::mqtt::{self, Config, Format};
use smart_meter_sinks::mqtt_conn::ProtocolVersion;
use smart_meter_testkit::{Collector, Mosquitto, Received};

const WAIT: Duration = Duration::from_secs(30);

struct Sink {
    publisher: Publisher,
    stats: Arc<SinkStats>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

fn start(config: Config, name: &str) -> Sink {
    let bus = Bus::new(4096);
    let sub = bus.subscribe(name);
    let stats = Arc::new(SinkStats::new(sub.dropped_counter()));
    let publisher = bus.publisher();
    drop(bus);
    let task = tokio::spawn(mqtt::run(config, sub, stats.clone()));
    Sink {
        publisher,
        stats,
        task,
    }
}

impl Sink {
    /// Closes the bus and waits for the sink to flush and end.
    async fn finish(self) -> Arc<SinkStats> {
        drop(self.publisher);
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("sink did not end")
            .unwrap()
            .unwrap();
        self.stats
    }
}

fn obis(c: u8, d: u8) -> Key {
    Key::Obis(Obis::new(1, 0, c, d, 0, 255))
}

/// The Netz NÖ brochure frame's values (predecessors §2.6) with a fixed receive time.
fn brochure() -> Reading {
    let mut r = Reading::new(MeterId::new("evn").unwrap(), "mbus-dlms");
    r.received_at = UNIX_EPOCH + Duration::from_millis(1_632_728_835_400);
    r.meter_time = MeterTime::new(2021, 9, 27, 9, 47, 15, None, None);
    let n = |k, v: i128, e: i8, u: Option<Unit>| Sample::number(k, Decimal::new(v, e), u);
    r.samples = vec![
        n(obis(1, 8), 12937, 0, Some(Unit::WH)),
        n(obis(2, 8), 0, 0, Some(Unit::WH)),
        n(obis(1, 7), 0, 0, Some(Unit::W)),
        n(obis(2, 7), 0, 0, Some(Unit::W)),
        n(obis(32, 7), 2337, -1, Some(Unit::V)),
        n(obis(52, 7), 0, -1, Some(Unit::V)),
        n(obis(72, 7), 0, -1, Some(Unit::V)),
        n(obis(31, 7), 0, -2, Some(Unit::A)),
        n(obis(51, 7), 0, -2, Some(Unit::A)),
        n(obis(71, 7), 0, -2, Some(Unit::A)),
        n(obis(13, 7), 1000, -3, None),
        Sample::text(Key::Obis(Obis::METER_NUMBER), "181220000009"),
    ];
    r
}

/// A reading that carries its sequence number as the import energy.
fn numbered(n: usize) -> Reading {
    let mut r = Reading::new(MeterId::new("seq").unwrap(), "test");
    r.samples.push(Sample::number(
        obis(1, 8),
        Decimal::from_int(n as i128),
        Some(Unit::WH),
    ));
    r
}

fn seq_of(m: &Received) -> usize {
    let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
    v["values"]["1.0.1.8.0.255"]["value"].as_u64().unwrap() as usize
}

fn texts(msgs: &[Received]) -> Vec<(String, String)> {
    msgs.iter().map(|m| (m.topic.clone(), m.text())).collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn config(broker: &Mosquitto, format: Format) -> Config {
    let mut c = Config::new(broker.url());
    c.format = format;
    c
}

/// Runs one reading through a sink with `config` and returns what arrived under `filter`
/// (after the retained `online` status), once `expected` messages are there, plus the status.
async fn one_reading(
    broker: &Mosquitto,
    config: Config,
    name: &str,
    filter: &str,
    expected: usize,
) -> (Vec<Received>, Vec<Received>) {
    let collector = Collector::start(&broker.url(), &format!("c-{name}"), &[filter]).await;
    let status = config.status_topic().unwrap();
    let status_collector =
        Collector::start(&broker.url(), &format!("s-{name}"), &[status.as_str()]).await;
    let sink = start(config, name);
    assert!(
        status_collector
            .wait_until(WAIT, |m| m.iter().any(|r| r.text() == "online"))
            .await
    );
    sink.publisher.publish(brochure());
    assert!(
        collector.wait_count(expected, WAIT).await,
        "got {:?}",
        texts(&collector.messages())
    );
    let stats = sink.finish().await;
    assert_eq!(stats.delivered.load(Ordering::Relaxed), 1);
    assert_eq!(stats.dropped.load(Ordering::Relaxed), 0);
    assert!(
        status_collector
            .wait_until(WAIT, |m| m.last().is_some_and(|r| r.text() == "offline"))
            .await
    );
    // Nothing more than expected arrives.
    tokio::time::sleep(Duration::from_millis(200)).await;
    (collector.messages(), status_collector.messages())
}

#[tokio::test]
async fn json_format_publishes_the_reading_json_on_base_slash_meter() {
    let broker = Mosquitto::new();
    let mut c = config(&broker, Format::Json);
    c.net_power = false;
    let (m, status) = one_reading(&broker, c, "json", "smart-meter/evn", 1).await;
    assert_eq!(
        texts(&m),
        pairs(&[(
            "smart-meter/evn",
            "{\"meter\":\"evn\",\"protocol\":\"mbus-dlms\",\"received_at\":\"2021-09-27T07:47:15.400Z\",\
             \"meter_time\":\"2021-09-27T09:47:15\",\"values\":{\
             \"1.0.1.8.0.255\":{\"value\":12937,\"unit\":\"Wh\"},\
             \"1.0.2.8.0.255\":{\"value\":0,\"unit\":\"Wh\"},\
             \"1.0.1.7.0.255\":{\"value\":0,\"unit\":\"W\"},\
             \"1.0.2.7.0.255\":{\"value\":0,\"unit\":\"W\"},\
             \"1.0.32.7.0.255\":{\"value\":233.7,\"unit\":\"V\"},\
             \"1.0.52.7.0.255\":{\"value\":0,\"unit\":\"V\"},\
             \"1.0.72.7.0.255\":{\"value\":0,\"unit\":\"V\"},\
             \"1.0.31.7.0.255\":{\"value\":0,\"unit\":\"A\"},\
             \"1.0.51.7.0.255\":{\"value\":0,\"unit\":\"A\"},\
             \"1.0.71.7.0.255\":{\"value\":0,\"unit\":\"A\"},\
             \"1.0.13.7.0.255\":{\"value\":1,\"unit\":null},\
             \"0.0.96.1.0.255\":{\"value\":\"181220000009\",\"unit\":null}}}"
        )])
    );
    assert!(!m[0].retain);
    let s: Vec<(String, String, bool)> = status
        .iter()
        .map(|r| (r.topic.clone(), r.text(), r.retain))
        .collect();
    assert_eq!(
        s.last().unwrap(),
        &(
            "smart-meter/status".to_string(),
            "offline".to_string(),
            false
        )
    );
    assert!(s.iter().any(|(_, p, _)| p == "online"));
}

#[tokio::test]
async fn per_value_format_publishes_one_topic_per_value_with_net_power() {
    let broker = Mosquitto::new();
    let mut c = config(&broker, Format::PerValue);
    c.base_topic = Some("home/power".into());
    c.retain = true;
    let (m, _) = one_reading(&broker, c, "pv", "home/power/#", 13).await;
    let values: Vec<Received> = m
        .into_iter()
        .filter(|r| r.topic != "home/power/status")
        .collect();
    assert_eq!(
        texts(&values),
        pairs(&[
            ("home/power/evn/1.0.1.8.0.255", "12937"),
            ("home/power/evn/1.0.2.8.0.255", "0"),
            ("home/power/evn/1.0.1.7.0.255", "0"),
            ("home/power/evn/1.0.2.7.0.255", "0"),
            ("home/power/evn/1.0.32.7.0.255", "233.7"),
            ("home/power/evn/1.0.52.7.0.255", "0"),
            ("home/power/evn/1.0.72.7.0.255", "0"),
            ("home/power/evn/1.0.31.7.0.255", "0"),
            ("home/power/evn/1.0.51.7.0.255", "0"),
            ("home/power/evn/1.0.71.7.0.255", "0"),
            ("home/power/evn/1.0.13.7.0.255", "1"),
            ("home/power/evn/0.0.96.1.0.255", "181220000009"),
            ("home/power/evn/1.0.16.7.0.255", "0"),
        ])
    );
    // Retained: a late subscriber still gets the values.
    let late = Collector::start(&broker.url(), "late", &["home/power/evn/#"]).await;
    assert!(late.wait_count(13, WAIT).await);
    assert!(late.messages().iter().all(|r| r.retain));
}

#[tokio::test]
async fn evn_json_format_matches_evn_smartmeter_decrypter() {
    let broker = Mosquitto::new();
    let (m, _) = one_reading(
        &broker,
        config(&broker, Format::EvnJson),
        "evnjson",
        "sensors/smartmeter/values",
        1,
    )
    .await;
    assert_eq!(
        texts(&m),
        pairs(&[(
            "sensors/smartmeter/values",
            "{\"WIn\": {\"value\": 12937.0, \"unit\": \"Wh\"}, \"WOut\": {\"value\": 0.0, \"unit\": \
             \"Wh\"}, \"PIn\": {\"value\": 0.0, \"unit\": \"W\"}, \"POut\": {\"value\": 0.0, \"unit\": \
             \"W\"}, \"U1\": {\"value\": 233.7, \"unit\": \"V\"}, \"U2\": {\"value\": 0.0, \"unit\": \
             \"V\"}, \"U3\": {\"value\": 0.0, \"unit\": \"V\"}, \"I1\": {\"value\": 0.0, \"unit\": \
             \"A\"}, \"I2\": {\"value\": 0.0, \"unit\": \"A\"}, \"I3\": {\"value\": 0.0, \"unit\": \
             \"A\"}, \"PF\": {\"value\": 1.0, \"unit\": \"1\"}, \"timestamp\": {\"value\": \
             1632728835, \"unit\": \"s\"}}"
        )])
    );
}

#[tokio::test]
async fn kaifareader_format_publishes_its_field_topics() {
    let broker = Mosquitto::new();
    let (m, _) = one_reading(
        &broker,
        config(&broker, Format::Kaifareader),
        "kaifa",
        "kaifareader/+",
        13,
    )
    .await;
    let values: Vec<Received> = m
        .into_iter()
        .filter(|r| r.topic != "kaifareader/status")
        .collect();
    assert_eq!(
        texts(&values),
        pairs(&[
            ("kaifareader/VoltageL1_V", "233.7"),
            ("kaifareader/VoltageL2_V", "0.0"),
            ("kaifareader/VoltageL3_V", "0.0"),
            ("kaifareader/CurrentL1_A", "0.0"),
            ("kaifareader/CurrentL2_A", "0.0"),
            ("kaifareader/CurrentL3_A", "0.0"),
            ("kaifareader/InstantaneousPowerIn_W", "0"),
            ("kaifareader/InstantaneousPowerOut_W", "0"),
            ("kaifareader/ActiveEnergyIn_Wh", "12937"),
            ("kaifareader/ActiveEnergyOut_Wh", "0"),
            ("kaifareader/PowerFactor", "1.0"),
            ("kaifareader/DeviceNumber", "181220000009"),
        ])
    );
}

#[tokio::test]
async fn smartmeterevn_formats_publish_their_topic_sets_over_mqtt5() {
    let broker = Mosquitto::new();
    let mut c = config(&broker, Format::Smartmeterevn);
    c.protocol_version = ProtocolVersion::V5;
    c.status_topic = Some("Smartmeter-status".into());
    let (m, status) = one_reading(&broker, c, "sme1", "Smartmeter/#", 12).await;
    assert_eq!(
        texts(&m),
        pairs(&[
            ("Smartmeter/WirkenergieP", "12.937"),
            ("Smartmeter/WirkenergieN", "0.0"),
            ("Smartmeter/MomentanleistungP", "0"),
            ("Smartmeter/MomentanleistungN", "0"),
            ("Smartmeter/Momentanleistung", "0"),
            ("Smartmeter/SpannungL1", "233.7"),
            ("Smartmeter/SpannungL2", "0.0"),
            ("Smartmeter/SpannungL3", "0.0"),
            ("Smartmeter/StromL1", "0.0"),
            ("Smartmeter/StromL2", "0.0"),
            ("Smartmeter/StromL3", "0.0"),
            ("Smartmeter/Leistungsfaktor", "1.0"),
        ])
    );
    assert!(status.iter().all(|r| r.topic == "Smartmeter-status"));

    let broker = Mosquitto::new();
    let mut c = config(&broker, Format::SmartmeterevnV2);
    c.status_topic = Some("Smartmeter-status".into());
    let (m, _) = one_reading(&broker, c, "sme2", "Smartmeter/#", 12).await;
    assert_eq!(
        texts(&m),
        pairs(&[
            ("Smartmeter/WirkenergieBezug", "12.937"),
            ("Smartmeter/WirkenergieLieferung", "0.0"),
            ("Smartmeter/WirkleistungBezug", "0"),
            ("Smartmeter/WirkleistungLieferung", "0"),
            ("Smartmeter/Wirkleistunggesamt", "0"),
            ("Smartmeter/SpannungL1", "233.7"),
            ("Smartmeter/SpannungL2", "0.0"),
            ("Smartmeter/SpannungL3", "0.0"),
            ("Smartmeter/StromL1", "0.0"),
            ("Smartmeter/StromL2", "0.0"),
            ("Smartmeter/StromL3", "0.0"),
            ("Smartmeter/Leistungsfaktor", "1.0"),
        ])
    );
}

/// First arrivals in order and the number of repeats.
fn arrivals(c: &Collector) -> (Vec<usize>, usize) {
    let mut seen = HashSet::new();
    let mut order = Vec::new();
    let mut repeats = 0;
    for m in c.on("smart-meter/seq") {
        let n = seq_of(&m);
        if seen.insert(n) {
            order.push(n);
        } else {
            repeats += 1;
        }
    }
    (order, repeats)
}

async fn all_arrive(c: &Collector, n: usize) -> bool {
    c.wait_until(WAIT, |m| {
        m.iter()
            .filter(|r| r.topic == "smart-meter/seq")
            .map(seq_of)
            .collect::<HashSet<_>>()
            .len()
            >= n
    })
    .await
}

// Multi-threaded, so the sink keeps running while the test blocks stopping the broker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reading_arrives_when_the_broker_is_stopped_and_killed_mid_stream() {
    let mut broker = Mosquitto::new();
    let mut collector = Collector::start(&broker.url(), "outage", &["smart-meter/seq"]).await;
    let sink = start(config(&broker, Format::Json), "outage");
    let mut next = 0;
    let mut feed = async |sink: &Sink, upto: usize| {
        while next < upto {
            sink.publisher.publish(numbered(next));
            next += 1;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    // 1. Stopped while readings are in flight.
    feed(&sink, 100).await;
    broker.stop();
    feed(&sink, 150).await;
    let acks = collector.subscription_acks();
    broker.start();
    assert!(collector.wait_subscribed(acks, WAIT).await);
    feed(&sink, 200).await;
    assert!(
        all_arrive(&collector, 200).await,
        "{:?}",
        arrivals(&collector)
    );
    // 2. Killed (nothing saved) once the first 200 are through; readings made while it is
    // down arrive after the restart.
    broker.kill();
    feed(&sink, 300).await;
    let acks = collector.subscription_acks();
    broker.start();
    assert!(collector.wait_subscribed(acks, WAIT).await);
    feed(&sink, 350).await;
    assert!(
        all_arrive(&collector, 350).await,
        "{:?}",
        arrivals(&collector)
    );

    let (order, repeats) = arrivals(&collector);
    assert_eq!(
        order,
        (0..350).collect::<Vec<_>>(),
        "first arrivals out of order"
    );
    // QoS 1: only what was in flight when the connection broke may come twice.
    assert!(repeats <= 200, "{repeats} repeats");
    let stats = sink.finish().await;
    assert_eq!(stats.delivered.load(Ordering::Relaxed), 350);
    assert_eq!(stats.dropped.load(Ordering::Relaxed), 0);
    assert!(stats.retries.load(Ordering::Relaxed) >= 2);
    assert_eq!(stats.queued.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn a_gateway_started_before_the_broker_delivers_everything_once_it_is_up() {
    let mut broker = Mosquitto::new();
    let collector = Collector::start(&broker.url(), "early", &["smart-meter/seq"]).await;
    broker.stop();
    let sink = start(config(&broker, Format::Json), "early");
    for n in 0..50 {
        sink.publisher.publish(numbered(n));
    }
    // The readings wait in the queue until the broker is there.
    let deadline = tokio::time::Instant::now() + WAIT;
    while sink.stats.queued.load(Ordering::Relaxed) < 50 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "readings not queued"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!sink.stats.connected.load(Ordering::Relaxed));
    broker.start();
    assert!(all_arrive(&collector, 50).await);
    let (order, repeats) = arrivals(&collector);
    assert_eq!(order, (0..50).collect::<Vec<_>>());
    assert_eq!(repeats, 0);
    let stats = sink.finish().await;
    assert_eq!(stats.delivered.load(Ordering::Relaxed), 50);
}

#[tokio::test]
async fn the_spool_keeps_queued_readings_across_a_restart_of_the_sink() {
    let mut broker = Mosquitto::new();
    let spool = tempfile::tempdir().unwrap();
    let collector = Collector::start(&broker.url(), "spooled", &["smart-meter/seq"]).await;
    broker.stop();
    let mut c = config(&broker, Format::Json);
    c.spool_dir = Some(spool.path().to_path_buf());

    // First run: the broker is down the whole time; the sink is shut down with 30 queued.
    let sink = start(c.clone(), "spooled");
    for n in 0..30 {
        sink.publisher.publish(numbered(n));
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    while sink.stats.queued.load(Ordering::Relaxed) < 30 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "readings not queued"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stats = sink.finish().await;
    assert_eq!(stats.delivered.load(Ordering::Relaxed), 0);
    assert_eq!(stats.dropped.load(Ordering::Relaxed), 0);
    assert_eq!(stats.queued.load(Ordering::Relaxed), 30);

    // Second run with the broker up: the spooled readings go first, then new ones.
    broker.start();
    let sink = start(c, "spooled");
    for n in 30..40 {
        sink.publisher.publish(numbered(n));
    }
    assert!(
        all_arrive(&collector, 40).await,
        "{:?}",
        arrivals(&collector)
    );
    let (order, repeats) = arrivals(&collector);
    assert_eq!(order, (0..40).collect::<Vec<_>>());
    assert_eq!(repeats, 0);
    let stats = sink.finish().await;
    assert_eq!(stats.delivered.load(Ordering::Relaxed), 40);
    assert_eq!(stats.queued.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn a_full_queue_drops_the_oldest_readings_and_counts_them() {
    let mut broker = Mosquitto::new();
    let collector = Collector::start(&broker.url(), "small", &["smart-meter/seq"]).await;
    broker.stop();
    let mut c = config(&broker, Format::Json);
    c.queue_size = 10;
    let sink = start(c, "small");
    for n in 0..25 {
        sink.publisher.publish(numbered(n));
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    while sink.stats.dropped.load(Ordering::Relaxed) < 15 {
        assert!(tokio::time::Instant::now() < deadline, "nothing dropped");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    broker.start();
    assert!(all_arrive(&collector, 10).await);
    let (order, _) = arrivals(&collector);
    assert_eq!(order, (15..25).collect::<Vec<_>>());
    let stats = sink.finish().await;
    assert_eq!(stats.dropped.load(Ordering::Relaxed), 15);
    assert_eq!(stats.delivered.load(Ordering::Relaxed), 10);
}
