//! The `homeassistant` sink against a real Mosquitto broker: discovery payloads validated field
//! by field, states, availability (online, last will, offline on shutdown), removal of stale
//! entities, republishing when Home Assistant restarts and after a broker restart.

mod homie_support;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use homie_support::broker::{fresh_id, retained_snapshot, Proxy, WAIT};
use homie_support::fixture;
use serde_json::{json, Value as Json};
use smart_meter_core::stats::SinkStats;
use smart_meter_core::{Bus, Publisher};
use smart_meter_sinks::homeassistant::{self, Config};
use smart_meter_testkit::{publish, Collector, Mosquitto};
use tokio::task::JoinHandle;

const KAIFA: &str = "tinetz-doc-kaifa-ma309.json";
const T210: &str = "est5-sagemcom-t210dr-energienetze-steiermark-1.json";

fn start(config: Config) -> (Publisher, JoinHandle<anyhow::Result<()>>, Arc<SinkStats>) {
    let bus = Bus::new(64);
    let sub = bus.subscribe("ha");
    let stats = Arc::new(SinkStats::new(sub.dropped_counter()));
    let publisher = bus.publisher();
    drop(bus);
    let task = tokio::spawn(homeassistant::run(config, sub, stats.clone()));
    (publisher, task, stats)
}

fn config(v: Json) -> Config {
    serde_json::from_value(v).unwrap()
}

fn cfg_topic(meter: &str, object: &str) -> String {
    format!("homeassistant/sensor/smart-meter-{meter}/{object}/config")
}

fn parse(snapshot: &BTreeMap<String, String>, topic: &str) -> Json {
    serde_json::from_str(
        snapshot
            .get(topic)
            .unwrap_or_else(|| panic!("no retained {topic}")),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_configs_states_availability_and_stale_removal_against_a_real_broker() {
    let broker = Mosquitto::new();
    let url = broker.url();
    // Left over from an earlier run: an entity evn no longer has, and another meter's entity.
    let stale = cfg_topic("evn", "1-0-99-99-0-255");
    let foreign = cfg_topic("other", "1-0-1-8-0-255");
    publish(
        &url,
        &stale,
        br#"{"name":"old","unique_id":"smart-meter-evn-1-0-99-99-0-255","state_topic":"x"}"#,
        true,
    )
    .await;
    publish(
        &url,
        &foreign,
        br#"{"name":"other","unique_id":"smart-meter-other-1-0-1-8-0-255","state_topic":"y"}"#,
        true,
    )
    .await;

    let live = Collector::start(
        &url,
        &fresh_id("live"),
        &["homeassistant/#", "smart-meter/#"],
    )
    .await;
    let (publisher, task, stats) = start(config(json!({
        "url": url,
        "remove_stale": true,
        "expire_after": "10m",
        "devices": {"evn": {"name": "Stromzähler", "model": "MA309"}},
    })));
    let kaifa = fixture(KAIFA, "evn");
    publisher.publish(kaifa.reading.clone());

    let n_values = kaifa.expected.len();
    let snap = retained_snapshot(&url, "#", |s| {
        s.keys()
            .filter(|t| t.starts_with("homeassistant/sensor/smart-meter-evn/"))
            .count()
            == n_values
            && s.keys()
                .filter(|t| t.starts_with("smart-meter/ha/evn/"))
                .count()
                == n_values
            && s.get("smart-meter/ha/status").map(String::as_str) == Some("online")
    })
    .await;

    // The stale entity of evn was removed; the other meter's entity is untouched.
    assert!(!snap.contains_key(&stale), "stale config still retained");
    assert!(snap.contains_key(&foreign));
    assert!(live
        .on(&stale)
        .iter()
        .any(|m| m.payload.is_empty() && !m.retain));

    // Field by field: the import energy total.
    let energy = parse(&snap, &cfg_topic("evn", "1-0-1-8-0-255"));
    let device = json!({
        "identifiers": ["smart-meter-evn"],
        "name": "Stromzähler",
        "manufacturer": "Kaifa",
        "model": "MA309",
        "serial_number": "1KFM0100000035",
    });
    assert_eq!(
        energy,
        json!({
            "name": "Active energy import",
            "unique_id": "smart-meter-evn-1-0-1-8-0-255",
            "state_topic": "smart-meter/ha/evn/1-0-1-8-0-255",
            "availability_topic": "smart-meter/ha/status",
            "payload_available": "online",
            "payload_not_available": "offline",
            "unit_of_measurement": "Wh",
            "device_class": "energy",
            "state_class": "total_increasing",
            "expire_after": 600,
            "device": device,
            "origin": energy["origin"].clone(),
        })
    );
    assert_eq!(energy["origin"]["name"], "smart-meter");
    assert_eq!(snap["smart-meter/ha/evn/1-0-1-8-0-255"], "9108");

    let voltage = parse(&snap, &cfg_topic("evn", "1-0-32-7-0-255"));
    assert_eq!(voltage["name"], "Voltage L1");
    assert_eq!(voltage["device_class"], "voltage");
    assert_eq!(voltage["state_class"], "measurement");
    assert_eq!(voltage["unit_of_measurement"], "V");
    assert_eq!(voltage["suggested_display_precision"], 1);
    assert_eq!(voltage["device"], device);
    assert_eq!(snap["smart-meter/ha/evn/1-0-32-7-0-255"], "230.8");

    let current = parse(&snap, &cfg_topic("evn", "1-0-31-7-0-255"));
    assert_eq!(
        (
            &current["device_class"],
            &current["state_class"],
            &current["unit_of_measurement"]
        ),
        (&json!("current"), &json!("measurement"), &json!("A"))
    );
    let power = parse(&snap, &cfg_topic("evn", "1-0-1-7-0-255"));
    assert_eq!(
        (
            &power["device_class"],
            &power["state_class"],
            &power["unit_of_measurement"]
        ),
        (&json!("power"), &json!("measurement"), &json!("W"))
    );
    let reactive = parse(&snap, &cfg_topic("evn", "1-0-3-8-0-255"));
    assert_eq!(reactive["state_class"], "total_increasing");
    assert_eq!(reactive["unit_of_measurement"], "varh");
    assert!(reactive.get("device_class").is_none());
    let number = parse(&snap, &cfg_topic("evn", "0-0-96-1-0-255"));
    assert_eq!(number["entity_category"], "diagnostic");
    assert!(number.get("state_class").is_none());
    assert_eq!(snap["smart-meter/ha/evn/0-0-96-1-0-255"], "1KFM0100000035");
    // Every entity of the meter: a unique id, its own state topic, the shared availability.
    for (topic, payload) in snap
        .iter()
        .filter(|(t, _)| t.starts_with("homeassistant/sensor/smart-meter-evn/"))
    {
        let c: Json = serde_json::from_str(payload).unwrap();
        let object = topic.split('/').nth(3).unwrap();
        assert_eq!(
            c["unique_id"],
            format!("smart-meter-evn-{object}"),
            "{topic}"
        );
        assert_eq!(
            c["state_topic"],
            format!("smart-meter/ha/evn/{object}"),
            "{topic}"
        );
        assert_eq!(c["availability_topic"], "smart-meter/ha/status", "{topic}");
        assert_eq!(c["device"], device, "{topic}");
    }

    // Home Assistant restarts (birth message): configs are published again.
    let before = live.on(&cfg_topic("evn", "1-0-1-8-0-255")).len();
    publish(&url, "homeassistant/status", b"online", false).await;
    assert!(
        live.wait_until(WAIT, |m| {
            m.iter()
                .filter(|r| r.topic == cfg_topic("evn", "1-0-1-8-0-255"))
                .count()
                > before
        })
        .await
    );

    // A second meter on the same connection.
    publisher.publish(fixture(T210, "t210").reading);
    let snap = retained_snapshot(&url, "smart-meter/#", |s| {
        s.get("smart-meter/ha/t210/1-0-2-8-0-255")
            .map(String::as_str)
            == Some("33153972")
    })
    .await;
    assert_eq!(snap["smart-meter/ha/t210/1-0-1-8-0-255"], "7112944");

    // Shutdown: offline, then the sink returns.
    drop(publisher);
    tokio::time::timeout(WAIT, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        live.wait_until(WAIT, |m| {
            m.iter()
                .rfind(|r| r.topic == "smart-meter/ha/status")
                .map(|r| r.text())
                == Some("offline".into())
        })
        .await
    );
    assert_eq!(stats.delivered.load(Ordering::Relaxed), 2);
    live.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn availability_goes_offline_by_last_will_and_everything_returns_after_a_broker_restart() {
    // Without persistence a restarted broker has forgotten every retained message.
    let mut broker = Mosquitto::with_config("persistence false");
    let proxy = Proxy::start(broker.port()).await;
    let live = Collector::start(&broker.url(), &fresh_id("live"), &["smart-meter/ha/status"]).await;
    let (publisher, task, stats) = start(config(json!({ "url": proxy.url() })));
    let kaifa = fixture(KAIFA, "evn");
    publisher.publish(kaifa.reading.clone());
    assert!(
        live.wait_until(WAIT, |m| m.iter().any(|r| r.text() == "online"))
            .await
    );

    // The connection breaks without a DISCONNECT: the broker publishes the will `offline`;
    // the sink reconnects and says `online` again.
    proxy.cut();
    assert!(
        live.wait_until(WAIT, |m| {
            let states: Vec<String> = m.iter().map(|r| r.text()).collect();
            states.ends_with(&["offline".to_string(), "online".to_string()])
        })
        .await,
        "{:#?}",
        live.messages()
    );

    // The broker dies without saving anything and restarts empty: configs and states return.
    broker.kill();
    broker.start();
    let n = kaifa.expected.len();
    let snap = retained_snapshot(&broker.url(), "#", |s| {
        s.keys()
            .filter(|t| t.starts_with("homeassistant/sensor/smart-meter-evn/"))
            .count()
            == n
            && s.keys()
                .filter(|t| t.starts_with("smart-meter/ha/evn/"))
                .count()
                == n
    })
    .await;
    assert_eq!(snap["smart-meter/ha/evn/1-0-1-8-0-255"], "9108");
    assert_eq!(snap["smart-meter/ha/status"], "online");
    assert!(stats.retries.load(Ordering::Relaxed) >= 2);

    drop(publisher);
    tokio::time::timeout(WAIT, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    live.stop().await;
}
