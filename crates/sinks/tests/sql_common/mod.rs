//! Shared scenarios of the SQL sink tests, run against SQLite, MariaDB and PostgreSQL.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

use smart_meter_core::stats::SinkStats;
use smart_meter_core::{Bus, Decimal, Key, MeterId, Obis, Publisher, Reading, Sample, Unit};
use smart_meter_sinks::queue::{Queue, SpoolConfig};
use smart_meter_sinks::sql::dialect::Dialect;
use smart_meter_sinks::sql::{self, Config, Layout, Mode};
use sqlx::{AnyConnection, AssertSqlSafe, Connection, Row};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// 2026-11-21T22:00:00Z, the start of a 5-minute bucket.
pub const T0: i64 = 1_795_298_400_000;

/// A reading of `meter` at `ts_ms` with the given (OBIS C, D, value, unit) samples.
pub fn reading(meter: &str, ts_ms: i64, samples: &[(u8, u8, Decimal, Option<Unit>)]) -> Reading {
    let mut r = Reading::new(MeterId::new(meter).unwrap(), "test");
    r.received_at = UNIX_EPOCH + Duration::from_millis(ts_ms as u64);
    for (c, d, v, u) in samples {
        r.samples.push(Sample::number(
            Key::Obis(Obis::new(1, 0, *c, *d, 0, 255)),
            *v,
            u.clone(),
        ));
    }
    r
}

/// The brochure telegram's eleven values (EVN example) with voltage `u1` (tenths of a volt)
/// and power factor `pf` (thousandths), plus the meter number as text.
pub fn evn_reading(meter: &str, ts_ms: i64, energy: i128, u1: i128, pf: i128) -> Reading {
    let mut r = reading(
        meter,
        ts_ms,
        &[
            (1, 8, Decimal::new(energy, 0), Some(Unit::WH)),
            (2, 8, Decimal::new(0, 0), Some(Unit::WH)),
            (1, 7, Decimal::new(250, 0), Some(Unit::W)),
            (2, 7, Decimal::new(0, 0), Some(Unit::W)),
            (32, 7, Decimal::new(u1, -1), Some(Unit::V)),
            (52, 7, Decimal::new(2301, -1), Some(Unit::V)),
            (72, 7, Decimal::new(2299, -1), Some(Unit::V)),
            (31, 7, Decimal::new(112, -2), Some(Unit::A)),
            (51, 7, Decimal::new(0, -2), Some(Unit::A)),
            (71, 7, Decimal::new(5, -2), Some(Unit::A)),
            (13, 7, Decimal::new(pf, -3), None),
        ],
    );
    r.samples
        .push(Sample::text(Key::Obis(Obis::METER_NUMBER), "181220000009"));
    r
}

/// A config for tests: short backoff and timeouts.
pub fn config(url: &str) -> Config {
    Config {
        url: url.to_string(),
        retry_max: Duration::from_millis(200),
        timeout: Duration::from_secs(5),
        drain_timeout: Duration::from_secs(10),
        ..Config::default()
    }
}

/// A running sink fed through a bus.
pub struct Running {
    pub publisher: Publisher,
    pub stats: Arc<SinkStats>,
    pub task: JoinHandle<anyhow::Result<()>>,
}

pub fn start(config: Config) -> Running {
    let bus = Bus::new(1024);
    let sub = bus.subscribe("db");
    let stats = Arc::new(SinkStats::new(sub.dropped_counter()));
    let publisher = bus.publisher();
    drop(bus);
    let task = tokio::spawn(sql::run(config, sub, stats.clone()));
    Running {
        publisher,
        stats,
        task,
    }
}

impl Running {
    /// Closes the bus and waits for the sink to flush and return.
    pub async fn finish(self) -> (anyhow::Result<()>, Arc<SinkStats>) {
        drop(self.publisher);
        let r = tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("the sink returns after the bus closes")
            .expect("the sink task does not panic");
        (r, self.stats)
    }
}

/// Runs a sink over `readings` and returns its counters.
pub async fn store(config: Config, readings: Vec<Reading>) -> Arc<SinkStats> {
    let run = start(config);
    for r in readings {
        run.publisher.publish(r);
    }
    let (r, stats) = run.finish().await;
    r.expect("the sink ends without error");
    stats
}

pub async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn connect(url: &str) -> AnyConnection {
    sqlx::any::install_default_drivers();
    AnyConnection::connect(url).await.expect("test connection")
}

/// (meter, ts in ms, code, value, value_text, unit) of every history row, in time and key order.
pub type HistoryRow = (
    String,
    i64,
    String,
    Option<Decimal>,
    Option<String>,
    Option<String>,
);

pub async fn history(url: &str, d: Dialect, table: &str) -> Vec<HistoryRow> {
    let mut c = connect(url).await;
    let sql = format!(
        "SELECT {}, {}, {}, {}, {}, {} FROM {} ORDER BY {}, {}, {}",
        d.ident("meter"),
        d.millis_expr("ts"),
        d.ident("code"),
        d.as_text("value"),
        d.ident("value_text"),
        d.ident("unit"),
        d.ident(table),
        d.ident("meter"),
        d.ident("ts"),
        d.ident("code"),
    );
    sqlx::query(AssertSqlSafe(sql))
        .fetch_all(&mut c)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let v: Option<String> = r.get(3);
            (
                r.get(0),
                r.get(1),
                r.get(2),
                v.map(|v| v.parse().unwrap()),
                r.get(4),
                r.get(5),
            )
        })
        .collect()
}

/// (meter, bucket start in ms, code, value, unit, samples) of every aggregate row.
pub type AggRow = (String, i64, String, Decimal, Option<String>, i64);

pub async fn aggregates(url: &str, d: Dialect, table: &str) -> Vec<AggRow> {
    let mut c = connect(url).await;
    let samples = match d {
        Dialect::MySql => format!("CAST({} AS SIGNED)", d.ident("samples")),
        _ => format!("CAST({} AS BIGINT)", d.ident("samples")),
    };
    let sql = format!(
        "SELECT {}, {}, {}, {}, {}, {samples} FROM {} ORDER BY {}, {}, {}",
        d.ident("meter"),
        d.millis_expr("ts"),
        d.ident("code"),
        d.as_text("value"),
        d.ident("unit"),
        d.ident(table),
        d.ident("meter"),
        d.ident("ts"),
        d.ident("code"),
    );
    sqlx::query(AssertSqlSafe(sql))
        .fetch_all(&mut c)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let v: String = r.get(3);
            (
                r.get(0),
                r.get(1),
                r.get(2),
                v.parse().unwrap(),
                r.get(4),
                r.get(5),
            )
        })
        .collect()
}

/// (timestamp, WIn … PF as text) of every row of a predecessor-layout table, by id.
pub async fn compat_rows(url: &str, d: Dialect, table: &str) -> Vec<(i64, Vec<String>)> {
    let mut c = connect(url).await;
    let cols = [
        "WIn", "WOut", "PIn", "POut", "U1", "U2", "U3", "I1", "I2", "I3", "PF",
    ];
    let ts = match d {
        Dialect::MySql => format!("CAST({} AS SIGNED)", d.ident("timestamp")),
        _ => format!("CAST({} AS BIGINT)", d.ident("timestamp")),
    };
    let list: Vec<String> = cols.iter().map(|c| d.as_text(c)).collect();
    let sql = format!(
        "SELECT {ts}, {} FROM {} ORDER BY {}",
        list.join(", "),
        d.ident(table),
        d.ident("id")
    );
    sqlx::query(AssertSqlSafe(sql))
        .fetch_all(&mut c)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let vals = (1..=cols.len()).map(|i| r.get::<String, _>(i)).collect();
            (r.get(0), vals)
        })
        .collect()
}

pub async fn schema_rows(url: &str, d: Dialect) -> Vec<(String, String, i64)> {
    let mut c = connect(url).await;
    let version = match d {
        Dialect::MySql => format!("CAST({} AS SIGNED)", d.ident("version")),
        _ => format!("CAST({} AS BIGINT)", d.ident("version")),
    };
    let sql = format!(
        "SELECT {}, {}, {version} FROM {} ORDER BY {}",
        d.ident("table_name"),
        d.ident("layout"),
        d.ident("smart_meter_schema"),
        d.ident("table_name")
    );
    sqlx::query(AssertSqlSafe(sql))
        .fetch_all(&mut c)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

/// Every sample lands in the history table exactly (decimals, text, units, times), the first
/// sample of each 5-minute bucket in the aggregate table, and both tables are recorded.
pub async fn stores_history_and_first_sample_per_bucket(url: &str, d: Dialect) {
    let mut readings = Vec::new();
    // Two buckets of meter "evn" (every 100 s), one reading of meter "other".
    for i in 0..6i64 {
        readings.push(evn_reading(
            "evn",
            T0 + i * 100_000 + 123,
            12_937 + i as i128,
            2337 + i as i128,
            -819,
        ));
    }
    readings.push(reading(
        "other",
        T0 + 5_000,
        &[(1, 8, dec("0.001"), Unit::from_symbol("kWh"))],
    ));
    let stats = store(config(url), readings).await;
    assert_eq!(stats.delivered.load(Ordering::Relaxed), 7);
    assert_eq!(stats.dropped.load(Ordering::Relaxed), 0);
    assert_eq!(stats.queued.load(Ordering::Relaxed), 0);

    let rows = history(url, d, "history").await;
    assert_eq!(rows.len(), 6 * 12 + 1);
    let first: Vec<&HistoryRow> = rows
        .iter()
        .filter(|r| r.0 == "evn" && r.1 == T0 + 123)
        .collect();
    assert_eq!(first.len(), 12);
    let get = |code: &str| first.iter().find(|r| r.2 == code).unwrap();
    assert_eq!(get("1.0.1.8.0.255").3, Some(dec("12937")));
    assert_eq!(get("1.0.1.8.0.255").5.as_deref(), Some("Wh"));
    assert_eq!(get("1.0.32.7.0.255").3, Some(dec("233.7")));
    assert_eq!(get("1.0.32.7.0.255").5.as_deref(), Some("V"));
    assert_eq!(get("1.0.13.7.0.255").3, Some(dec("-0.819")));
    assert_eq!(get("1.0.13.7.0.255").5, None);
    assert_eq!(get("1.0.31.7.0.255").3, Some(dec("1.12")));
    let number = get("0.0.96.1.0.255");
    assert_eq!(
        (number.3, number.4.as_deref()),
        (None, Some("181220000009"))
    );
    let other = rows.iter().find(|r| r.0 == "other").unwrap();
    assert_eq!(
        (other.3, other.5.as_deref()),
        (Some(dec("0.001")), Some("kWh"))
    );

    let agg = aggregates(url, d, "history_aggregate").await;
    let volts: Vec<(i64, Decimal, i64)> = agg
        .iter()
        .filter(|r| r.0 == "evn" && r.2 == "1.0.32.7.0.255")
        .map(|r| (r.1, r.3, r.5))
        .collect();
    // Bucket T0 holds readings 0–2, bucket T0+300 s readings 3–5; the first of each.
    assert_eq!(
        volts,
        [(T0, dec("233.7"), 3), (T0 + 300_000, dec("234.0"), 3)]
    );
    assert_eq!(
        agg.iter().filter(|r| r.0 == "evn").count(),
        22,
        "11 numeric keys × 2 buckets"
    );
    assert!(
        agg.iter().all(|r| r.2 != "0.0.96.1.0.255"),
        "text is not aggregated"
    );
    assert_eq!(
        schema_rows(url, d).await,
        [
            ("history".to_string(), "normalized-history".to_string(), 1),
            (
                "history_aggregate".to_string(),
                "normalized-aggregate".to_string(),
                1
            )
        ]
    );
}

/// `last`, `mean`, `min`, `max` over one bucket, each into its own table.
pub async fn aggregates_in_every_mode(url: &str, d: Dialect) {
    let volts = ["230.1", "229.9", "231.4", "230.0"];
    let readings = || {
        volts
            .iter()
            .enumerate()
            .map(|(i, v)| {
                reading(
                    "m",
                    T0 + i as i64 * 60_000,
                    &[(32, 7, dec(v), Some(Unit::V))],
                )
            })
            .collect::<Vec<_>>()
    };
    for (mode, expected) in [
        (Mode::Last, "230.0"),
        (Mode::Mean, "230.35"),
        (Mode::Min, "229.9"),
        (Mode::Max, "231.4"),
    ] {
        let table = format!("agg_{}", mode.as_str());
        let c = Config {
            aggregate: mode,
            aggregate_table: Some(table.clone()),
            ..config(url)
        };
        store(c, readings()).await;
        let rows = aggregates(url, d, &table).await;
        assert_eq!(rows.len(), 1, "{mode:?}");
        assert_eq!(
            (rows[0].1, rows[0].3, rows[0].5),
            (T0, dec(expected), 4),
            "{mode:?}"
        );
        assert_eq!(rows[0].4.as_deref(), Some("V"));
    }
    // The history table is shared and each run's rows were stored once.
    assert_eq!(history(url, d, "history").await.len(), 4);
}

/// A restart within a bucket merges with what the first run stored.
pub async fn restart_within_a_bucket_merges(url: &str, d: Dialect) {
    let c = || Config {
        aggregate: Mode::Mean,
        aggregate_table: Some("agg_restart".into()),
        history_table: Some("hist_restart".into()),
        ..config(url)
    };
    let p = |i: i64, w: &str| reading("m", T0 + i * 10_000, &[(1, 7, dec(w), Some(Unit::W))]);
    store(c(), vec![p(0, "100"), p(1, "200")]).await;
    store(c(), vec![p(2, "600"), p(3, "300"), p(40, "50")]).await;
    let rows = aggregates(url, d, "agg_restart").await;
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0].1, rows[0].3, rows[0].5), (T0, dec("300"), 4));
    assert_eq!(
        (rows[1].1, rows[1].3, rows[1].5),
        (T0 + 300_000, dec("50"), 1)
    );
    // The first bucket of the first run.
    let first = Config {
        aggregate_table: Some("agg_restart_first".into()),
        history_table: Some("hist_restart_first".into()),
        ..config(url)
    };
    store(first.clone(), vec![p(5, "1")]).await;
    store(first, vec![p(6, "2")]).await;
    let rows = aggregates(url, d, "agg_restart_first").await;
    assert_eq!((rows[0].3, rows[0].5), (dec("1"), 2));
}

/// The predecessor's tables: `history` with every complete reading, `historyDebounced` with the
/// first reading per 5-minute bucket; incomplete readings are dropped and counted.
pub async fn writes_the_predecessor_tables(url: &str, d: Dialect) {
    let c = Config {
        layout: Layout::EvnDecrypter,
        ..config(url)
    };
    let mut readings: Vec<Reading> = (0..8i64)
        .map(|i| {
            evn_reading(
                "evn",
                T0 + i * 60_000 + 400,
                12_937 + i as i128 * 10,
                2337 + i as i128,
                -819,
            )
        })
        .collect();
    readings.push(reading(
        "evn",
        T0 + 1_000,
        &[(1, 8, dec("5"), Some(Unit::WH))],
    ));
    let stats = store(c, readings).await;
    assert_eq!(stats.delivered.load(Ordering::Relaxed), 8);
    assert_eq!(stats.dropped.load(Ordering::Relaxed), 1);
    let hist = compat_rows(url, d, "history").await;
    assert_eq!(hist.len(), 8);
    let (ts, vals) = &hist[0];
    assert_eq!(*ts, (T0 + 400) / 1000);
    let nums: Vec<f64> = vals.iter().map(|v| v.parse().unwrap()).collect();
    assert_eq!(
        nums,
        [12937.0, 0.0, 250.0, 0.0, 233.7, 230.1, 229.9, 1.12, 0.0, 0.05, -0.819]
    );
    let deb = compat_rows(url, d, "historyDebounced").await;
    // Readings 0–4 fall into bucket T0, 5–7 into T0 + 300 s: the first of each.
    let got: Vec<(i64, f64)> = deb
        .iter()
        .map(|(ts, v)| (*ts, v[0].parse().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            ((T0 + 400) / 1000, 12937.0),
            ((T0 + 300_400) / 1000, 12987.0)
        ]
    );
    assert_eq!(
        schema_rows(url, d).await,
        [
            ("history".to_string(), "evn-decrypter".to_string(), 1),
            (
                "historyDebounced".to_string(),
                "evn-decrypter".to_string(),
                1
            )
        ]
    );
}

/// A table recorded with another layout stops the sink with an error naming it.
pub async fn refuses_a_table_of_another_layout(url: &str) {
    store(
        config(url),
        vec![reading("m", T0, &[(1, 7, dec("1"), None)])],
    )
    .await;
    let c = Config {
        layout: Layout::EvnDecrypter,
        aggregate_table: Some("other_debounced".into()),
        ..config(url)
    };
    let run = start(c);
    run.publisher.publish(evn_reading("m", T0, 1, 2300, 1000));
    let (r, _) = run.finish().await;
    let e = r.expect_err("layout mismatch is fatal").to_string();
    assert!(
        e.contains("history") && e.contains("normalized-history"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------------------------

/// A database created for one test and dropped afterwards.
pub struct TestDb {
    pub url: String,
    admin_url: String,
    name: String,
    dialect: Dialect,
}

fn unique_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000_000
    )
}

impl TestDb {
    /// A fresh database on the server of `env` (default `default`).
    pub async fn create(env: &str, default: &str, dialect: Dialect, test: &str) -> TestDb {
        let admin_url = std::env::var(env).unwrap_or_else(|_| default.to_string());
        let (server, how) = match dialect {
            Dialect::MySql => ("MariaDB/MySQL", "`service mariadb start`"),
            _ => (
                "PostgreSQL",
                "`service postgresql start` (or pg_ctlcluster <version> main start)",
            ),
        };
        sqlx::any::install_default_drivers();
        let mut admin = match tokio::time::timeout(Duration::from_secs(10), AnyConnection::connect(&admin_url)).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => panic!(
                "{server} is not reachable at {admin_url} ({e}). Start it with {how} — the project's \
                 test script starts it where missing — or set {env} to a server's URL."
            ),
            Err(_) => panic!("{server} at {admin_url} did not answer within 10 s; start it with {how} or set {env}."),
        };
        let name = unique_name(&format!("sm_{test}"));
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
        admin.close().await.ok();
        let base = match admin_url.rfind('/') {
            Some(i) if i > admin_url.find("://").map_or(0, |j| j + 2) => &admin_url[..i],
            _ => admin_url.as_str(),
        };
        TestDb {
            url: format!("{base}/{name}"),
            admin_url,
            name,
            dialect,
        }
    }

    /// The URL through another host:port (a proxy).
    pub fn url_via(&self, addr: SocketAddr) -> String {
        let (scheme, rest) = self.url.split_once("://").unwrap();
        let (auth_host, path) = rest.split_once('/').unwrap();
        let user = auth_host
            .rsplit_once('@')
            .map(|(u, _)| format!("{u}@"))
            .unwrap_or_default();
        format!("{scheme}://{user}{addr}/{path}")
    }

    /// The server's address from the URL.
    pub async fn server_addr(&self) -> SocketAddr {
        let rest = self.url.split_once("://").unwrap().1;
        let host = rest.split('/').next().unwrap();
        let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
        let default_port = if self.dialect == Dialect::MySql {
            3306
        } else {
            5432
        };
        let host = if host.contains(':') {
            host.to_string()
        } else {
            format!("{host}:{default_port}")
        };
        tokio::net::lookup_host(host).await.unwrap().next().unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let sql = match self.dialect {
            Dialect::Postgres => format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            _ => format!("DROP DATABASE IF EXISTS {}", self.name),
        };
        // Drop runs inside the test's runtime: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut c) = AnyConnection::connect(&admin_url).await {
                    let _ = sqlx::query(AssertSqlSafe(sql)).execute(&mut c).await;
                    let _ = c.close().await;
                }
            });
        })
        .join();
    }
}

/// A TCP proxy between the sink and a server that the test can cut and restore.
pub struct Proxy {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (up2, conns2) = (up.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !up2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                conns2.lock().unwrap().push(task);
            }
        });
        Proxy {
            addr,
            up,
            conns,
            accept,
        }
    }

    /// Closes every connection and refuses new ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for t in self.conns.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

/// A server outage: readings published while the proxy is cut are queued, retried with
/// backoff and all stored once it is back.
pub async fn survives_a_server_outage(db: &TestDb, d: Dialect) {
    let proxy = Proxy::start(db.server_addr().await).await;
    let run = start(config(&db.url_via(proxy.addr)));
    let p = |i: i64| {
        reading(
            "m",
            T0 + i * 1_000,
            &[(1, 8, Decimal::new(i as i128, 0), Some(Unit::WH))],
        )
    };
    for i in 0..5 {
        run.publisher.publish(p(i));
    }
    let stats = run.stats.clone();
    wait_for("the first readings", || {
        stats.delivered.load(Ordering::Relaxed) == 5
    })
    .await;
    assert!(stats.connected.load(Ordering::Relaxed));

    proxy.cut();
    for i in 5..50 {
        run.publisher.publish(p(i));
    }
    wait_for("retries", || stats.retries.load(Ordering::Relaxed) >= 3).await;
    assert!(!stats.connected.load(Ordering::Relaxed));
    assert!(stats.queued.load(Ordering::Relaxed) >= 45);
    assert!(stats.last_error.lock().unwrap().is_some());

    proxy.restore();
    wait_for("the queued readings", || {
        stats.delivered.load(Ordering::Relaxed) == 50
    })
    .await;
    let (r, stats) = run.finish().await;
    r.unwrap();
    assert_eq!(stats.dropped.load(Ordering::Relaxed), 0);
    let rows = history(&db.url, d, "history").await;
    let values: Vec<Decimal> = rows.iter().map(|r| r.3.unwrap()).collect();
    assert_eq!(values, (0..50i64).map(Decimal::from).collect::<Vec<_>>());
    assert_eq!(aggregates(&db.url, d, "history_aggregate").await.len(), 1);
}

/// A table of the same name without the layout's columns stops the sink.
pub async fn refuses_a_foreign_table(url: &str, d: Dialect) {
    let mut c = connect(url).await;
    sqlx::query(AssertSqlSafe(format!(
        "CREATE TABLE {} ({} INTEGER)",
        d.ident("history"),
        d.ident("x")
    )))
    .execute(&mut c)
    .await
    .unwrap();
    let run = start(config(url));
    run.publisher
        .publish(reading("m", T0, &[(1, 7, dec("1"), None)]));
    let (r, stats) = run.finish().await;
    let last = stats.last_error.lock().unwrap().clone();
    let e = r
        .expect_err(&format!("a foreign table is fatal; last error {last:?}"))
        .to_string();
    assert!(
        e.contains("history") && e.contains("lacks the columns"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------------
// Spool
// ---------------------------------------------------------------------------------------------

/// A URL of `d` on a local port nobody listens on.
pub async fn closed_port_url(d: Dialect) -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    match d {
        Dialect::MySql => format!("mysql://root@127.0.0.1:{port}/test"),
        _ => format!("postgres://postgres@127.0.0.1:{port}/test"),
    }
}

/// The items in a sink's spool file, oldest first (read without changing it).
pub fn spooled_items(dir: &std::path::Path, sink: &str) -> Vec<sql::db::Item> {
    let mut q = Queue::open(
        usize::MAX,
        &SpoolConfig {
            dir: dir.to_path_buf(),
            name: sink.to_string(),
            max_bytes: u64::MAX,
        },
    )
    .unwrap();
    std::iter::from_fn(|| q.take())
        .map(|t| sql::record::decode(&t.data).expect("a spooled record decodes"))
        .collect()
}

/// Everything the sink wrote, for comparing two databases exactly.
async fn contents(url: &str, d: Dialect, layout: Layout) -> Vec<String> {
    match layout {
        Layout::Normalized => {
            let h = history(url, d, "history").await;
            let a = aggregates(url, d, "history_aggregate").await;
            let mut out: Vec<String> = h.iter().map(|r| format!("{r:?}")).collect();
            out.extend(a.iter().map(|r| format!("{r:?}")));
            out
        }
        Layout::EvnDecrypter => {
            let mut out = Vec::new();
            for t in ["history", "historyDebounced"] {
                out.extend(
                    compat_rows(url, d, t)
                        .await
                        .iter()
                        .map(|r| format!("{t} {r:?}")),
                );
            }
            out
        }
    }
}

/// Readings for the spool scenario: two 5-minute buckets of an EVN meter (decimals of several
/// scales, a negative power factor, the meter number as text) and, for the normalised layout,
/// a second meter with extreme decimals.
fn spool_readings(layout: Layout) -> Vec<Reading> {
    let mut readings: Vec<Reading> = (0..8i64)
        .map(|i| {
            evn_reading(
                "evn",
                T0 + i * 50_000 + 7,
                12_937 + i as i128 * 3,
                2337 + i as i128,
                -819 + i as i128,
            )
        })
        .collect();
    if layout == Layout::Normalized {
        readings.push(reading(
            "other",
            T0 + 5_000,
            &[
                (1, 8, dec("0.000000001"), Unit::from_symbol("kWh")),
                (1, 7, dec("-12345678901234567890.5"), None),
            ],
        ));
    }
    readings
}

/// The database is unreachable for a whole run with `spool_dir`: nothing is dropped and the
/// spool holds every reading and closed bucket. The next run, with the database back, stores
/// all of them exactly once — the tables equal those of a run that could write at once
/// (`reference`) — and a third run finds nothing left. `repair` runs between runs 1 and 2.
pub async fn spooled_readings_are_stored_once_at_the_next_start(
    down: &str,
    up: &str,
    reference: &str,
    d: Dialect,
    layout: Layout,
    repair: impl FnOnce(),
) {
    let spool = tempfile::tempdir().unwrap();
    let readings = spool_readings(layout);
    let n = readings.len() as u64;
    let base = |url: &str| Config {
        layout,
        aggregate: Mode::Mean,
        ..config(url)
    };
    let spooled = |url: &str| Config {
        spool_dir: Some(spool.path().to_path_buf()),
        ..base(url)
    };
    let stats = store(base(reference), readings.clone()).await;
    assert_eq!(stats.delivered.load(Ordering::Relaxed), n);
    let expected = contents(reference, d, layout).await;
    assert!(!expected.is_empty());

    // Run 1: the database cannot be reached.
    let stats = store(spooled(down), readings.clone()).await;
    let buckets = if layout == Layout::Normalized { 3 } else { 2 };
    assert_eq!(stats.delivered.load(Ordering::Relaxed), 0);
    assert_eq!(
        stats.dropped.load(Ordering::Relaxed),
        0,
        "spooled, not dropped"
    );
    assert_eq!(stats.queued.load(Ordering::Relaxed), n as i64 + buckets);
    assert!(stats.retries.load(Ordering::Relaxed) >= 1);
    let items = spooled_items(spool.path(), "db");
    let (rows, aggs): (Vec<_>, Vec<_>) = items
        .into_iter()
        .partition(|i| !matches!(i, sql::db::Item::Aggregate(_)));
    assert_eq!(aggs.len() as i64, buckets);
    let want: Vec<String> = readings
        .iter()
        .map(|r| match layout {
            Layout::Normalized => {
                format!("{:?}", sql::db::Item::History(sql::encode::history_rows(r)))
            }
            Layout::EvnDecrypter => format!(
                "{:?}",
                sql::db::Item::CompatHistory(Box::new(sql::encode::compat_row(r).unwrap()))
            ),
        })
        .collect();
    let got: Vec<String> = rows.iter().map(|i| format!("{i:?}")).collect();
    assert_eq!(got, want, "the spool holds every reading exactly");

    // Run 2: the database is back; the spool goes first, nothing new arrives.
    repair();
    let stats = store(spooled(up), Vec::new()).await;
    assert_eq!(stats.delivered.load(Ordering::Relaxed), n);
    assert_eq!(stats.dropped.load(Ordering::Relaxed), 0);
    assert_eq!(stats.queued.load(Ordering::Relaxed), 0);
    assert_eq!(contents(up, d, layout).await, expected);
    let file = spool.path().join("db.spool");
    assert_eq!(
        std::fs::metadata(&file).unwrap().len(),
        0,
        "the spool is empty"
    );

    // Run 3: nothing is stored twice.
    let stats = store(spooled(up), Vec::new()).await;
    assert_eq!(stats.delivered.load(Ordering::Relaxed), 0);
    assert_eq!(contents(up, d, layout).await, expected);
}
