//! `mqtts://` against a Mosquitto TLS listener with a certificate from a test CA.

use std::sync::Arc;
use std::time::Duration;

use smart_meter_core::stats::SinkStats;
use smart_meter_core::{Bus, Decimal, Key, MeterId, Obis, Reading, Sample, Unit};
use smart_meter_sinks::mqtt::{self, Config, Format};
use smart_meter_sinks::mqtt_conn::{self, Event, Message, Options, QoS};
use smart_meter_testkit::{Collector, Mosquitto};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn the_sink_publishes_over_tls_when_it_trusts_the_brokers_ca() {
    let broker = Mosquitto::with_tls();
    // The collector listens on the plain listener of the same broker.
    let collector = Collector::start(&broker.url(), "tls-collector", &["secure/#"]).await;
    let mut c = Config::new(broker.tls_url());
    c.ca_file = Some(broker.ca_file());
    c.format = Format::PerValue;
    c.base_topic = Some("secure".into());
    c.status_topic = Some(String::new());
    c.net_power = false;
    assert!(c.validate().is_empty(), "{:?}", c.validate());

    let bus = Bus::new(16);
    let sub = bus.subscribe("tls");
    let stats = Arc::new(SinkStats::new(sub.dropped_counter()));
    let publisher = bus.publisher();
    drop(bus);
    let task = tokio::spawn(mqtt::run(c, sub, stats.clone()));
    let mut r = Reading::new(MeterId::new("evn").unwrap(), "mbus-dlms");
    r.samples.push(Sample::number(
        Key::Obis(Obis::ENERGY_IMPORT),
        Decimal::new(12937, 0),
        Some(Unit::WH),
    ));
    publisher.publish(r);
    assert!(collector.wait_count(1, WAIT).await);
    let m = collector.messages();
    assert_eq!(m[0].topic, "secure/evn/1.0.1.8.0.255");
    assert_eq!(m[0].text(), "12937");
    drop(publisher);
    tokio::time::timeout(WAIT, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        stats.delivered.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn a_broker_certificate_from_an_unknown_ca_is_refused() {
    let broker = Mosquitto::with_tls();
    let other = Mosquitto::with_tls();
    let mut o = Options::new("tls", broker.tls_url().parse().unwrap(), "tls-wrong-ca");
    // Trusting another CA: the handshake must fail, nothing is sent.
    o.ca_file = Some(other.ca_file());
    let (conn, mut events) = mqtt_conn::spawn(o).unwrap();
    conn.publish(Message::new("secure/x", "1", QoS::AtLeastOnce, false));
    let e = tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await {
                Some(Event::ConnectFailed { error }) => return error,
                Some(Event::Connected { .. }) => panic!("connected despite an unknown CA"),
                _ => {}
            }
        }
    })
    .await
    .unwrap();
    assert!(e.to_lowercase().contains("certificate"), "{e}");
    assert!(!conn.is_connected());
    assert_eq!(conn.close(Duration::ZERO).await, 1);
}

#[test]
fn an_unreadable_ca_file_is_a_setup_error() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let mut o = Options::new("tls", "mqtts://127.0.0.1:8883".parse().unwrap(), "x");
    o.ca_file = Some("/nonexistent/ca.pem".into());
    let e = mqtt_conn::spawn(o).err().unwrap();
    assert!(e.0.contains("/nonexistent/ca.pem"), "{e}");
}
