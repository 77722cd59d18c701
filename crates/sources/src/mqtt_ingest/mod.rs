//! `mqtt = { url, topic }`: raw frames arriving as MQTT messages, e.g. from ESP8266 boxes that
//! forward what the meter's customer interface sends (EVNSmartmeterDecrypter's firmware
//! publishes every burst as upper-case hex on `sensors/smartmeter`).
//!
//! # Config keys (the `mqtt` table of a source)
//! ```toml
//! [mqtt_ingest.sources.esp]
//! protocol = "mbus-dlms"                  # any push protocol: mbus-dlms, hdlc-dlms, dsmr
//! mqtt = { url = "mqtt://127.0.0.1:1883", topic = "sensors/smartmeter" }
//! # more keys inside `mqtt = { … }`:
//! #   shared_group = "gateways"   subscribe as $share/gateways/<topic>: several gateway
//! #                               instances split one stream, each message goes to one of them
//! #   username, password          broker credentials (password redacted in logs)
//! #   client_id                   default smart-meter-<source name>; with shared_group
//! #                               smart-meter-<source name>-<host name> (one per instance;
//! #                               set it yourself when several instances share a host)
//! #   qos = 1                     subscription QoS (0, 1 or 2)
//! #   protocol_version = 3        3 (MQTT 3.1.1) or 5
//! #   keep_alive = "30s"
//! #   ca_file = "…"               CA for mqtts:// URLs
//! ```
//! `topic` may hold wildcards (`sensors/+/raw`) to take frames from many boxes.
//!
//! # Payloads
//! Each message is one chunk of the byte stream: hex text (upper or lower case; whitespace and
//! `:` ignored) when the whole payload is an even number of hex digits, otherwise the raw bytes
//! (binary frames, or DSMR telegrams as text). Real frames are never mistaken for hex: M-Bus
//! frames start with `68`, HDLC frames with `7E`, DSMR telegrams with `/`, none of them a hex
//! digit. Every topic gets its own protocol instance (made with `make_protocol`),
//! so frames from different boxes never mix, and a frame split over two messages of one box is
//! still put together. Decoding errors are counted and logged like on a serial port; a payload
//! never stops the source.
//!
//! # Delivery
//! The source subscribes with a persistent session (clean session off, stable client id), so
//! the broker keeps queuing QoS ≥ 1 frames while the gateway restarts or the connection is
//! down; subscriptions are renewed on every connect. Only push protocols make sense here:
//! nothing is written back, so polled protocols (Kamstrup KMP) never get their requests out.
//!
//! The connection is the one the MQTT sinks use (`smart-meter-mqtt`).

use smart_meter_mqtt as mqtt_conn;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Deserialize;
use smart_meter_core::stats::SourceState;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::protocol::{MeterProtocol, Output};
use crate::transport::Sink;
pub use mqtt_conn::{Password, ProtocolVersion, QoS};

/// Topics (boxes) with their own protocol instance at most; beyond, the instances are reset.
const MAX_TOPICS: usize = 1024;

/// The `mqtt = { … }` table of a source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `mqtt://host:port` or `mqtts://host:port`.
    pub url: String,
    /// Topic filter the frames arrive on (wildcards allowed).
    pub topic: String,
    /// Subscribe as `$share/<group>/<topic>` so several gateways split the stream.
    #[serde(default)]
    pub shared_group: Option<String>,
    /// User name.
    #[serde(default)]
    pub username: Option<String>,
    /// Password (redacted in `Debug`).
    #[serde(default)]
    pub password: Option<Password>,
    /// Client id (see the module docs for the default).
    #[serde(default)]
    pub client_id: Option<String>,
    /// Subscription QoS (default 1).
    #[serde(default)]
    pub qos: QoS,
    /// 3 (3.1.1) or 5.
    #[serde(default)]
    pub protocol_version: ProtocolVersion,
    /// Keep-alive interval (default 30 s).
    #[serde(default = "default_keep_alive", with = "humantime_serde")]
    pub keep_alive: Duration,
    /// CA certificate(s) (PEM) for `mqtts://`.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_keep_alive() -> Duration {
    Duration::from_secs(30)
}

impl Config {
    /// A config for `url` and `topic` with defaults for the rest.
    pub fn new(url: impl Into<String>, topic: impl Into<String>) -> Self {
        Config {
            url: url.into(),
            topic: topic.into(),
            shared_group: None,
            username: None,
            password: None,
            client_id: None,
            qos: QoS::AtLeastOnce,
            protocol_version: ProtocolVersion::V311,
            keep_alive: default_keep_alive(),
            ca_file: None,
        }
    }

    /// Semantic problems as (key inside the `mqtt` table, message).
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut errors = mqtt_conn::validate_keys(
            &self.url,
            self.client_id.as_deref(),
            Some(self.keep_alive),
            self.ca_file.as_deref(),
            self.password.is_some() && self.username.is_none(),
        );
        if self.topic.is_empty() {
            errors.push(("topic".into(), "must not be empty".into()));
        } else if self.topic.starts_with("$share/") {
            errors.push((
                "topic".into(),
                "give the plain topic and the group as shared_group".into(),
            ));
        } else if let Some(m) = filter_problem(&self.topic) {
            errors.push(("topic".into(), m));
        }
        if let Some(g) = &self.shared_group {
            if g.is_empty() || g.contains(['/', '+', '#']) {
                errors.push((
                    "shared_group".into(),
                    "must be a non-empty name without /, + or #".into(),
                ));
            }
        }
        errors
    }

    /// The filter subscribed to: the topic, or `$share/<group>/<topic>`.
    pub fn filter(&self) -> String {
        match &self.shared_group {
            Some(g) => format!("$share/{g}/{}", self.topic),
            None => self.topic.clone(),
        }
    }

    /// The client id used for the source `name`.
    pub fn client_id_for(&self, name: &str) -> String {
        if let Some(id) = &self.client_id {
            return id.clone();
        }
        match &self.shared_group {
            Some(_) => format!("smart-meter-{name}-{}", host_name()),
            None => format!("smart-meter-{name}"),
        }
    }

    /// Short description for logs.
    pub fn describe(&self) -> String {
        format!("mqtt {} {}", self.url, self.filter())
    }
}

/// `+` and `#` only as whole levels, `#` only last (MQTT 3.1.1 §4.7.1).
fn filter_problem(filter: &str) -> Option<String> {
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || i + 1 != levels.len()) {
            return Some(format!(
                "{filter:?}: # must be a whole level and the last one"
            ));
        }
        if level.contains('+') && *level != "+" {
            return Some(format!("{filter:?}: + must be a whole level"));
        }
    }
    None
}

fn host_name() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let clean: String = name
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    if clean.is_empty() {
        "host".into()
    } else {
        clean
    }
}

/// The bytes of one payload: decoded hex when the payload is nothing but hex digits (and
/// whitespace or `:`), else the payload as is.
pub fn payload_bytes(payload: &[u8]) -> Vec<u8> {
    let digits: Vec<u8> = payload
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace() && *b != b':')
        .collect();
    let all_hex = !digits.is_empty()
        && digits.len() % 2 == 0
        && payload
            .iter()
            .all(|b| b.is_ascii_hexdigit() || b.is_ascii_whitespace() || *b == b':');
    if all_hex {
        if let Ok(bytes) = hex::decode(&digits) {
            return bytes;
        }
    }
    payload.to_vec()
}

/// Subscribes and feeds every payload to the protocol instance of its topic until `cancel`.
/// Readings and frame errors go to `sink` (bus, counters, rate-limited log); the connection
/// state and bytes go to `sink.stats`. Broker outages are retried with backoff inside.
///
/// # Errors
/// Only for settings that can never work (bad URL, unreadable `ca_file`); the source cannot
/// run then.
pub async fn run(
    config: &Config,
    mut make_protocol: impl FnMut() -> Box<dyn MeterProtocol>,
    sink: &mut Sink,
    cancel: &CancellationToken,
) -> Result<(), String> {
    let url = config.url.parse().map_err(|e| format!("mqtt.url: {e}"))?;
    let mut o = mqtt_conn::Options::new(sink.name.clone(), url, config.client_id_for(&sink.name));
    o.username = config.username.clone();
    o.password = config.password.clone();
    o.protocol = config.protocol_version;
    o.keep_alive = config.keep_alive;
    o.ca_file = config.ca_file.clone();
    o.subscriptions = vec![(config.filter(), config.qos)];
    o.max_packet_size = 1024 * 1024;
    sink.stats.set_state(SourceState::Connecting);
    let (conn, mut events) = mqtt_conn::spawn(o).map_err(String::from)?;

    let mut protocols: HashMap<String, Box<dyn MeterProtocol>> = HashMap::new();
    let mut out: Output = Vec::new();
    loop {
        let ev = tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            ev = events.recv() => ev,
        };
        match ev {
            Some(mqtt_conn::Event::Message(m)) => {
                sink.stats
                    .bytes
                    .fetch_add(m.payload.len() as u64, Ordering::Relaxed);
                if !protocols.contains_key(&m.topic) && protocols.len() >= MAX_TOPICS {
                    warn!(source = %sink.name, topics = protocols.len(),
                        "Frames arrive on too many topics; starting over with fresh decoders.");
                    protocols.clear();
                }
                let proto = protocols.entry(m.topic).or_insert_with(&mut make_protocol);
                proto.on_bytes(&payload_bytes(&m.payload), &mut out);
                sink.emit(&mut out);
            }
            Some(mqtt_conn::Event::Connected { session_present }) => {
                // Running once the subscription is acknowledged.
                sink.stats.connects.fetch_add(1, Ordering::Relaxed);
                sink.stats.set_last_error(None);
                info!(source = %sink.name, filter = %config.filter(), session_present,
                    "Connected to the broker; subscribing.");
            }
            Some(mqtt_conn::Event::Subscribed { ok }) => {
                if ok {
                    sink.stats.set_state(SourceState::Running);
                } else {
                    error!(source = %sink.name, filter = %config.filter(),
                        "The broker refused the subscription.");
                    sink.stats
                        .set_last_error(Some("the broker refused the subscription".into()));
                }
            }
            Some(mqtt_conn::Event::ConnectFailed { error })
            | Some(mqtt_conn::Event::ConnectionLost { error }) => {
                sink.stats.set_state(SourceState::Backoff);
                sink.stats.set_last_error(Some(error));
            }
            Some(mqtt_conn::Event::Delivered(_)) => {}
            None => {
                error!(source = %sink.name, "The MQTT connection task ended unexpectedly.");
                break;
            }
        }
    }
    conn.close(Duration::ZERO).await;
    sink.stats.set_state(SourceState::Ended);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_payloads_are_decoded_and_anything_else_is_taken_as_is() {
        assert_eq!(payload_bytes(b"68FAFA68"), [0x68, 0xFA, 0xFA, 0x68]);
        assert_eq!(payload_bytes(b"68 fa\nfa:68\r\n"), [0x68, 0xFA, 0xFA, 0x68]);
        // Raw M-Bus bytes (0x68 is 'h', not a hex digit).
        assert_eq!(
            payload_bytes(&[0x68, 0xFA, 0xFA, 0x68]),
            [0x68, 0xFA, 0xFA, 0x68]
        );
        // A DSMR telegram is text, not hex.
        assert_eq!(payload_bytes(b"/ISK5\r\n!A1B2\r\n"), b"/ISK5\r\n!A1B2\r\n");
        // An odd number of hex digits is not hex.
        assert_eq!(payload_bytes(b"ABC"), b"ABC");
        assert_eq!(payload_bytes(b""), b"");
    }

    #[test]
    fn config_builds_the_shared_filter_and_validates_keys() {
        let mut c: Config = serde_json::from_str(
            r#"{"url":"mqtt://b:1883","topic":"sensors/smartmeter","shared_group":"gw","password":"hunter2"}"#,
        )
        .unwrap();
        assert_eq!(c.filter(), "$share/gw/sensors/smartmeter");
        assert!(c.client_id_for("esp").starts_with("smart-meter-esp-"));
        assert!(!format!("{c:?}").contains("hunter2"));
        let keys: Vec<String> = c.validate().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["password"]);
        c.username = Some("u".into());
        assert!(c.validate().is_empty());
        c.shared_group = None;
        assert_eq!(c.filter(), "sensors/smartmeter");
        assert_eq!(c.client_id_for("esp"), "smart-meter-esp");
        c.topic = "a/#/b".into();
        c.shared_group = Some("a/b".into());
        let keys: Vec<String> = c.validate().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["topic", "shared_group"]);
        c.topic = "sensors/+/raw".into();
        c.shared_group = None;
        assert!(c.validate().is_empty());
        assert!(serde_json::from_str::<Config>(r#"{"url":"mqtt://b","topic":"t","x":1}"#).is_err());
    }
}
