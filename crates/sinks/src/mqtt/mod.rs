//! `mqtt`: readings to an MQTT broker, as the reading JSON, one topic per value, or in the
//! layouts of the predecessor projects so their dashboards keep working.
//!
//! # Config keys
//! ```toml
//! [demo.sinks.broker]
//! type = "mqtt"
//! url = "mqtt://127.0.0.1:1883"   # required; mqtts://host[:8883] for TLS
//! username = "meter"              # optional
//! password = "…"                  # optional (put it in .secrets.toml); never logged
//! client_id = "smart-meter-broker"  # default: smart-meter-<sink name>; keep it stable
//! qos = 1                         # 0, 1 (default) or 2
//! retain = false                  # retain value messages (default false)
//! format = "json"                 # json | per-value | evn-json | kaifareader | smartmeterevn
//!                                 # | smartmeterevn-v2
//! base_topic = "smart-meter"      # default depends on the format, see below
//! status_topic = "smart-meter/status"  # default <base>/status; "" turns it off
//! protocol_version = 3            # 3 (MQTT 3.1.1, default) or 5
//! keep_alive = "30s"              # 5 s to 65535 s
//! ca_file = "/etc/ssl/broker-ca.pem"  # mqtts:// only; default: system trust store
//! queue_size = 10000              # readings held while the broker is unreachable
//! spool_dir = "/var/lib/smart-meter/spool"  # optional: keep the queue on disk too
//! spool_max_mb = 64               # bound of the spool file
//! net_power = true                # json/per-value: add 1.0.16.7.0.255 = import − export (W)
//! fields = ["VoltageL1_V", …]     # presets only: which named fields to publish
//! ```
//!
//! # Formats
//! | `format` | topics | payload |
//! |---|---|---|
//! | `json` | `<base>/<meter>` (base `smart-meter`) | the reading JSON of SPEC.md |
//! | `per-value` | `<base>/<meter>/<key>`, key `1.0.1.8.0.255`, `kmp.60` | the value as text: `233.7`, `12937`, `181220000009`, `2021-09-27T09:47:15+02:00` |
//! | `evn-json` | `<base>/values` (base `sensors/smartmeter`) | `{"WIn": {"value": 12937.0, "unit": "Wh"}, …, "PF": {…, "unit": "1"}, "timestamp": {"value": <epoch s>, "unit": "s"}}` (EVNSmartmeterDecrypter) |
//! | `kaifareader` | `<base>/VoltageL1_V` … (base `kaifareader`) | `233.7`, `12937` as kaifareader wrote them |
//! | `smartmeterevn` | `<base>/WirkenergieP` … `Leistungsfaktor` (base `Smartmeter`) | kWh energy, W power, `Momentanleistung` = net power, signed power factor |
//! | `smartmeterevn-v2` | `<base>/WirkenergieBezug` … `Wirkleistunggesamt` | as above |
//!
//! Preset field names (`fields`): kaifareader `VoltageL1_V`, `VoltageL2_V`, `VoltageL3_V`,
//! `CurrentL1_A`…`CurrentL3_A`, `InstantaneousPowerIn_W`, `InstantaneousPowerOut_W`,
//! `ActiveEnergyIn_Wh`, `ActiveEnergyOut_Wh`, `ReactiveEnergyInductive_var`,
//! `ReactiveEnergyCapacitive_var`, `PowerFactor`, `DeviceNumber`, `DeviceName`, `DateAndTime`
//! (the last off by default, as in kaifareader's template); smartmeterevn `WirkenergieP`,
//! `WirkenergieN`, `MomentanleistungP`, `MomentanleistungN`, `Momentanleistung`,
//! `SpannungL1`…`L3`, `StromL1`…`L3`, `Leistungsfaktor`; smartmeterevn-v2 `WirkenergieBezug`,
//! `WirkenergieLieferung`, `WirkleistungBezug`, `WirkleistungLieferung`, `Wirkleistunggesamt`,
//! and the same voltage, current and power factor names; evn-json `WIn`, `WOut`, `PIn`, `POut`,
//! `U1`…`U3`, `I1`…`I3`, `PF`. The presets publish every meter on the same topics, like their
//! predecessors (which read one meter); give each meter its own sink and `base_topic` when
//! several meters share a gateway.
//!
//! # Status and last will
//! `status_topic` gets a retained `online` after every connect, and the broker publishes the
//! retained last will `offline` when the gateway disappears without saying goodbye; a clean
//! shutdown publishes `offline` itself.
//!
//! # Never losing a reading
//! Readings go into the sink's own bounded queue (`queue_size` readings; the oldest is dropped
//! and counted when it overflows) and leave it only when the broker acknowledged every message
//! of the reading (QoS ≥ 1). Meanwhile the bus keeps being drained, so a broker outage never
//! stalls the sources. The connection uses a persistent session with a stable client id, and
//! whatever was in flight when the connection broke is sent again after the reconnect, in
//! order (see [`mqtt_conn`]). With `spool_dir`, the queue is also written to
//! `<spool_dir>/<sink name>.spool` before anything is sent, so readings queued during an outage
//! survive a restart or crash of the gateway and are delivered after it. At shutdown the sink
//! keeps delivering for up to 10 s while connected; what is left is kept in the spool (or, with
//! no spool, counted as dropped). QoS 1 can deliver a message twice around a reconnect; every
//! payload carries its timestamp, so consumers can tell.

pub mod encode;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use smart_meter_core::stats::SinkStats;
use smart_meter_core::Subscription;
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::mqtt_conn::{self, Event, Message, Options, Password, ProtocolVersion, QoS};
use crate::queue::{Queue, SpoolConfig};
pub use encode::{Encoder, Format};

/// How long a clean shutdown keeps delivering what is queued, while connected.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(10);

/// Messages handed to the connection at once (the rest wait in the queue).
const WINDOW: usize = 200;

/// Settings of an `mqtt` sink. See the module docs for every key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `mqtt://host:port` or `mqtts://host:port`.
    pub url: String,
    /// User name.
    #[serde(default)]
    pub username: Option<String>,
    /// Password (redacted in `Debug`).
    #[serde(default)]
    pub password: Option<Password>,
    /// Client id; default `smart-meter-<sink name>`.
    #[serde(default)]
    pub client_id: Option<String>,
    /// QoS of value messages (default 1).
    #[serde(default)]
    pub qos: QoS,
    /// Retain value messages (default false).
    #[serde(default)]
    pub retain: bool,
    /// Base topic; default per format.
    #[serde(default)]
    pub base_topic: Option<String>,
    /// Topic layout.
    #[serde(default)]
    pub format: Format,
    /// 3 (3.1.1) or 5.
    #[serde(default)]
    pub protocol_version: ProtocolVersion,
    /// Online/offline status topic; default `<base>/status`, empty to turn off.
    #[serde(default)]
    pub status_topic: Option<String>,
    /// Readings held while the broker is unreachable.
    #[serde(default = "default_queue_size")]
    pub queue_size: usize,
    /// Folder for the on-disk queue.
    #[serde(default)]
    pub spool_dir: Option<PathBuf>,
    /// Bound of the spool file in MiB.
    #[serde(default = "default_spool_max_mb")]
    pub spool_max_mb: u64,
    /// Keep-alive interval.
    #[serde(default = "default_keep_alive", with = "humantime_serde")]
    pub keep_alive: Duration,
    /// CA certificate(s) (PEM) for `mqtts://`.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Add the derived net power (json, per-value).
    #[serde(default = "default_true")]
    pub net_power: bool,
    /// Named fields to publish (presets).
    #[serde(default)]
    pub fields: Option<Vec<String>>,
}

fn default_queue_size() -> usize {
    10_000
}

fn default_spool_max_mb() -> u64 {
    64
}

fn default_keep_alive() -> Duration {
    Duration::from_secs(30)
}

fn default_true() -> bool {
    true
}

impl Config {
    /// A config with defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Config {
            url: url.into(),
            username: None,
            password: None,
            client_id: None,
            qos: QoS::AtLeastOnce,
            retain: false,
            base_topic: None,
            format: Format::Json,
            protocol_version: ProtocolVersion::V311,
            status_topic: None,
            queue_size: default_queue_size(),
            spool_dir: None,
            spool_max_mb: default_spool_max_mb(),
            keep_alive: default_keep_alive(),
            ca_file: None,
            net_power: true,
            fields: None,
        }
    }

    /// Semantic problems as (key, message).
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut errors = mqtt_conn::validate_keys(
            &self.url,
            self.client_id.as_deref(),
            Some(self.keep_alive),
            self.ca_file.as_deref(),
            self.password.is_some() && self.username.is_none(),
        );
        if let Some(b) = &self.base_topic {
            if let Some(m) = topic_problem(b.trim_end_matches('/')) {
                errors.push(("base_topic".into(), m));
            }
        }
        if let Some(s) = self.status_topic.as_deref().filter(|s| !s.is_empty()) {
            if let Some(m) = topic_problem(s) {
                errors.push(("status_topic".into(), m));
            }
        }
        if self.queue_size == 0 {
            errors.push(("queue_size".into(), "must be at least 1".into()));
        }
        if self.spool_max_mb == 0 {
            errors.push(("spool_max_mb".into(), "must be at least 1".into()));
        }
        if let Some(fields) = &self.fields {
            let known = self.format.fields();
            if known.is_empty() {
                errors.push((
                    "fields".into(),
                    format!(
                        "only the presets (evn-json, kaifareader, smartmeterevn, \
                         smartmeterevn-v2) have named fields, not format {:?}",
                        self.format.name()
                    ),
                ));
            } else {
                for f in fields {
                    if !known.iter().any(|(n, _)| n == f) {
                        let names: Vec<&str> = known.iter().map(|(n, _)| *n).collect();
                        errors.push((
                            "fields".into(),
                            format!(
                                "unknown field {f:?} for format {:?}; known: {}",
                                self.format.name(),
                                names.join(", ")
                            ),
                        ));
                    }
                }
            }
        }
        errors
    }

    /// The encoder of this config.
    pub fn encoder(&self) -> Encoder {
        Encoder::new(
            self.format,
            self.base_topic.as_deref(),
            self.net_power,
            self.fields.clone(),
        )
    }

    /// The status topic in use, if any.
    pub fn status_topic(&self) -> Option<String> {
        match self.status_topic.as_deref() {
            Some("") => None,
            Some(t) => Some(t.to_string()),
            None => Some(format!("{}/status", self.encoder().base())),
        }
    }

    /// Connection settings for the sink `name`.
    ///
    /// # Errors
    /// When the URL does not parse.
    pub fn connection(&self, name: &str) -> Result<Options, String> {
        let url = self.url.parse().map_err(|e| format!("url: {e}"))?;
        let client_id = self
            .client_id
            .clone()
            .unwrap_or_else(|| format!("smart-meter-{name}"));
        let mut o = Options::new(name, url, client_id);
        o.username = self.username.clone();
        o.password = self.password.clone();
        o.protocol = self.protocol_version;
        o.keep_alive = self.keep_alive;
        o.ca_file = self.ca_file.clone();
        o.last_will = self
            .status_topic()
            .map(|t| Message::new(t, "offline", QoS::AtLeastOnce, true));
        Ok(o)
    }
}

fn topic_problem(t: &str) -> Option<String> {
    if t.is_empty() {
        return Some("must not be empty".into());
    }
    if t.contains(['+', '#', '\0']) {
        return Some(format!("{t:?} must not contain the wildcards + or #"));
    }
    None
}

/// One queued reading: its messages, encoded at arrival.
fn pack(messages: &[(String, Vec<u8>)]) -> Vec<u8> {
    let size: usize = messages.iter().map(|(t, p)| 8 + t.len() + p.len()).sum();
    let mut out = Vec::with_capacity(4 + size);
    out.extend_from_slice(&(messages.len() as u32).to_le_bytes());
    for (topic, payload) in messages {
        out.extend_from_slice(&(topic.len() as u32).to_le_bytes());
        out.extend_from_slice(topic.as_bytes());
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(payload);
    }
    out
}

/// The inverse of [`pack`]; `None` for a damaged record.
fn unpack(mut data: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    fn take<'a>(data: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if data.len() < n {
            return None;
        }
        let (head, rest) = data.split_at(n);
        *data = rest;
        Some(head)
    }
    fn len(data: &mut &[u8]) -> Option<usize> {
        let b: [u8; 4] = take(data, 4)?.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(b)).ok()
    }
    let count = len(&mut data)?;
    let mut out = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let n = len(&mut data)?;
        let topic = String::from_utf8(take(&mut data, n)?.to_vec()).ok()?;
        let n = len(&mut data)?;
        out.push((topic, take(&mut data, n)?.to_vec()));
    }
    data.is_empty().then_some(out)
}

/// Publishes readings until the bus closes, then delivers what it can and returns.
///
/// # Errors
/// When the spool folder cannot be used or the settings cannot work (unreadable CA file).
pub async fn run(
    config: Config,
    mut sub: Subscription,
    stats: Arc<SinkStats>,
) -> anyhow::Result<()> {
    let name = sub.name().to_string();
    let encoder = config.encoder();
    let status = config.status_topic();
    let mut queue = match &config.spool_dir {
        Some(dir) => Queue::open(
            config.queue_size,
            &SpoolConfig {
                dir: dir.clone(),
                name: name.clone(),
                max_bytes: config.spool_max_mb.saturating_mul(1024 * 1024),
            },
        )
        .map_err(|e| anyhow::anyhow!("cannot use spool_dir {}: {e}", dir.display()))?,
        None => Queue::memory(config.queue_size),
    };
    if !queue.is_empty() {
        info!(sink = %name, queued = queue.len(), "Found readings spooled by an earlier run; delivering them.");
    }
    stats.queued.store(queue.len() as i64, Ordering::Relaxed);
    let options = config.connection(&name).map_err(anyhow::Error::msg)?;
    let (conn, mut events) = mqtt_conn::spawn(options).map_err(|e| anyhow::anyhow!("{e}"))?;

    // Message id → (queue record, messages of that record still unacknowledged).
    let mut pending: std::collections::HashMap<mqtt_conn::MessageId, u64> =
        std::collections::HashMap::new();
    let mut remaining: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    let mut bus_open = true;
    let mut drain_until: Option<Instant> = None;
    let mut spool_error_logged = false;

    loop {
        tokio::select! {
            r = sub.next(), if bus_open => match r {
                Some(reading) => {
                    let messages = encoder.encode(&reading);
                    if !messages.is_empty() {
                        let (dropped, err) = queue.push(pack(&messages));
                        if dropped > 0 {
                            stats.dropped.fetch_add(dropped, Ordering::Relaxed);
                            warn!(sink = %name, dropped, "Queue full; dropped the oldest readings.");
                        }
                        if let Some(e) = err {
                            if !spool_error_logged {
                                error!(sink = %name, error = %e, "Cannot write the spool; keeping readings in memory only.");
                                spool_error_logged = true;
                            }
                            stats.set_last_error(Some(format!("spool: {e}")));
                        }
                    }
                }
                None => {
                    bus_open = false;
                    drain_until = Some(Instant::now() + SHUTDOWN_DRAIN);
                }
            },
            ev = events.recv() => match ev {
                Some(Event::Connected { .. }) => {
                    stats.connected.store(true, Ordering::Relaxed);
                    stats.set_last_error(None);
                    if let Some(t) = &status {
                        conn.publish(Message::new(t.clone(), "online", QoS::AtLeastOnce, true));
                    }
                }
                Some(Event::ConnectFailed { error }) | Some(Event::ConnectionLost { error }) => {
                    stats.connected.store(false, Ordering::Relaxed);
                    stats.retries.fetch_add(1, Ordering::Relaxed);
                    stats.set_last_error(Some(error));
                }
                Some(Event::Delivered(id)) => {
                    if let Some(seq) = pending.remove(&id) {
                        let left = remaining.entry(seq).or_insert(1);
                        *left = left.saturating_sub(1);
                        if *left == 0 {
                            remaining.remove(&seq);
                            if let Err(e) = queue.ack(seq) {
                                stats.set_last_error(Some(format!("spool: {e}")));
                            }
                            stats.delivered.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Some(_) => {}
                None => anyhow::bail!("the MQTT connection task ended unexpectedly"),
            },
            _ = async { match drain_until {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            } } => break,
        }

        // Hand queued readings to the connection while it is up, a window at a time; what is
        // handed over is re-sent by the connection itself after a reconnect.
        while conn.is_connected() && conn.outstanding() < WINDOW {
            let Some(taken) = queue.take() else { break };
            match unpack(&taken.data) {
                Some(messages) if !messages.is_empty() => {
                    remaining.insert(taken.seq, messages.len());
                    for (topic, payload) in messages {
                        let id =
                            conn.publish(Message::new(topic, payload, config.qos, config.retain));
                        pending.insert(id, taken.seq);
                    }
                }
                _ => {
                    warn!(sink = %name, "Dropped a damaged spooled reading.");
                    stats.dropped.fetch_add(1, Ordering::Relaxed);
                    let _ = queue.ack(taken.seq);
                }
            }
        }
        stats.queued.store(queue.len() as i64, Ordering::Relaxed);
        if !bus_open && (queue.is_empty() || !conn.is_connected()) {
            break;
        }
    }

    // Whether what is left was cut off by the drain time (connected) or by the broker.
    let connected_at_end = conn.is_connected();
    // Say goodbye: the retained status goes offline (the will is only for unclean ends).
    if let Some(t) = &status {
        if conn.is_connected() {
            conn.publish(Message::new(t.clone(), "offline", QoS::AtLeastOnce, true));
        }
    }
    let drain = if conn.is_connected() {
        Duration::from_secs(2)
    } else {
        Duration::ZERO
    };
    conn.close(drain).await;
    // Acknowledgements that arrived during the close.
    while let Some(ev) = events.try_recv() {
        if let Event::Delivered(id) = ev {
            if let Some(seq) = pending.remove(&id) {
                let left = remaining.entry(seq).or_insert(1);
                *left = left.saturating_sub(1);
                if *left == 0 {
                    remaining.remove(&seq);
                    let _ = queue.ack(seq);
                    stats.delivered.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
    stats.connected.store(false, Ordering::Relaxed);
    let left = queue.len();
    stats.queued.store(left as i64, Ordering::Relaxed);
    if let Err(e) = queue.close() {
        error!(sink = %name, error = %e, "Cannot save the spool.");
    }
    if left > 0 {
        if queue.is_spooled() {
            info!(sink = %name, queued = left, "Kept undelivered readings in the spool for the next start.");
        } else {
            stats.dropped.fetch_add(left as u64, Ordering::Relaxed);
            if connected_at_end {
                warn!(sink = %name, dropped = left, drain = ?SHUTDOWN_DRAIN,
                    "The broker did not take every queued reading within the shutdown drain time; the rest were dropped.");
            } else {
                warn!(sink = %name, dropped = left, "Broker unreachable at shutdown; undelivered readings were dropped.");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_readings_unpack_to_the_same_messages() {
        let m = vec![
            ("a/b".to_string(), b"1".to_vec()),
            ("c".to_string(), Vec::new()),
        ];
        assert_eq!(unpack(&pack(&m)).unwrap(), m);
        let packed = pack(&m);
        assert!(unpack(&packed[..packed.len() - 1]).is_none());
        assert!(unpack(&[]).is_none());
    }

    #[test]
    fn config_parses_with_defaults_and_never_shows_the_password() {
        let c: Config = serde_json::from_str(
            r#"{"url":"mqtt://b:1883","username":"u","password":"hunter2","format":"evn-json"}"#,
        )
        .unwrap();
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        assert_eq!(c.qos, QoS::AtLeastOnce);
        assert_eq!(c.queue_size, 10_000);
        assert_eq!(
            c.status_topic().as_deref(),
            Some("sensors/smartmeter/status")
        );
        assert!(!format!("{c:?}").contains("hunter2"));
        let o = c.connection("grid").unwrap();
        assert_eq!(o.client_id, "smart-meter-grid");
        assert!(!o.clean_session);
        assert_eq!(
            o.last_will,
            Some(Message::new(
                "sensors/smartmeter/status",
                "offline",
                QoS::AtLeastOnce,
                true
            ))
        );
        assert!(serde_json::from_str::<Config>(r#"{"url":"mqtt://b","topic":"x"}"#).is_err());
    }

    #[test]
    fn validation_reports_each_bad_key() {
        let mut c = Config::new("mqtt://b");
        c.base_topic = Some("a/#".into());
        c.status_topic = Some("s/+".into());
        c.queue_size = 0;
        c.fields = Some(vec!["VoltageL1_V".into()]);
        let keys: Vec<String> = c.validate().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["base_topic", "status_topic", "queue_size", "fields"]);
        let mut c = Config::new("mqtt://b");
        c.format = Format::Kaifareader;
        c.fields = Some(vec!["VoltageL1_V".into(), "Nope".into()]);
        let e = c.validate();
        assert_eq!(e.len(), 1);
        assert!(e[0].1.contains("\"Nope\""), "{e:?}");
        c.status_topic = Some(String::new());
        assert_eq!(c.status_topic(), None);
    }
}
