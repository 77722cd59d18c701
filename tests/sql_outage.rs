//! The database down for a while, for PostgreSQL and MariaDB: the real gateway reads a DSMR
//! meter (TCP bridge) and writes to the SQL sink through a TCP proxy that the test cuts (at
//! start-up and in the middle of the run) and restores, while the shared database server keeps
//! serving the other tests. Every reading must be stored exactly once, none dropped.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;

use smart_meter_tests::dsmr::{indices, telegram};
use smart_meter_tests::gateway::Gateway;
use smart_meter_tests::proxy::Proxy;
use smart_meter_tests::tcp::TcpMeter;
use smart_meter_tests::{have, read_jsonl, wait, write_settings};

#[derive(Clone, Copy)]
enum Server {
    Postgres,
    MariaDb,
}

/// A database of its own on the shared server, dropped at the end.
struct Db {
    server: Server,
    name: String,
}

impl Server {
    fn addr(self) -> &'static str {
        match self {
            Server::Postgres => "127.0.0.1:5432",
            Server::MariaDb => "127.0.0.1:3306",
        }
    }

    /// Runs `sql` with the command-line client; returns the rows, tab-separated.
    fn run(self, db: Option<&str>, sql: &str) -> String {
        let mut cmd = match self {
            Server::Postgres => {
                assert!(have("psql"), "psql is needed (package postgresql-client)");
                let mut c = Command::new("psql");
                c.args([
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "postgres",
                    "-AtX",
                    "-v",
                    "ON_ERROR_STOP=1",
                ]);
                c.args(["-d", db.unwrap_or("postgres"), "-c", sql]);
                c
            }
            Server::MariaDb => {
                assert!(
                    have("mariadb"),
                    "mariadb is needed (package mariadb-client)"
                );
                let mut c = Command::new("mariadb");
                c.args(["-h", "127.0.0.1", "-u", "root", "-N", "-B"]);
                if let Some(db) = db {
                    c.args(["-D", db]);
                }
                c.args(["-e", sql]);
                c
            }
        };
        let o = cmd.output().expect("the database client runs");
        assert!(
            o.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn url(self, proxy: &str, db: &str) -> String {
        match self {
            Server::Postgres => format!("postgres://postgres@{proxy}/{db}"),
            Server::MariaDb => format!("mysql://root@{proxy}/{db}"),
        }
    }
}

impl Db {
    fn create(server: Server, test: &str) -> Db {
        let name = format!("sm_e2e_{test}_{}", std::process::id());
        server.run(None, &format!("DROP DATABASE IF EXISTS {name}"));
        server.run(None, &format!("CREATE DATABASE {name}"));
        Db { server, name }
    }

    /// The telegram numbers in the history table, in time order.
    fn stored(&self) -> Vec<u64> {
        self.server
            .run(
                Some(&self.name),
                "SELECT value FROM history WHERE code = '1.0.1.8.1.255' ORDER BY ts",
            )
            .lines()
            .map(|l| {
                let kwh: f64 = l.trim().parse().expect("a decimal");
                (kwh * 1000.0).round() as u64
            })
            .collect()
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| {
            self.server
                .run(None, &format!("DROP DATABASE IF EXISTS {}", self.name))
        });
    }
}

fn config(dir: &Path, meter: &str, url: &str) {
    write_settings(
        dir,
        &format!(
            r#"[t]
shutdown_grace = "60s"
[t.sources.p1]
protocol = "dsmr"
tcp = "{meter}"
[t.sinks.db]
type = "sql"
url = "{url}"
batch_size = 20
retry_max = "1s"
timeout = "5s"
[t.sinks.out]
type = "jsonl"
path = "{}"
"#,
            dir.join("out.jsonl").display()
        ),
    );
}

async fn database_down_at_start_and_midway_loses_no_reading(server: Server, test: &str) {
    let db = Db::create(server, test);
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(server.addr()).await;
    let mut meter = TcpMeter::bind().await;
    config(
        dir.path(),
        &meter.addr(),
        &server.url(&proxy.addr, &db.name),
    );

    // 1. Down when the gateway starts.
    proxy.cut();
    let gw = Gateway::start(dir.path(), "t").await;
    meter.accept().await;
    let sql = gw.sink("db");
    for i in 0..20 {
        meter.send(&telegram(i)).await;
    }
    gw.wait_delivered("out", 20).await;
    wait::until("connection attempts fail", wait::LIMIT, || {
        sql.retries.load(Ordering::Relaxed) >= 1 || sql.last_error.lock().unwrap().is_some()
    })
    .await;
    assert!(gw.is_running());
    assert_eq!(sql.delivered.load(Ordering::Relaxed), 0);
    proxy.restore();
    gw.wait_delivered("db", 20).await;

    // 2. Down in the middle of the run.
    proxy.cut();
    let retries = sql.retries.load(Ordering::Relaxed);
    for i in 20..40 {
        meter.send(&telegram(i)).await;
    }
    gw.wait_delivered("out", 40).await;
    wait::until(
        "writes fail while the database is down",
        wait::LIMIT,
        || sql.retries.load(Ordering::Relaxed) > retries,
    )
    .await;
    assert!(!sql.connected.load(Ordering::Relaxed));
    proxy.restore();
    for i in 40..60 {
        meter.send(&telegram(i)).await;
    }
    gw.wait_delivered("db", 60).await;
    assert!(gw.is_running());
    gw.stop().await.expect("clean shutdown");

    assert_eq!(sql.delivered.load(Ordering::Relaxed), 60);
    assert_eq!(sql.dropped.load(Ordering::Relaxed), 0);
    let want: Vec<u64> = (0..60).collect();
    assert_eq!(
        tokio::task::block_in_place(|| db.stored()),
        want,
        "every reading stored once"
    );
    assert_eq!(indices(&read_jsonl(&dir.path().join("out.jsonl"))), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_at_start_and_midway_loses_no_reading() {
    database_down_at_start_and_midway_loses_no_reading(Server::Postgres, "pg").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_down_at_start_and_midway_loses_no_reading() {
    database_down_at_start_and_midway_loses_no_reading(Server::MariaDb, "maria").await;
}
