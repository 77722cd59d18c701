//! The MQTT broker stopped and killed under load. The real gateway reads a DSMR meter (TCP
//! bridge) that keeps sending throughout, and publishes every reading as JSON with QoS 1 to a
//! real Mosquitto; a persistent-session subscriber collects what arrives.
//!
//! Stopped (SIGTERM, the broker saves its sessions): every reading must arrive. Killed
//! (SIGKILL, nothing saved): readings the broker had acknowledged but not yet passed on die
//! with it; that loss is the broker's and bounded by what the sink counted as delivered before
//! the kill. Every reading not acknowledged by then must arrive after the restart.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use smart_meter_testkit::{Collector, Mosquitto, Received};
use smart_meter_tests::dsmr::{index_of, indices, telegram};
use smart_meter_tests::gateway::Gateway;
use smart_meter_tests::tcp::TcpMeter;
use smart_meter_tests::{read_jsonl, wait, write_settings};

const TOPIC: &str = "smart-meter/p1";

/// The telegram numbers that reached the subscriber: first arrivals in order, and repeats.
fn arrivals(messages: &[Received]) -> (Vec<u64>, usize) {
    let mut seen = HashSet::new();
    let mut order = Vec::new();
    let mut repeats = 0;
    for m in messages.iter().filter(|m| m.topic == TOPIC) {
        let v: Value = serde_json::from_slice(&m.payload).expect("reading JSON");
        let i = index_of(&v);
        if seen.insert(i) {
            order.push(i);
        } else {
            repeats += 1;
        }
    }
    (order, repeats)
}

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_stopped_and_killed_under_load_loses_only_what_it_had_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Mosquitto::new();
    let mut collector = Collector::start(&broker.url(), "e2e-collector", &[TOPIC]).await;
    let mut meter = TcpMeter::bind().await;
    write_settings(
        dir.path(),
        &format!(
            r#"[t]
shutdown_grace = "60s"
[t.bus]
capacity = 4096
[t.sources.p1]
protocol = "dsmr"
tcp = "{}"
[t.sinks.broker]
type = "mqtt"
url = "{}"
qos = 1
format = "json"
[t.sinks.out]
type = "jsonl"
path = "{}"
"#,
            meter.addr(),
            broker.url(),
            dir.path().join("out.jsonl").display()
        ),
    );
    let gw = Gateway::start(dir.path(), "t").await;
    meter.accept().await;
    let mqtt = gw.sink("broker");

    // The meter sends a telegram every 5 ms throughout, whatever the broker does, until told
    // to stop; it returns how many it sent.
    let stop_feeding = Arc::new(AtomicBool::new(false));
    let feeder = tokio::spawn({
        let stop = stop_feeding.clone();
        async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                meter.send(&telegram(n)).await;
                n += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            n
        }
    });

    // 1. Stopped while messages are in flight.
    gw.wait_delivered("broker", 100).await;
    blocking(|| broker.stop());
    let retries = mqtt.retries.load(Ordering::Relaxed);
    let out = gw.published();
    gw.wait_delivered("out", out + 100).await;
    let acks = collector.subscription_acks();
    blocking(|| broker.start());
    assert!(collector.wait_subscribed(acks, wait::LIMIT).await);
    assert!(
        mqtt.retries.load(Ordering::Relaxed) > retries,
        "the outage was noticed"
    );

    // 2. Killed, once the sink is connected and delivering again.
    let delivered = mqtt.delivered.load(Ordering::Relaxed);
    gw.wait_delivered("broker", delivered + 100).await;
    blocking(|| broker.kill());
    let retries = mqtt.retries.load(Ordering::Relaxed);
    wait::until("the sink notices the kill", wait::LIMIT, || {
        mqtt.retries.load(Ordering::Relaxed) > retries
    })
    .await;
    // Everything acknowledged before the kill has been counted by now.
    let acked_before_kill = mqtt.delivered.load(Ordering::Relaxed);
    let out = gw.published();
    gw.wait_delivered("out", out + 100).await;
    let acks = collector.subscription_acks();
    blocking(|| broker.start());
    assert!(collector.wait_subscribed(acks, wait::LIMIT).await);
    let delivered = mqtt.delivered.load(Ordering::Relaxed);
    gw.wait_delivered("broker", delivered + 100).await;

    stop_feeding.store(true, Ordering::Relaxed);
    let n = feeder.await.unwrap();
    gw.wait_readings("p1", n).await;
    gw.wait_delivered("broker", n).await;
    assert!(gw.is_running());
    gw.stop().await.expect("clean shutdown");

    let total = n;
    assert_eq!(mqtt.delivered.load(Ordering::Relaxed), total);
    assert_eq!(mqtt.dropped.load(Ordering::Relaxed), 0);
    assert_eq!(mqtt.lagged.load(Ordering::Relaxed), 0);
    assert_eq!(
        indices(&read_jsonl(&dir.path().join("out.jsonl"))),
        (0..total).collect::<Vec<_>>()
    );
    let ok = collector
        .wait_until(wait::LIMIT, |messages| {
            let (order, _) = arrivals(messages);
            let got: HashSet<u64> = order.into_iter().collect();
            (acked_before_kill..total).all(|i| got.contains(&i))
        })
        .await;
    let (order, repeats) = arrivals(&collector.messages());
    let missing: Vec<u64> = (0..total).filter(|i| !order.contains(i)).collect();
    assert!(
        ok,
        "not acknowledged before the kill, yet missing: {missing:?}\n{}",
        broker.log()
    );
    // Lost in the broker at the kill: only readings it had acknowledged, none after.
    assert!(
        missing.iter().all(|&i| i < acked_before_kill),
        "{missing:?}"
    );
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "first arrivals in order: {order:?}"
    );
    eprintln!(
        "broker restart: {} of {total} arrived, {} lost in the killed broker (acknowledged before \
         the kill: {acked_before_kill}), {repeats} QoS 1 repeats",
        order.len(),
        missing.len()
    );
}
