//! A private InfluxDB 1.x (`influxd` of the Debian package `influxdb`) on free ports with its
//! data in a temporary folder, for the `influxdb` sink's tests and the end-to-end tests and
//! benchmarks. It can be stopped (SIGTERM) and started again on the same port with the same
//! data, to simulate an outage, and run with authentication on. Killed on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::free_port;
use crate::http::{encode, request};

/// An InfluxDB 1.x server owned by one test.
pub struct Influxd {
    dir: tempfile::TempDir,
    config: PathBuf,
    port: u16,
    child: Option<Child>,
    credentials: Option<(String, String)>,
}

fn binary() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    for dir in on_path
        .into_iter()
        .chain(["/usr/bin", "/usr/sbin", "/usr/local/bin"].map(PathBuf::from))
    {
        let p = dir.join("influxd");
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
        Influxd::prepare(false)
    }

    /// A server that is up, with authentication on (`auth-enabled = true`): create the first
    /// admin with `CREATE USER … WITH ALL PRIVILEGES`, then [`Influxd::login`].
    pub fn started_with_auth() -> Influxd {
        let mut db = Influxd::prepare(true);
        db.start();
        db
    }

    fn prepare(auth: bool) -> Influxd {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let rpc = free_port();
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
  auth-enabled = {auth}
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
            credentials: None,
        }
    }

    /// Sends these credentials with every later [`Influxd::query`].
    pub fn login(&mut self, user: &str, password: &str) {
        self.credentials = Some((user.to_string(), password.to_string()));
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
        if let Some((u, p)) = &self.credentials {
            path.push_str(&format!("&u={}&p={}", encode(u), encode(p)));
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

    /// The series of a `SELECT`: (columns, rows); panics when there is none.
    pub fn select(&self, db: &str, q: &str) -> (Vec<String>, Vec<Vec<Value>>) {
        let v = self.query(Some(db), q);
        let s = &v["results"][0]["series"][0];
        let cols = s["columns"]
            .as_array()
            .unwrap_or_else(|| panic!("no series for {q}: {v}"))
            .iter()
            .map(|c| c.as_str().unwrap_or_default().to_string())
            .collect();
        let rows = s["values"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .map(|r| r.as_array().cloned().unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default();
        (cols, rows)
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
