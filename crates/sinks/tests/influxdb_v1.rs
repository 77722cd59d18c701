//! The `influxdb` sink against a real InfluxDB 1.x (Debian package `influxdb`), started by each
//! test on free ports with its own temporary data folders; the data is queried back with
//! `/query` and compared exactly.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use serde_json::{json, Value as Json};
use smart_meter_core::stats::SinkStats;
use smart_meter_core::{Bus, Decimal, Key, MeterId, MeterTime, Obis, Reading, Sample, Unit};
use smart_meter_sinks::influxdb::{self, Config, Preset};
use smart_meter_testkit::influxd::Influxd;

/// Reading `i`: meter clock 2021-09-27T09:47:15+02:00 plus `i` × 5 s, A+ 12937 + `i` Wh,
/// P− 100·`i` W, 233.7 V, 0.05 A, power factor −0.95, meter number with awkward characters.
fn reading(i: u32) -> Reading {
    let mut r = Reading::new(MeterId::new("evn").unwrap(), "mbus-dlms");
    r.received_at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let s = 47 * 60 + 15 + 5 * i;
    r.meter_time = MeterTime::new(
        2021,
        9,
        27,
        9 + (s / 3600) as u8,
        (s / 60 % 60) as u8,
        (s % 60) as u8,
        None,
        Some(120),
    );
    let n = |c, d, m: i128, e, u| {
        Sample::number(
            Key::Obis(Obis::new(1, 0, c, d, 0, 255)),
            Decimal::new(m, e),
            u,
        )
    };
    r.samples
        .push(n(1, 8, 12937 + i128::from(i), 0, Some(Unit::WH)));
    r.samples.push(n(2, 8, 0, 0, Some(Unit::WH)));
    r.samples.push(n(1, 7, 0, 0, Some(Unit::W)));
    r.samples
        .push(n(2, 7, 100 * i128::from(i), 0, Some(Unit::W)));
    r.samples.push(n(32, 7, 2337, -1, Some(Unit::V)));
    r.samples.push(n(31, 7, 5, -2, Some(Unit::A)));
    r.samples.push(n(13, 7, -950, -3, None));
    r.samples.push(Sample::text(
        Key::Obis(Obis::METER_NUMBER),
        "KFM \"1\", a=b\\c",
    ));
    r
}

fn time_ms(i: u32) -> i64 {
    1_632_728_835_000 + 5_000 * i64::from(i)
}

fn config(db: &Influxd, name: &str) -> Config {
    let mut c = Config::v1(name);
    c.url = db.url();
    c.batch_size = 4;
    c.flush_interval = Duration::from_millis(100);
    c.retry_initial = Duration::from_millis(100);
    c.retry_max = Duration::from_millis(500);
    c.timeout = Duration::from_secs(2);
    c
}

/// Starts the sink on a fresh bus; returns the publisher side, the stats and the task.
fn start_sink(
    c: Config,
) -> (
    smart_meter_core::Publisher,
    Arc<SinkStats>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let bus = Bus::new(1024);
    let sub = bus.subscribe("influx");
    let stats = Arc::new(SinkStats::new(sub.dropped_counter()));
    let publisher = bus.publisher();
    drop(bus);
    let task = tokio::spawn(influxdb::run(c, sub, stats.clone()));
    (publisher, stats, task)
}

async fn finish(task: tokio::task::JoinHandle<anyhow::Result<()>>) {
    tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .expect("the sink ends after the bus closes")
        .unwrap()
        .unwrap();
}

/// Compares a result row with the expected values; numbers by value (InfluxDB writes the float
/// 12937.0 as `12937`; field types are checked separately with `SHOW FIELD KEYS`).
fn assert_row(got: &[Json], want: &[Json], what: &str) {
    let same = got.len() == want.len()
        && got
            .iter()
            .zip(want)
            .all(|(g, w)| match (g.as_f64(), w.as_f64()) {
                (Some(a), Some(b)) => a == b,
                _ => g == w,
            });
    assert!(same, "{what}: got {got:?}, want {want:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_written_to_influxdb_1x_read_back_exactly() {
    let mut db = Influxd::started_with_auth();
    // The first user may be created without credentials; everything after needs them.
    db.query(
        None,
        "CREATE USER admin WITH PASSWORD 'pa ss' WITH ALL PRIVILEGES",
    );
    db.login("admin", "pa ss");
    db.query(None, "CREATE DATABASE \"SmartMeter\"");

    let mut c = config(&db, "SmartMeter");
    c.username = Some("admin".into());
    c.password = Some("pa ss".into());
    c.rp = Some("autogen".into());
    let (publisher, stats, task) = start_sink(c);
    for i in 0..6 {
        publisher.publish(reading(i));
    }
    drop(publisher);
    finish(task).await;
    assert_eq!(stats.delivered.load(Ordering::Relaxed), 6);
    assert_eq!(stats.dropped.load(Ordering::Relaxed), 0);

    let (cols, rows) = db.select("SmartMeter", "SELECT * FROM \"smart_meter\" ORDER BY time");
    assert_eq!(
        cols,
        [
            "time",
            "0.0.96.1.0.255",
            "1.0.1.7.0.255",
            "1.0.1.8.0.255",
            "1.0.13.7.0.255",
            "1.0.2.7.0.255",
            "1.0.2.8.0.255",
            "1.0.31.7.0.255",
            "1.0.32.7.0.255",
            "meter",
            "protocol"
        ]
    );
    assert_eq!(rows.len(), 6);
    for (i, row) in (0u32..).zip(&rows) {
        let want = [
            json!(time_ms(i)),
            json!("KFM \"1\", a=b\\c"),
            json!(0.0),
            json!(12937.0 + f64::from(i)),
            json!(-0.95),
            json!(100.0 * f64::from(i)),
            json!(0.0),
            json!(0.05),
            json!(233.7),
            json!("evn"),
            json!("mbus-dlms"),
        ];
        assert_row(row, &want, &format!("row {i}"));
    }
    // Every number is a float field, the meter number a string field.
    let (_, fields) = db.select("SmartMeter", "SHOW FIELD KEYS FROM \"smart_meter\"");
    for f in &fields {
        let want = if f[0] == "0.0.96.1.0.255" {
            "string"
        } else {
            "float"
        };
        assert_eq!(f[1], want, "{f:?}");
    }
    db.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smartmeter_v1_preset_fills_the_predecessor_database_layout() {
    let mut db = Influxd::started();
    db.query(None, "CREATE DATABASE \"SmartMeter\"");
    let mut c = config(&db, "SmartMeter");
    c.preset = Preset::SmartmeterV1;
    let (publisher, stats, task) = start_sink(c);
    for i in 0..3 {
        publisher.publish(reading(i));
    }
    drop(publisher);
    finish(task).await;
    assert_eq!(stats.delivered.load(Ordering::Relaxed), 3);

    let (cols, rows) = db.select("SmartMeter", "SELECT * FROM \"Wirkenergie\"");
    assert_eq!(cols, ["time", "Bezug", "Lieferung"]);
    assert_row(
        &rows[2],
        &[json!(time_ms(2)), json!(12.939), json!(0.0)],
        "Wirkenergie",
    );
    let (cols, rows) = db.select("SmartMeter", "SELECT * FROM \"Momentanleistung\"");
    assert_eq!(cols, ["time", "Bezug", "Gesamt", "Lieferung"]);
    assert_row(
        &rows[2],
        &[json!(time_ms(2)), json!(0), json!(-200), json!(200)],
        "Momentanleistung",
    );
    let (_, types) = db.select("SmartMeter", "SHOW FIELD KEYS FROM \"Momentanleistung\"");
    assert!(types.iter().all(|t| t[1] == "integer"), "{types:?}");
    let (_, rows) = db.select("SmartMeter", "SELECT * FROM \"Spannung\"");
    assert_eq!(rows[0][1], json!(233.7));
    let (_, rows) = db.select("SmartMeter", "SELECT * FROM \"Strom\"");
    assert_eq!(rows[0][1], json!(0.05));
    let (_, rows) = db.select("SmartMeter", "SELECT * FROM \"Leistungsfaktor\"");
    assert_row(
        &rows[0],
        &[json!(time_ms(0)), json!(-0.95)],
        "Leistungsfaktor",
    );
    db.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_influxdb_loses_no_reading() {
    let mut db = Influxd::started();
    db.query(None, "CREATE DATABASE \"meters\"");
    let (publisher, stats, task) = start_sink(config(&db, "meters"));
    let total = 30u32;
    let wait_delivered = |n: u64| {
        let stats = stats.clone();
        async move {
            let t0 = Instant::now();
            while stats.delivered.load(Ordering::Relaxed) < n {
                assert!(t0.elapsed() < Duration::from_secs(30), "stuck below {n}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    for i in 0..10 {
        publisher.publish(reading(i));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_delivered(10).await;
    db.stop();
    // Readings keep coming while the database is down.
    for i in 10..20 {
        publisher.publish(reading(i));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        stats.retries.load(Ordering::Relaxed) >= 1,
        "writes to a stopped influxd must fail and be retried"
    );
    assert!(!stats.connected.load(Ordering::Relaxed));
    assert!(stats.queued.load(Ordering::Relaxed) >= 10);
    db.start();
    for i in 20..total {
        publisher.publish(reading(i));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(publisher);
    finish(task).await;
    assert_eq!(stats.delivered.load(Ordering::Relaxed), u64::from(total));
    assert_eq!(stats.dropped.load(Ordering::Relaxed), 0);
    assert_eq!(stats.queued.load(Ordering::Relaxed), 0);
    assert!(stats.connected.load(Ordering::Relaxed));

    let (_, rows) = db.select(
        "meters",
        "SELECT \"1.0.1.8.0.255\" FROM \"smart_meter\" ORDER BY time",
    );
    let got: Vec<(i64, f64)> = rows
        .iter()
        .map(|r| (r[0].as_i64().unwrap(), r[1].as_f64().unwrap()))
        .collect();
    let want: Vec<(i64, f64)> = (0..total)
        .map(|i| (time_ms(i), 12937.0 + f64::from(i)))
        .collect();
    assert_eq!(got, want);
    db.stop();
}
