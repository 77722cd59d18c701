//! The MQTT connection supervisor against a real Mosquitto.

use std::collections::HashSet;
use std::time::Duration;

use smart_meter_sinks::mqtt_conn::{self, Event, Events, Message, Options, ProtocolVersion, QoS};
use smart_meter_testkit::{Collector, Mosquitto};

const WAIT: Duration = Duration::from_secs(30);

fn options(broker: &Mosquitto, client_id: &str) -> Options {
    let mut o = Options::new("test", broker.url().parse().unwrap(), client_id);
    o.backoff_max = Duration::from_millis(500);
    o
}

async fn wait_for(events: &mut Events, mut pred: impl FnMut(&Event) -> bool) -> Event {
    tokio::time::timeout(WAIT, async {
        loop {
            let e = events.recv().await.expect("connection task ended");
            if pred(&e) {
                return e;
            }
        }
    })
    .await
    .expect("event did not come within 30 s")
}

fn numbered(topic: &str, n: usize) -> Message {
    Message::new(topic, n.to_string(), QoS::AtLeastOnce, false)
}

/// The first arrival of each number, in arrival order, and the number of repeats.
fn first_arrivals(c: &Collector, topic: &str) -> (Vec<usize>, usize) {
    let mut seen = HashSet::new();
    let mut order = Vec::new();
    let mut repeats = 0;
    for m in c.on(topic) {
        let n: usize = m.text().parse().unwrap();
        if seen.insert(n) {
            order.push(n);
        } else {
            repeats += 1;
        }
    }
    (order, repeats)
}

#[tokio::test]
async fn messages_published_before_the_broker_starts_arrive_in_order_once_it_is_up() {
    let mut broker = Mosquitto::new();
    let url = broker.url();
    // The collector's persistent session survives the broker restart (saved on stop).
    let collector = Collector::start(&url, "collector-early", &["early/#"]).await;
    broker.stop();

    let (conn, mut events) = mqtt_conn::spawn(options(&broker, "early-publisher")).unwrap();
    for n in 0..50 {
        conn.publish(numbered("early/n", n));
    }
    wait_for(&mut events, |e| matches!(e, Event::ConnectFailed { .. })).await;
    assert!(!conn.is_connected());
    assert_eq!(conn.outstanding(), 50);

    broker.start();
    assert!(
        collector.wait_count(50, WAIT).await,
        "only {} of 50 arrived",
        collector.messages().len()
    );
    let (order, repeats) = first_arrivals(&collector, "early/n");
    assert_eq!(order, (0..50).collect::<Vec<_>>());
    assert_eq!(repeats, 0);
    assert_eq!(conn.close(Duration::from_secs(5)).await, 0);
}

async fn survives_a_broker_outage(protocol: ProtocolVersion, kill: bool, id: &str) {
    let mut broker = Mosquitto::new();
    let url = broker.url();
    let topic = format!("{id}/n");
    let mut collector = Collector::start(&url, &format!("{id}-collector"), &[&topic]).await;
    let mut o = options(&broker, id);
    o.protocol = protocol;
    let (conn, mut events) = mqtt_conn::spawn(o).unwrap();
    wait_for(&mut events, |e| matches!(e, Event::Connected { .. })).await;

    let mut delivered = HashSet::new();
    let mut next = 0usize;
    // Before the outage.
    while next < 100 {
        conn.publish(numbered(&topic, next));
        next += 1;
    }
    if kill {
        // A killed broker keeps only what it saved; wait until the first batch is through so
        // the test does not depend on what the broker lost, then kill it.
        assert!(collector.wait_count(100, WAIT).await);
        broker.kill();
    } else {
        // Stop while messages are still in flight: they must be sent again.
        broker.stop();
    }
    // During the outage.
    while next < 200 {
        conn.publish(numbered(&topic, next));
        next += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let acks = collector.subscription_acks();
    broker.start();
    assert!(collector.wait_subscribed(acks, WAIT).await);
    // After the outage.
    while next < 300 {
        conn.publish(numbered(&topic, next));
        next += 1;
    }
    let ok = collector
        .wait_until(WAIT, |m| {
            let set: HashSet<&[u8]> = m.iter().map(|r| r.payload.as_slice()).collect();
            set.len() >= 300
        })
        .await;
    let (order, repeats) = first_arrivals(&collector, &topic);
    assert!(
        ok,
        "{} of 300 arrived: {:?}\n{}",
        order.len(),
        order,
        broker.log()
    );
    assert_eq!(order, (0..300).collect::<Vec<_>>(), "out of order");
    // Only messages in flight when the connection broke may repeat: at most one window.
    assert!(repeats <= 100, "{repeats} repeats");
    // Every publish is reported delivered exactly once.
    while delivered.len() < 300 {
        if let Event::Delivered(id) =
            wait_for(&mut events, |e| matches!(e, Event::Delivered(_))).await
        {
            assert!(delivered.insert(id), "{id:?} reported twice");
        }
    }
    assert_eq!(conn.outstanding(), 0);
    assert_eq!(conn.close(Duration::from_secs(5)).await, 0);
}

// Multi-threaded, so the connection keeps running while the test blocks stopping the broker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_arrives_in_order_when_the_broker_stops_mid_stream() {
    survives_a_broker_outage(ProtocolVersion::V311, false, "stop311").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_arrives_in_order_when_the_broker_is_killed_mid_stream() {
    survives_a_broker_outage(ProtocolVersion::V311, true, "kill311").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt5_connections_survive_a_broker_outage_too() {
    survives_a_broker_outage(ProtocolVersion::V5, false, "stop5").await;
}

#[tokio::test]
async fn subscriptions_are_renewed_after_the_broker_lost_them() {
    let mut broker = Mosquitto::new();
    let url = broker.url();
    let mut o = options(&broker, "sub-renew");
    o.subscriptions = vec![("in/#".to_string(), QoS::AtLeastOnce)];
    // A clean session: after a restart the broker has no subscription for us.
    o.clean_session = true;
    let (conn, mut events) = mqtt_conn::spawn(o).unwrap();
    wait_for(&mut events, |e| matches!(e, Event::Subscribed { ok: true })).await;
    smart_meter_testkit::publish(&url, "in/a", b"one", false).await;
    let e = wait_for(&mut events, |e| matches!(e, Event::Message(_))).await;
    assert_eq!(
        e,
        Event::Message(Message::new("in/a", "one", QoS::AtLeastOnce, false))
    );

    broker.kill();
    broker.start();
    wait_for(&mut events, |e| matches!(e, Event::Subscribed { ok: true })).await;
    smart_meter_testkit::publish(&url, "in/b", b"two", false).await;
    let e = wait_for(&mut events, |e| matches!(e, Event::Message(_))).await;
    assert_eq!(
        e,
        Event::Message(Message::new("in/b", "two", QoS::AtLeastOnce, false))
    );
    conn.close(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn the_last_will_is_published_only_when_the_connection_dies() {
    let broker = Mosquitto::new();
    let url = broker.url();
    let collector = Collector::start(&url, "will-collector", &["will/#"]).await;

    // A clean close: no will.
    let mut o = options(&broker, "will-clean");
    o.last_will = Some(Message::new(
        "will/clean",
        "offline",
        QoS::AtLeastOnce,
        true,
    ));
    let (conn, mut events) = mqtt_conn::spawn(o).unwrap();
    wait_for(&mut events, |e| matches!(e, Event::Connected { .. })).await;
    conn.publish(Message::new("will/clean", "online", QoS::AtLeastOnce, true));
    assert_eq!(conn.close(Duration::from_secs(5)).await, 0);

    // A connection that dies without DISCONNECT: the broker publishes the will.
    let mut o = options(&broker, "will-dies");
    o.last_will = Some(Message::new("will/dies", "offline", QoS::AtLeastOnce, true));
    o.keep_alive = Duration::from_secs(5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    rt.spawn(async move {
        let (conn, mut events) = mqtt_conn::spawn(o).unwrap();
        loop {
            if let Some(Event::Connected { .. }) = events.recv().await {
                break;
            }
        }
        let _ = tx.send(());
        std::future::pending::<()>().await;
        drop(conn);
    });
    rx.await.unwrap();
    // Shutting the runtime down drops the socket without an MQTT DISCONNECT.
    rt.shutdown_background();

    assert!(
        collector
            .wait_until(WAIT, |m| m.iter().any(|r| r.topic == "will/dies"))
            .await
    );
    let clean: Vec<String> = collector
        .on("will/clean")
        .iter()
        .map(|m| m.text())
        .collect();
    assert_eq!(clean, ["online"]);
    let dies: Vec<String> = collector.on("will/dies").iter().map(|m| m.text()).collect();
    assert_eq!(dies, ["offline"]);
}

#[tokio::test]
async fn a_message_that_cannot_be_sent_does_not_block_the_ones_behind_it() {
    let broker = Mosquitto::new();
    let collector = Collector::start(&broker.url(), "unsendable-collector", &["ok/#"]).await;
    let mut o = options(&broker, "unsendable");
    o.max_packet_size = 1024;
    let (conn, mut events) = mqtt_conn::spawn(o).unwrap();
    let bad = [
        conn.publish(Message::new("ok/+", "wildcard", QoS::AtLeastOnce, false)),
        conn.publish(Message::new(
            "ok/big",
            vec![b'x'; 2000],
            QoS::AtLeastOnce,
            false,
        )),
    ];
    let good = conn.publish(Message::new("ok/fine", "1", QoS::AtLeastOnce, false));
    let mut delivered = Vec::new();
    while delivered.len() < 3 {
        if let Event::Delivered(id) =
            wait_for(&mut events, |e| matches!(e, Event::Delivered(_))).await
        {
            delivered.push(id);
        }
    }
    assert_eq!(delivered, [bad[0], bad[1], good]);
    assert!(collector.wait_count(1, WAIT).await);
    let got: Vec<String> = collector
        .messages()
        .iter()
        .map(|m| m.topic.clone())
        .collect();
    assert_eq!(got, ["ok/fine"]);
    assert!(conn.is_connected());
    assert_eq!(conn.close(Duration::from_secs(5)).await, 0);
}
