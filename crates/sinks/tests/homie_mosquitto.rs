//! The `homie` sink against a real Mosquitto broker: every retained topic read back by a fresh
//! client follows the Homie 4.0.0 rules; the lifecycle (`init` → `ready`, `lost` as the last
//! will, `disconnected` on shutdown); attributes published again after every reconnect and
//! after a broker restart; a new key extending `$properties`.

mod homie_support;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use homie_support::broker::{fresh_id, last_values, retained_snapshot, Proxy, WAIT};
use homie_support::fixture;
use smart_meter_core::stats::SinkStats;
use smart_meter_core::{Bus, Decimal, Key, Obis, Publisher, Reading, Sample, Unit};
use smart_meter_sinks::homie::conformance::{self, Options};
use smart_meter_sinks::homie::{self, Config};
use smart_meter_testkit::{Collector, Mosquitto, Received};
use tokio::task::JoinHandle;

const KAIFA: &str = "tinetz-doc-kaifa-ma309.json";
const KAMSTRUP: &str = "kamstrup-multical-heat-kmp-tasmota-issue38.json";

fn config(url: &str) -> Config {
    serde_json::from_value(serde_json::json!({ "url": url })).unwrap()
}

/// Starts the sink on its own bus; returns the publisher, the task and its counters.
fn start(config: Config) -> (Publisher, JoinHandle<anyhow::Result<()>>, Arc<SinkStats>) {
    let bus = Bus::new(64);
    let sub = bus.subscribe("homie");
    let stats = Arc::new(SinkStats::new(sub.dropped_counter()));
    let publisher = bus.publisher();
    drop(bus);
    let task = tokio::spawn(homie::run(config, sub, stats.clone()));
    (publisher, task, stats)
}

fn conforms(snapshot: &BTreeMap<String, String>, device: &str, retained: bool) -> Vec<String> {
    conformance::check_device(
        "homie",
        device,
        snapshot,
        Options {
            extensions_may_be_absent: retained,
        },
    )
}

fn states(messages: &[Received], device: &str) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m.topic == format!("homie/{device}/$state"))
        .map(Received::text)
        .collect()
}

/// The whole retained tree of `device` is there and conforms (with `$state` = `ready`).
fn complete(snapshot: &BTreeMap<String, String>, device: &str) -> bool {
    snapshot
        .get(&format!("homie/{device}/$state"))
        .map(String::as_str)
        == Some("ready")
        && conforms(snapshot, device, true).is_empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_retained_topic_follows_the_homie_rules_and_shutdown_says_disconnected() {
    let broker = Mosquitto::new();
    let live = Collector::start(&broker.url(), &fresh_id("live"), &["homie/#"]).await;
    let (publisher, task, stats) = start(config(&broker.url()));

    let kaifa = fixture(KAIFA, "evn");
    let heat = fixture(KAMSTRUP, "heat_meter");
    publisher.publish(kaifa.reading.clone());
    publisher.publish(heat.reading.clone());

    // Both devices come up: init first, ready last.
    assert!(
        live.wait_until(WAIT, |m| {
            states(m, "evn").last().map(String::as_str) == Some("ready")
                && states(m, "heat-meter").last().map(String::as_str) == Some("ready")
        })
        .await,
        "devices did not become ready: {:#?}",
        live.messages()
    );
    let messages = live.messages();
    for device in ["evn", "heat-meter"] {
        assert_eq!(states(&messages, device), ["init", "ready"], "{device}");
        let first = messages
            .iter()
            .position(|m| m.topic.starts_with(&format!("homie/{device}/")));
        assert_eq!(
            first.map(|i| messages[i].topic.clone()),
            Some(format!("homie/{device}/$state"))
        );
    }
    // What live subscribers saw conforms strictly, $extensions (empty) included.
    let seen = last_values(&messages, false);
    assert_eq!(seen["homie/evn/$extensions"], "");
    for device in ["evn", "heat-meter"] {
        let problems = conforms(&seen, device, false);
        assert!(problems.is_empty(), "{device}: {problems:#?}");
    }

    // A controller connecting now gets every retained topic, and they conform.
    let snap = retained_snapshot(&broker.url(), "homie/#", |s| {
        complete(s, "evn") && complete(s, "heat-meter")
    })
    .await;
    assert_eq!(
        conformance::devices("homie", &snap),
        vec!["evn".to_string(), "heat-meter".to_string()]
    );
    // Every retained topic is one the sink published, with the same payload.
    for (topic, payload) in &snap {
        assert_eq!(seen.get(topic), Some(payload), "{topic}");
    }
    assert_eq!(snap["homie/evn/$homie"], "4.0.0");
    assert_eq!(snap["homie/evn/$name"], "evn");
    assert_eq!(
        snap["homie/evn/$nodes"],
        "energy,power,voltage,current,meter"
    );
    assert_eq!(
        snap["homie/evn/energy/$properties"],
        "imported-total,exported-total,reactive-imported-total,reactive-exported-total"
    );
    assert_eq!(snap["homie/evn/energy/imported-total"], "9108");
    assert_eq!(snap["homie/evn/energy/imported-total/$datatype"], "integer");
    assert_eq!(snap["homie/evn/energy/imported-total/$unit"], "Wh");
    assert_eq!(snap["homie/evn/voltage/l1"], "230.8");
    assert_eq!(snap["homie/evn/voltage/l1/$datatype"], "float");
    assert_eq!(snap["homie/evn/meter/number"], "1KFM0100000035");
    assert_eq!(snap["homie/heat-meter/energy/imported-total"], "55.006");
    assert_eq!(snap["homie/heat-meter/energy/imported-total/$unit"], "MWh");
    assert_eq!(snap["homie/heat-meter/temperatures/temp1"], "53.65");
    assert_eq!(snap["homie/heat-meter/temperatures/temp1/$unit"], "°C");
    assert_eq!(snap["homie/heat-meter/flow/volume"], "1875.56");
    assert!(snap.keys().all(|t| !t.contains("$stats")));

    // Shutdown: the bus closes, every device says `disconnected`, the sink returns.
    drop(publisher);
    tokio::time::timeout(WAIT, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        live.wait_until(WAIT, |m| {
            states(m, "evn").last().map(String::as_str) == Some("disconnected")
                && states(m, "heat-meter").last().map(String::as_str) == Some("disconnected")
        })
        .await
    );
    // A clean disconnect: no `lost` from the will.
    let after = live.messages();
    assert!(!states(&after, "evn").contains(&"lost".to_string()));
    assert_eq!(stats.delivered.load(Ordering::Relaxed), 2);
    live.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_connection_leaves_lost_and_the_reconnect_announces_everything_again() {
    let broker = Mosquitto::new();
    let proxy = Proxy::start(broker.port()).await;
    let live = Collector::start(&broker.url(), &fresh_id("live"), &["homie/#"]).await;
    let (publisher, task, stats) = start(config(&proxy.url()));

    publisher.publish(fixture(KAIFA, "evn").reading);
    assert!(
        live.wait_until(WAIT, |m| states(m, "evn") == ["init", "ready"])
            .await,
        "{:#?}",
        live.messages()
    );
    let attributes_before = live
        .messages()
        .iter()
        .filter(|m| m.topic.contains("/$"))
        .count();
    live.clear();

    // The network drops without a DISCONNECT: the broker publishes the will.
    proxy.cut();
    assert!(
        live.wait_until(WAIT, |m| states(m, "evn").first().map(String::as_str)
            == Some("lost"))
            .await,
        "no last will: {:#?}",
        live.messages()
    );
    // The sink reconnects by itself and announces again: init, every attribute, the values,
    // ready.
    // A `ready` that was in flight when the network dropped may be delivered again after the
    // reconnect, before the new announcement (QoS 1 redelivery); what matters is that `lost` came
    // first and the device then announced itself again: init, …, ready.
    assert!(
        live.wait_until(WAIT, |m| {
            let s = states(m, "evn");
            let reannounced = s
                .iter()
                .rposition(|x| x == "init")
                .is_some_and(|i| s[i..] == ["init", "ready"]);
            s.first().map(String::as_str) == Some("lost")
                && reannounced
                && s.iter().filter(|x| *x == "init").count() == 1
        })
        .await,
        "{:#?}",
        live.messages()
    );
    let again = live.messages();
    let attributes_again = again.iter().filter(|m| m.topic.contains("/$")).count();
    assert!(
        attributes_again > attributes_before,
        "{attributes_again} attribute messages after the reconnect, {attributes_before} before"
    );
    assert!(again
        .iter()
        .any(|m| m.topic == "homie/evn/energy/imported-total" && m.text() == "9108"));
    assert!(stats.retries.load(Ordering::Relaxed) >= 1);
    let snap = retained_snapshot(&broker.url(), "homie/#", |s| complete(s, "evn")).await;
    assert!(conforms(&snap, "evn", true).is_empty());

    drop(publisher);
    tokio::time::timeout(WAIT, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    live.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_key_extends_the_properties_and_a_restarted_broker_gets_everything_again() {
    // Without persistence a restarted broker has forgotten every retained message.
    let mut broker = Mosquitto::with_config("persistence false");
    let (publisher, task, _stats) = start(config(&broker.url()));

    let mut reading = Reading::new(smart_meter_core::MeterId::new("m1").unwrap(), "mbus-dlms");
    reading.samples.push(Sample::number(
        Key::Obis(Obis::ENERGY_IMPORT),
        Decimal::new(1000, 0),
        Some(Unit::WH),
    ));
    publisher.publish(reading.clone());
    let snap = retained_snapshot(&broker.url(), "homie/#", |s| complete(s, "m1")).await;
    assert_eq!(snap["homie/m1/$nodes"], "energy");

    // A later reading brings export energy and power: the device is announced again.
    reading.samples.push(Sample::number(
        Key::Obis(Obis::ENERGY_EXPORT),
        Decimal::new(7, 0),
        Some(Unit::WH),
    ));
    reading.samples.push(Sample::number(
        Key::Obis(Obis::POWER_IMPORT),
        Decimal::new(420, 0),
        Some(Unit::W),
    ));
    publisher.publish(reading.clone());
    let snap = retained_snapshot(&broker.url(), "homie/#", |s| {
        complete(s, "m1")
            && s.get("homie/m1/power/current-usage").map(String::as_str) == Some("420")
    })
    .await;
    assert_eq!(snap["homie/m1/$nodes"], "energy,power");
    assert_eq!(
        snap["homie/m1/energy/$properties"],
        "imported-total,exported-total"
    );

    // The broker dies and comes back empty: the sink announces everything again.
    broker.kill();
    broker.start();
    let snap = retained_snapshot(&broker.url(), "homie/#", |s| {
        complete(s, "m1")
            && s.get("homie/m1/power/current-usage").map(String::as_str) == Some("420")
    })
    .await;
    assert_eq!(snap["homie/m1/energy/exported-total"], "7");
    assert_eq!(snap["homie/m1/energy/imported-total"], "1000");

    // Readings keep flowing after the restart.
    reading.samples[0].value = smart_meter_core::Value::Number(Decimal::new(1001, 0));
    publisher.publish(reading);
    retained_snapshot(&broker.url(), "homie/#", |s| {
        s.get("homie/m1/energy/imported-total").map(String::as_str) == Some("1001")
    })
    .await;

    drop(publisher);
    tokio::time::timeout(WAIT, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
