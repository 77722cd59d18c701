//! InfluxDB down for a while: at start-up, in the middle of a run, and at shutdown. The real
//! gateway reads a DSMR meter behind a TCP bridge and writes to a real InfluxDB 1.x and to a
//! `jsonl` file; every reading must end up in the database exactly once, with nothing dropped,
//! and the gateway must keep running throughout.

use std::path::Path;
use std::sync::atomic::Ordering;

use smart_meter_tests::dsmr::{indices, telegram};
use smart_meter_tests::gateway::Gateway;
use smart_meter_tests::influxd::Influxd;
use smart_meter_tests::tcp::TcpMeter;
use smart_meter_tests::{read_jsonl, wait, write_settings};

const DB: &str = "meters";

fn config(dir: &Path, meter: &str, influx: &str, spool: bool) {
    let spool = if spool {
        format!("spool_dir = \"{}\"\n", dir.join("spool").display())
    } else {
        String::new()
    };
    write_settings(
        dir,
        &format!(
            r#"[t]
shutdown_grace = "30s"
[t.sources.p1]
protocol = "dsmr"
tcp = "{meter}"
[t.sinks.influx]
type = "influxdb"
url = "{influx}"
db = "{DB}"
batch_size = 50
flush_interval = "100ms"
retry_initial = "100ms"
retry_max = "500ms"
timeout = "2s"
{spool}[t.sinks.out]
type = "jsonl"
path = "{}"
"#,
            dir.join("out.jsonl").display()
        ),
    );
}

/// The telegram numbers stored in InfluxDB, in time order.
fn stored(db: &Influxd) -> Vec<u64> {
    db.rows(
        DB,
        "SELECT \"1.0.1.8.1.255\" FROM \"smart_meter\" ORDER BY time",
    )
    .iter()
    .map(|r| (r[1].as_f64().expect("a number") * 1000.0).round() as u64)
    .collect()
}

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn influxdb_down_at_start_and_midway_loses_no_reading() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = Influxd::new();
    let mut meter = TcpMeter::bind().await;
    config(dir.path(), &meter.addr(), &db.url(), false);
    let gw = Gateway::start(dir.path(), "t").await;
    meter.accept().await;
    let influx = gw.sink("influx");

    // 1. The database is not there yet.
    for i in 0..20 {
        meter.send(&telegram(i)).await;
    }
    gw.wait_delivered("out", 20).await;
    wait::until("failed writes are retried", wait::LIMIT, || {
        influx.retries.load(Ordering::Relaxed) >= 1
    })
    .await;
    assert_eq!(influx.delivered.load(Ordering::Relaxed), 0);
    blocking(|| {
        db.start();
        db.query(None, &format!("CREATE DATABASE \"{DB}\""));
    });
    gw.wait_delivered("influx", 20).await;

    // 2. It goes away while readings keep coming.
    blocking(|| db.stop());
    let retries = influx.retries.load(Ordering::Relaxed);
    for i in 20..40 {
        meter.send(&telegram(i)).await;
    }
    gw.wait_delivered("out", 40).await;
    wait::until("writes fail while InfluxDB is down", wait::LIMIT, || {
        influx.retries.load(Ordering::Relaxed) > retries
    })
    .await;
    assert!(!influx.connected.load(Ordering::Relaxed));
    assert!(
        influx.queued.load(Ordering::Relaxed) > 0,
        "readings wait in the queue"
    );

    // 3. It comes back.
    blocking(|| db.start());
    for i in 40..60 {
        meter.send(&telegram(i)).await;
    }
    gw.wait_delivered("influx", 60).await;
    assert!(gw.is_running());
    gw.stop().await.expect("clean shutdown");

    assert_eq!(influx.delivered.load(Ordering::Relaxed), 60);
    assert_eq!(influx.dropped.load(Ordering::Relaxed), 0);
    assert_eq!(influx.queued.load(Ordering::Relaxed), 0);
    let want: Vec<u64> = (0..60).collect();
    assert_eq!(blocking(|| stored(&db)), want, "every reading stored once");
    assert_eq!(indices(&read_jsonl(&dir.path().join("out.jsonl"))), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_held_at_shutdown_while_influxdb_is_down_are_spooled_and_sent_at_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = Influxd::new();
    let mut meter = TcpMeter::bind().await;
    config(dir.path(), &meter.addr(), &db.url(), true);

    let gw = Gateway::start(dir.path(), "t").await;
    meter.accept().await;
    for i in 0..25 {
        meter.send(&telegram(i)).await;
    }
    gw.wait_delivered("out", 25).await;
    let influx = gw.sink("influx");
    gw.stop()
        .await
        .expect("shutdown with InfluxDB down is still clean");
    assert_eq!(influx.delivered.load(Ordering::Relaxed), 0);
    assert_eq!(
        influx.dropped.load(Ordering::Relaxed),
        0,
        "spooled, not dropped"
    );
    let spooled = std::fs::read_dir(dir.path().join("spool")).unwrap().count();
    assert!(spooled > 0, "the spool holds the readings");

    // Next start, with InfluxDB back: the spool is sent before anything new.
    blocking(|| {
        db.start();
        db.query(None, &format!("CREATE DATABASE \"{DB}\""));
    });
    let gw = Gateway::start(dir.path(), "t").await;
    meter.accept().await;
    gw.wait_delivered("influx", 25).await;
    for i in 25..30 {
        meter.send(&telegram(i)).await;
    }
    gw.wait_delivered("influx", 30).await;
    gw.stop().await.expect("clean shutdown");
    assert_eq!(blocking(|| stored(&db)), (0..30).collect::<Vec<u64>>());
    assert_eq!(
        std::fs::read_dir(dir.path().join("spool")).unwrap().count(),
        0
    );
}
