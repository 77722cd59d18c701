//! A private InfluxDB 1.x (`influxd` of the Debian package `influxdb`, as the sink's own tests
//! use) on free ports with its data in a temporary folder. It can be stopped (SIGTERM) and
//! started again on the same port with the same data, to simulate an outage. Killed on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::http::{encode, request};

/// An InfluxDB 1.x server owned by one test.
pub struct Influxd {
    dir: tempfile::TempDir,
    config: PathBuf,
    port: u16,
    child: Option<Child>,
}

fn binary() -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin"] {
        let p = PathBuf::from(dir).join("influxd");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "influxd (InfluxDB 1.x) is not installed: apt-get install -y influxdb (scripts/test does)"
    )
}

impl Influxd {
    /// Prepares a server on free ports without starting it (a database that is down when the
    /// gateway starts).
    pub fn new() -> Influxd {
        let dir = tempfile::tempdir().unwrap();
        let port = crate::free_port();
        let rpc = crate::free_port();
        let d = dir.path().display();
        let config = dir.path().join("influxdb.conf");
        std::fs::write(
            &config,
            format!(
                r#"reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{d}/meta"
[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false
[retention]
  enabled = false
[shard-precreation]
  enabled = false
[monitor]
  store-enabled = false
[subscriber]
  enabled = false
[continuous_queries]
  enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
[logging]
  level = "warn"
"#
            ),
        )
        .unwrap();
        Influxd {
            dir,
            config,
            port,
            child: None,
        }
    }

    /// A server that is up.
    pub fn started() -> Influxd {
        let mut db = Influxd::new();
        db.start();
        db
    }

    /// The URL for the sink's `url`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts the server and waits until `/ping` answers.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "influxd already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("influxd.log"))
            .unwrap();
        let child = Command::new(binary())
            .arg("run")
            .arg("-config")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("influxd starts");
        self.child = Some(child);
        let t0 = Instant::now();
        while !matches!(request(self.port, "GET", "/ping"), Some((204, _))) {
            if t0.elapsed() > Duration::from_secs(60) {
                let log = std::fs::read_to_string(self.dir.path().join("influxd.log"))
                    .unwrap_or_default();
                panic!("influxd did not answer /ping within 60 s; its log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server as a service manager would (SIGTERM, SIGKILL after 10 s).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Runs an InfluxQL statement or query; returns the JSON answer (panics on an error).
    pub fn query(&self, db: Option<&str>, q: &str) -> Value {
        let mut path = format!("/query?epoch=ms&q={}", encode(q));
        if let Some(db) = db {
            path.push_str(&format!("&db={}", encode(db)));
        }
        let method = if q.starts_with("SELECT") || q.starts_with("SHOW") {
            "GET"
        } else {
            "POST"
        };
        let (status, body) = request(self.port, method, &path).expect("influxd answers");
        assert!((200..300).contains(&status), "{q}: {status} {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert!(v["results"][0]["error"].is_null(), "{q}: {body}");
        v
    }

    /// The rows of a `SELECT` (empty when the series does not exist).
    pub fn rows(&self, db: &str, q: &str) -> Vec<Vec<Value>> {
        let v = self.query(Some(db), q);
        v["results"][0]["series"][0]["values"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .map(|r| r.as_array().cloned().unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Default for Influxd {
    fn default() -> Self {
        Influxd::new()
    }
}

impl Drop for Influxd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
