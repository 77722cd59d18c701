//! Test helpers (dev-dependency only): a real Mosquitto broker per test, and an MQTT
//! [`Collector`] that records what arrives on a set of topic filters.
//!
//! # Mosquitto
//! [`Mosquitto::new`] finds a free port (binds `127.0.0.1:0` and releases it), writes a config
//! into a temporary folder (`listener <port> 127.0.0.1`, `allow_anonymous true`, persistence on
//! in that folder so persistent sessions survive a restart), starts `mosquitto -c <file>` and
//! waits until it accepts connections. [`Mosquitto::stop`] (SIGTERM: the broker saves its
//! sessions), [`Mosquitto::kill`] (SIGKILL: it does not) and [`Mosquitto::start`] (again, on the
//! same port) simulate outages. The process is killed on drop.
//!
//! The broker binary is looked up as `$MOSQUITTO`, then `/usr/sbin/mosquitto`, then `mosquitto`
//! on `PATH`. When none exists the test panics saying how to install it (`scripts/test` does).
//!
//! # Collector
//! [`Collector::start`] connects a persistent-session subscriber (QoS 1, re-subscribing on every
//! connect, so it survives broker restarts) and keeps every message in arrival order. Waits are
//! bounded by generous timeouts that only guard against hangs; tests never assert on timing.
//!
//! # InfluxDB
//! [`influxd::Influxd`] runs a private InfluxDB 1.x the same way (free ports, temporary data,
//! stop/start for outages, optional authentication) and queries it with a small blocking
//! HTTP client ([`http`]).

pub mod http;
pub mod influxd;

use std::fs;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use tokio::sync::watch;

/// How long to wait for a broker to accept connections before failing the test.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A Mosquitto broker owned by one test.
pub struct Mosquitto {
    port: u16,
    dir: tempfile::TempDir,
    config: PathBuf,
    binary: PathBuf,
    child: Option<Child>,
    starts: u32,
    tls: Option<(u16, tempfile::TempDir)>,
}

impl Mosquitto {
    /// Starts a broker on a free port of 127.0.0.1 with persistence in a temporary folder.
    ///
    /// # Panics
    /// When mosquitto is not installed or does not start; the message says why.
    pub fn new() -> Mosquitto {
        Self::with_config("")
    }

    /// Like [`new`](Self::new), with extra lines appended to the broker config (e.g.
    /// `max_queued_messages 10000`).
    ///
    /// # Panics
    /// As [`new`](Self::new).
    pub fn with_config(extra: &str) -> Mosquitto {
        let binary = find_binary();
        let dir = tempfile::Builder::new()
            .prefix("mosquitto-test-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary folder for mosquitto: {e}"));
        let port = free_port();
        let config = write_config(dir.path(), port, extra);
        let mut m = Mosquitto {
            port,
            dir,
            config,
            binary,
            child: None,
            starts: 0,
            tls: None,
        };
        // A port can be taken between our probe and mosquitto's bind; try a few.
        let mut errors = Vec::new();
        for _ in 0..5 {
            match m.try_start() {
                Ok(()) => return m,
                Err(e) => errors.push(e),
            }
            m.port = free_port();
            m.config = write_config(m.dir.path(), m.port, extra);
        }
        panic!("mosquitto did not start: {}", errors.join("; "));
    }

    /// A broker with a plain listener ([`url`](Self::url)) and a TLS listener
    /// ([`tls_url`](Self::tls_url)) whose certificate (for `127.0.0.1` and `localhost`) is
    /// signed by a fresh test CA ([`ca_file`](Self::ca_file)). Certificates are made with the
    /// `openssl` command.
    ///
    /// # Panics
    /// When openssl or mosquitto is missing or the broker does not start.
    pub fn with_tls() -> Mosquitto {
        let certs = tempfile::Builder::new()
            .prefix("mosquitto-tls-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary folder: {e}"));
        make_certs(certs.path());
        let mut errors = Vec::new();
        for _ in 0..3 {
            let tls_port = free_port();
            let extra = format!(
                "listener {tls_port} 127.0.0.1\n\
                 cafile {dir}/ca.crt\n\
                 certfile {dir}/server.crt\n\
                 keyfile {dir}/server.key\n",
                dir = certs.path().display()
            );
            let attempt = std::panic::catch_unwind(|| Self::with_config(&extra));
            match attempt {
                Ok(mut m) => {
                    m.tls = Some((tls_port, certs));
                    return m;
                }
                Err(e) => errors.push(
                    e.downcast_ref::<String>()
                        .cloned()
                        .unwrap_or_else(|| "mosquitto did not start".into()),
                ),
            }
        }
        panic!("mosquitto with TLS did not start: {}", errors.join("; "));
    }

    /// `mqtts://127.0.0.1:<tls port>` of a broker made by [`with_tls`](Self::with_tls).
    ///
    /// # Panics
    /// When the broker has no TLS listener.
    pub fn tls_url(&self) -> String {
        match &self.tls {
            Some((port, _)) => format!("mqtts://127.0.0.1:{port}"),
            None => panic!("this broker has no TLS listener; use Mosquitto::with_tls()"),
        }
    }

    /// The test CA certificate (PEM) that signed the TLS listener's certificate.
    ///
    /// # Panics
    /// When the broker has no TLS listener.
    pub fn ca_file(&self) -> PathBuf {
        match &self.tls {
            Some((_, dir)) => dir.path().join("ca.crt"),
            None => panic!("this broker has no TLS listener; use Mosquitto::with_tls()"),
        }
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `mqtt://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// Whether the broker process is running.
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Stops the broker with SIGTERM and waits for it to exit; it saves its persistent sessions
    /// and queued messages first.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            wait_or_kill(&mut child, Duration::from_secs(10));
        }
    }

    /// Kills the broker with SIGKILL (nothing is saved) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same port, with what it saved when it last stopped.
    ///
    /// # Panics
    /// When it is already running or does not come up.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "mosquitto is already running");
        if let Err(e) = self.try_start() {
            panic!("mosquitto did not start again on port {}: {e}", self.port);
        }
    }

    /// The broker's log so far (its stderr), for failure messages.
    pub fn log(&self) -> String {
        let mut s = String::new();
        for n in 0..=self.starts {
            if let Ok(mut f) = fs::File::open(self.dir.path().join(format!("mosquitto.{n}.log"))) {
                let _ = f.read_to_string(&mut s);
            }
        }
        s
    }

    fn try_start(&mut self) -> Result<(), String> {
        self.starts += 1;
        let log_path = self
            .dir
            .path()
            .join(format!("mosquitto.{}.log", self.starts));
        let log = fs::File::create(&log_path).map_err(|e| format!("cannot create log: {e}"))?;
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.binary.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if let Some(c) = &mut self.child {
                if let Ok(Some(status)) = c.try_wait() {
                    self.child = None;
                    let log = fs::read_to_string(&log_path).unwrap_or_default();
                    return Err(format!("mosquitto exited with {status}: {log}"));
                }
            }
            if Instant::now() > deadline {
                self.kill();
                return Err("mosquitto did not accept connections within 15 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Default for Mosquitto {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A test CA and a server certificate for 127.0.0.1/localhost signed by it, in `dir`.
fn make_certs(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| {
                panic!("the TLS tests need the openssl command (apt-get install openssl): {e}")
            });
        assert!(
            out.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "3",
        "-subj",
        "/CN=smart-meter test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run(&ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    run(&csr);
    fs::write(
        dir.join("server.ext"),
        "basicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\n\
         subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap_or_else(|e| panic!("cannot write server.ext: {e}"));
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "3",
        "-extfile",
        "server.ext",
    ]);
}

fn find_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("MOSQUITTO") {
        return PathBuf::from(p);
    }
    let sbin = PathBuf::from("/usr/sbin/mosquitto");
    if sbin.is_file() {
        return sbin;
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join("mosquitto");
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "mosquitto is not installed: these tests need a real MQTT broker. Install it with \
         `apt-get install -y mosquitto` (scripts/test does), or point $MOSQUITTO at the binary."
    );
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0")
        .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0 to find a free port: {e}"));
    l.local_addr()
        .unwrap_or_else(|e| panic!("no local address: {e}"))
        .port()
}

fn write_config(dir: &Path, port: u16, extra: &str) -> PathBuf {
    let path = dir.join("mosquitto.conf");
    // Started as root, mosquitto switches to the `mosquitto` user, which cannot write our
    // temporary folder; tell it to stay who we are.
    let owner_is_root = {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(dir).map(|m| m.uid() == 0).unwrap_or(false)
    };
    let user = if owner_is_root { "user root\n" } else { "" };
    // autosave_on_changes with an interval of 1 saves after every change, so even a killed
    // broker remembers sessions and subscriptions made before the kill. The price: the broker
    // rewrites and fsyncs its database after every message, one message per save, a few
    // hundred to a few thousand messages/s. Measurements must override it (later lines of
    // `extra` replace these values).
    let text = format!(
        "listener {port} 127.0.0.1\n\
         allow_anonymous true\n\
         persistence true\n\
         persistence_location {}/\n\
         autosave_interval 1\n\
         autosave_on_changes true\n\
         max_queued_messages 100000\n\
         log_dest stderr\n\
         log_type error\n\
         log_type warning\n\
         log_type notice\n\
         log_type information\n\
         {user}{extra}\n",
        dir.display()
    );
    fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write mosquitto config: {e}"));
    path
}

fn wait_or_kill(child: &mut Child, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
        }
    }
}

/// One message seen by a [`Collector`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// The topic.
    pub topic: String,
    /// The payload.
    pub payload: Vec<u8>,
    /// The retain flag as delivered (set for retained messages sent on subscribe).
    pub retain: bool,
}

impl Received {
    /// The payload as UTF-8 (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

/// A subscriber that records every message on its filters, across broker restarts.
pub struct Collector {
    messages: Arc<Mutex<Vec<Received>>>,
    subscribed: watch::Receiver<u64>,
    task: tokio::task::JoinHandle<()>,
    client: AsyncClient,
}

impl Collector {
    /// Connects as `client_id` with a persistent session and subscribes to `filters` at QoS 1.
    /// Returns once the first subscription is acknowledged.
    ///
    /// # Panics
    /// When the broker does not acknowledge the subscription within 15 s.
    pub async fn start(url: &str, client_id: &str, filters: &[&str]) -> Collector {
        let (host, port) = host_port(url);
        let mut opts = MqttOptions::new(client_id, host, port);
        opts.set_clean_session(false);
        opts.set_keep_alive(Duration::from_secs(5));
        opts.set_max_packet_size(1 << 20, 1 << 20);
        let (client, eventloop) = AsyncClient::new(opts, 1000);
        let messages = Arc::new(Mutex::new(Vec::new()));
        let (tx, mut subscribed) = watch::channel(0u64);
        let filters: Vec<String> = filters.iter().map(|s| s.to_string()).collect();
        let task = tokio::spawn(collect(
            eventloop,
            client.clone(),
            filters,
            messages.clone(),
            tx,
        ));
        let ok = matches!(
            tokio::time::timeout(START_TIMEOUT, subscribed.wait_for(|n| *n > 0)).await,
            Ok(Ok(_))
        );
        assert!(
            ok,
            "the collector's subscription was not acknowledged within 15 s"
        );
        Collector {
            messages,
            subscribed,
            task,
            client,
        }
    }

    /// Every message so far, in arrival order.
    pub fn messages(&self) -> Vec<Received> {
        self.messages.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Messages on exactly `topic`, in arrival order.
    pub fn on(&self, topic: &str) -> Vec<Received> {
        self.messages()
            .into_iter()
            .filter(|m| m.topic == topic)
            .collect()
    }

    /// Forgets what was recorded so far.
    pub fn clear(&self) {
        if let Ok(mut m) = self.messages.lock() {
            m.clear();
        }
    }

    /// Waits until `done` holds for the messages so far, at most `timeout` (a hang guard).
    /// Returns whether it held.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&[Received]) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let ok = self.messages.lock().map(|m| done(&m)).unwrap_or(false);
            if ok {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until at least `n` messages arrived (at most `timeout`); returns whether they did.
    pub async fn wait_count(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |m| m.len() >= n).await
    }

    /// Waits until the subscription has been (re-)acknowledged after the broker restarted, i.e.
    /// more than `acks_seen` times in total. Returns whether it was.
    pub async fn wait_subscribed(&mut self, acks_seen: u64, timeout: Duration) -> bool {
        matches!(
            tokio::time::timeout(timeout, self.subscribed.wait_for(|n| *n > acks_seen)).await,
            Ok(Ok(_))
        )
    }

    /// How many subscription acknowledgements arrived so far.
    pub fn subscription_acks(&self) -> u64 {
        *self.subscribed.borrow()
    }

    /// Disconnects and stops the background task.
    pub async fn stop(self) {
        let _ = self.client.disconnect().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.task.abort();
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn collect(
    mut eventloop: EventLoop,
    client: AsyncClient,
    filters: Vec<String>,
    messages: Arc<Mutex<Vec<Received>>>,
    subscribed: watch::Sender<u64>,
) {
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                for f in &filters {
                    let _ = client.try_subscribe(f.clone(), QoS::AtLeastOnce);
                }
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                subscribed.send_modify(|n| *n += 1);
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if let Ok(mut m) = messages.lock() {
                    m.push(Received {
                        topic: p.topic.clone(),
                        payload: p.payload.to_vec(),
                        retain: p.retain,
                    });
                }
            }
            Ok(_) => {}
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Publishes one message and waits until the broker acknowledged it (QoS 1).
///
/// # Panics
/// When the broker does not acknowledge it within 15 s.
pub async fn publish(url: &str, topic: &str, payload: &[u8], retain: bool) {
    publish_many(url, &[(topic, payload)], retain).await;
}

/// Publishes messages in order on one connection and waits until all are acknowledged (QoS 1).
///
/// # Panics
/// When the broker does not acknowledge them within 15 s.
pub async fn publish_many(url: &str, messages: &[(&str, &[u8])], retain: bool) {
    let (host, port) = host_port(url);
    let id = format!(
        "testkit-pub-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    let mut opts = MqttOptions::new(id, host, port);
    opts.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut eventloop) = AsyncClient::new(opts, messages.len() + 10);
    for (topic, payload) in messages {
        client
            .publish(*topic, QoS::AtLeastOnce, retain, payload.to_vec())
            .await
            .unwrap_or_else(|e| panic!("cannot queue publish: {e}"));
    }
    let mut acked = 0;
    let done = tokio::time::timeout(START_TIMEOUT, async {
        while acked < messages.len() {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let _ = client.disconnect().await;
        // Drive the loop until the DISCONNECT is written.
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while eventloop.poll().await.is_ok() {}
        })
        .await;
    })
    .await;
    assert!(
        done.is_ok(),
        "the broker did not acknowledge the test publishes within 15 s"
    );
}

/// Host and port of an `mqtt://host:port` URL (test use only).
///
/// # Panics
/// On a URL that is not `mqtt://host:port`.
pub fn host_port(url: &str) -> (String, u16) {
    let rest = url
        .strip_prefix("mqtt://")
        .unwrap_or_else(|| panic!("test URL must start with mqtt://: {url}"));
    let (host, port) = rest
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("test URL needs a port: {url}"));
    (
        host.to_string(),
        port.parse()
            .unwrap_or_else(|_| panic!("test URL has a bad port: {url}")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn broker_restarts_on_the_same_port_and_keeps_persistent_sessions() {
        let mut broker = Mosquitto::new();
        let url = broker.url();
        let mut c = Collector::start(&url, "kit-collector", &["kit/#"]).await;
        publish(&url, "kit/a", b"1", false).await;
        assert!(c.wait_count(1, Duration::from_secs(15)).await);
        c.task.abort();
        // Stop the collector's connection, queue a message for its persistent session, restart.
        tokio::time::sleep(Duration::from_millis(100)).await;
        publish(&url, "kit/b", b"2", false).await;
        let port = broker.port();
        broker.stop();
        assert!(!broker.is_running());
        broker.start();
        assert_eq!(broker.port(), port);
        let acks = c.subscription_acks();
        let c2 = Collector::start(&url, "kit-collector", &["kit/#"]).await;
        assert!(
            c2.wait_until(Duration::from_secs(15), |m| m
                .iter()
                .any(|r| r.topic == "kit/b"))
                .await,
            "the message queued for the persistent session was lost: {}",
            broker.log()
        );
        let _ = c.wait_subscribed(acks, Duration::from_millis(1)).await;
    }
}
