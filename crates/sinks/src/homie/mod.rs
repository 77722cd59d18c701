//! `homie`: every meter as a device of the [Homie 4.0.0 convention], so Homie controllers
//! (openHAB, Node-RED, Homie-aware dashboards) discover it without configuration.
//!
//! [Homie 4.0.0 convention]: https://homieiot.github.io/specification/spec-core-v4_0_0/
//!
//! # Configuration
//! ```toml
//! [t210.sinks.homie]
//! type = "homie"
//! url = "mqtt://broker.lan:1883"      # mqtts:// for TLS (ca_file = "…" for a private CA)
//! username = "meter"                  # optional
//! password = "…"                      # optional; keep it in .secrets.toml
//! base_topic = "homie"                # default
//! # client_id = "smart-meter-homie"   # default: smart-meter-<sink name>; "-<device>" is appended
//! # keep_alive = "30s"
//! # protocol_version = 3              # or 5
//! [t210.sinks.homie.devices.t210]     # optional, per meter id
//! id = "electric-smart-meter"         # Homie device id (default: the meter id, `_` → `-`)
//! name = "Sagemcom T210-D-r Stromzähler"  # `$name` (default: the meter id)
//! ```
//!
//! # Behaviour
//! - **One Homie device per meter**, created when the meter's first reading arrives; see
//!   [`topics`] for the topic layout, the ids ([`naming`]) and how datatypes are chosen.
//! - **One MQTT connection per device**, because Homie's last will (`$state` = `lost`) is per
//!   device and MQTT allows one will per connection. Client ids are `<client_id>-<device id>`,
//!   stable across restarts, with a persistent session.
//! - **Lifecycle**: on every CONNACK (first connect and every reconnect, e.g. after a broker
//!   restart) the device publishes `$state` = `init`, all attributes, the last value of every
//!   property and `$state` = `ready`. A reading that adds properties repeats this. On shutdown
//!   (the bus closed) every device publishes `$state` = `disconnected` and disconnects cleanly;
//!   otherwise the broker publishes the will `lost`.
//! - **Never blocks the bus**: publishing only queues. While the broker is unreachable, readings
//!   only update the device state (Homie topics are retained state, not history): the
//!   announcement after the reconnect publishes the latest value of every property. If the
//!   broker accepts messages more slowly than readings arrive, readings are skipped (counted as
//!   `dropped`) once more than [`MAX_BACKLOG`] messages of a device are unacknowledged.
//! - **Counters**: `delivered` counts readings whose values the broker acknowledged (readings
//!   that arrived while it was unreachable count when the announcement carrying their values is
//!   acknowledged), `queued` unacknowledged messages, `retries` failed connects and lost
//!   connections, `connected` is true while every device's connection is up.

pub mod conformance;
pub mod naming;
pub mod topics;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use smart_meter_core::stats::SinkStats;
use smart_meter_core::{MeterId, Subscription};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::mqtt_conn::{self, BrokerUrl, Connection, Event, MessageId, Password, ProtocolVersion};
use topics::{HomieDevice, Message};

/// Unacknowledged messages per device above which readings are skipped.
pub const MAX_BACKLOG: usize = 10_000;

/// How long a clean shutdown waits for the broker to take the last messages.
const CLOSE_DRAIN: Duration = Duration::from_secs(5);

/// Settings of a `homie` sink.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Broker: `mqtt://host:1883` or `mqtts://host:8883`.
    pub url: String,
    /// User name, if the broker wants one.
    #[serde(default)]
    pub username: Option<String>,
    /// Password (redacted in `Debug`).
    #[serde(default)]
    pub password: Option<Password>,
    /// Client id prefix; each device connects as `<client_id>-<device id>`. Default:
    /// `smart-meter-<sink name>`.
    #[serde(default)]
    pub client_id: Option<String>,
    /// MQTT 3.1.1 (`3`, default) or 5.
    #[serde(default)]
    pub protocol_version: ProtocolVersion,
    /// Keep-alive interval (default 30 s).
    #[serde(default, with = "humantime_serde")]
    pub keep_alive: Option<Duration>,
    /// CA certificate(s) in PEM for `mqtts://` (default: the system trust store).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The Homie base topic (default `homie`, the one controllers discover).
    #[serde(default = "default_base_topic")]
    pub base_topic: String,
    /// Per-meter device id and name.
    #[serde(default)]
    pub devices: BTreeMap<String, DeviceConfig>,
}

/// Device settings of one meter.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    /// The Homie device id (default: the meter id with `_` as `-`).
    #[serde(default)]
    pub id: Option<String>,
    /// `$name` (default: the meter id).
    #[serde(default)]
    pub name: Option<String>,
}

fn default_base_topic() -> String {
    "homie".into()
}

impl Config {
    /// Problems as (key, message).
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut errors = mqtt_conn::validate_keys(
            &self.url,
            self.client_id.as_deref(),
            self.keep_alive,
            self.ca_file.as_deref(),
            self.password.is_some() && self.username.is_none(),
        );
        if let Some(problem) = topic_prefix_problem(&self.base_topic) {
            errors.push(("base_topic".into(), problem));
        }
        let mut ids = HashSet::new();
        for (meter, d) in &self.devices {
            if let Err(e) = MeterId::new(meter) {
                errors.push((format!("devices.{meter}"), e));
            }
            if let Some(id) = &d.id {
                if !naming::is_valid_id(id) {
                    errors.push((
                        format!("devices.{meter}.id"),
                        format!(
                            "{id:?} is not a valid Homie id: lowercase a-z, 0-9 and single \
                             hyphens inside"
                        ),
                    ));
                } else if !ids.insert(id.clone()) {
                    errors.push((
                        format!("devices.{meter}.id"),
                        format!("{id:?} is used by another meter"),
                    ));
                }
            }
            if d.name.as_deref().is_some_and(str::is_empty) {
                errors.push((format!("devices.{meter}.name"), "must not be empty".into()));
            }
        }
        errors
    }
}

/// Why `prefix` cannot be a topic prefix, if it cannot.
pub(crate) fn topic_prefix_problem(prefix: &str) -> Option<String> {
    let p = prefix.trim_end_matches('/');
    if p.is_empty() {
        return Some("must not be empty".into());
    }
    if p.contains(['#', '+', '\0']) {
        return Some("must not contain the wildcards # or +".into());
    }
    if p.starts_with('$') {
        return Some("must not start with $ (reserved by brokers)".into());
    }
    None
}

struct Device {
    meter: MeterId,
    model: HomieDevice,
    conn: Connection,
    connected: bool,
    delivery: Delivery,
}

/// Counts readings as delivered when the broker acknowledged the batch carrying their values.
#[derive(Debug, Default)]
pub(crate) struct Delivery {
    /// Readings whose values are in the encoder state but not yet queued for the broker.
    held: u64,
    /// Last message id of each queued batch → the readings it carries.
    pending: HashMap<MessageId, u64>,
}

impl Delivery {
    /// A reading went into the encoder state.
    pub(crate) fn hold(&mut self) {
        self.held = self.held.saturating_add(1);
    }

    /// Queues `msgs`; the readings held so far travel with this batch.
    pub(crate) fn publish(&mut self, conn: &Connection, msgs: Vec<Message>) {
        if let Some(last) = publish_all(conn, msgs) {
            if self.held > 0 {
                self.pending.insert(last, self.held);
                self.held = 0;
            }
        }
    }

    /// The broker has message `id`: how many readings that completes.
    pub(crate) fn delivered(&mut self, id: MessageId) -> u64 {
        self.pending.remove(&id).unwrap_or(0)
    }
}

/// Publishes every meter as a Homie device until the bus closes, then marks every device
/// `disconnected` and disconnects.
///
/// # Errors
/// Only for settings that cannot work (a bad URL, an unreadable CA file).
pub async fn run(
    config: Config,
    mut sub: Subscription,
    stats: Arc<SinkStats>,
) -> anyhow::Result<()> {
    let name = sub.name().to_string();
    let url: BrokerUrl = config
        .url
        .parse()
        .map_err(|e| anyhow::anyhow!("homie sink {name}: url: {e}"))?;
    let client_prefix = config
        .client_id
        .clone()
        .unwrap_or_else(|| format!("smart-meter-{name}"));
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<(usize, Event)>();
    let mut devices: Vec<Device> = Vec::new();

    loop {
        tokio::select! {
            reading = sub.next() => {
                let Some(reading) = reading else { break };
                let index = match devices.iter().position(|d| d.meter == reading.meter) {
                    Some(i) => i,
                    None => {
                        let dc = config.devices.get(reading.meter.as_str());
                        let mut model = HomieDevice::new(
                            &config.base_topic,
                            &unique_device_id(&devices, &reading.meter, dc),
                            dc.and_then(|d| d.name.as_deref()).unwrap_or(reading.meter.as_str()),
                        );
                        // The device appears with its first reading that has a value.
                        model.update(&reading);
                        if !model.is_announced() {
                            continue;
                        }
                        let mut opts = mqtt_conn::Options::new(
                            name.clone(),
                            url.clone(),
                            format!("{client_prefix}-{}", model.id()),
                        );
                        opts.username = config.username.clone();
                        opts.password = config.password.clone();
                        opts.protocol = config.protocol_version;
                        if let Some(k) = config.keep_alive {
                            opts.keep_alive = k;
                        }
                        opts.ca_file = config.ca_file.clone();
                        opts.last_will = Some(to_mqtt(model.last_will()));
                        let (conn, mut events) = mqtt_conn::spawn(opts)
                            .map_err(|e| anyhow::anyhow!("homie sink {name}: {e}"))?;
                        let index = devices.len();
                        let tx = ev_tx.clone();
                        tokio::spawn(async move {
                            while let Some(ev) = events.recv().await {
                                if tx.send((index, ev)).is_err() {
                                    break;
                                }
                            }
                        });
                        info!(sink = %name, meter = %reading.meter, device = %model.id(),
                            "New Homie device; connecting.");
                        devices.push(Device {
                            meter: reading.meter.clone(),
                            model,
                            conn,
                            connected: false,
                            delivery: Delivery { held: 1, pending: HashMap::new() },
                        });
                        // Announced on CONNACK, with this reading's values.
                        update_stats(&stats, &devices);
                        continue;
                    }
                };
                if let Some(d) = devices.get_mut(index) {
                    let msgs = d.model.update(&reading);
                    if !d.connected || !d.conn.is_connected() {
                        // Kept in the device state; the announcement on CONNACK publishes it.
                        d.delivery.hold();
                    } else if d.conn.outstanding() > MAX_BACKLOG {
                        stats.dropped.fetch_add(1, Ordering::Relaxed);
                    } else {
                        d.delivery.hold();
                        d.delivery.publish(&d.conn, msgs);
                    }
                }
                update_stats(&stats, &devices);
            }
            Some((index, event)) = ev_rx.recv() => {
                let Some(d) = devices.get_mut(index) else { continue };
                match event {
                    Event::Connected { .. } => {
                        d.connected = true;
                        d.delivery.publish(&d.conn, d.model.announcement());
                        debug!(sink = %name, device = %d.model.id(), "Homie device announced.");
                    }
                    Event::ConnectFailed { error } | Event::ConnectionLost { error } => {
                        d.connected = false;
                        stats.retries.fetch_add(1, Ordering::Relaxed);
                        // mqtt_conn logs the failure (rate-limited).
                        stats.set_last_error(Some(error));
                    }
                    Event::Delivered(id) => {
                        stats.delivered.fetch_add(d.delivery.delivered(id), Ordering::Relaxed);
                    }
                    Event::Subscribed { .. } | Event::Message(_) => {}
                }
                update_stats(&stats, &devices);
            }
        }
    }

    // Shutdown: `disconnected`, then a clean DISCONNECT (no will).
    let mut deliveries = Vec::with_capacity(devices.len());
    for d in devices {
        d.conn.publish(to_mqtt(d.model.disconnected()));
        let left = d.conn.close(CLOSE_DRAIN).await;
        if left > 0 {
            warn!(sink = %name, device = %d.model.id(), undelivered = left,
                "Broker did not take every message before shutdown.");
        }
        deliveries.push(d.delivery);
    }
    // Acknowledgements that arrived while closing.
    while let Ok((index, event)) = ev_rx.try_recv() {
        if let (Event::Delivered(id), Some(delivery)) = (event, deliveries.get_mut(index)) {
            stats
                .delivered
                .fetch_add(delivery.delivered(id), Ordering::Relaxed);
        }
    }
    stats.connected.store(false, Ordering::Relaxed);
    stats.queued.store(0, Ordering::Relaxed);
    Ok(())
}

/// The configured id, or one derived from the meter id, made unique among the devices so far.
fn unique_device_id(devices: &[Device], meter: &MeterId, dc: Option<&DeviceConfig>) -> String {
    let base = dc
        .and_then(|d| d.id.clone())
        .unwrap_or_else(|| topics::device_id(meter.as_str()));
    let mut id = base.clone();
    let mut n = 2u32;
    while devices.iter().any(|d| d.model.id() == id) {
        id = format!("{base}-{n}");
        n = n.saturating_add(1);
    }
    id
}

/// The MQTT message of an encoder message.
pub(crate) fn to_mqtt(m: Message) -> mqtt_conn::Message {
    mqtt_conn::Message::new(
        m.topic,
        m.payload.into_bytes(),
        mqtt_conn::QoS::from_u8(m.qos).unwrap_or_default(),
        m.retain,
    )
}

/// Queues every message; returns the id of the last one.
pub(crate) fn publish_all(conn: &Connection, msgs: Vec<Message>) -> Option<MessageId> {
    let mut last = None;
    for m in msgs {
        last = Some(conn.publish(to_mqtt(m)));
    }
    last
}

fn update_stats(stats: &SinkStats, devices: &[Device]) {
    let queued: usize = devices.iter().map(|d| d.conn.outstanding()).sum();
    stats
        .queued
        .store(i64::try_from(queued).unwrap_or(i64::MAX), Ordering::Relaxed);
    stats.connected.store(
        !devices.is_empty() && devices.iter().all(|d| d.connected),
        Ordering::Relaxed,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Configs written as JSON (the crate has no TOML parser); the gateway deserializes the
    /// same struct from TOML.
    fn parse(json: &str) -> Result<Config, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_overrides_parse() {
        let c = parse(r#"{"url":"mqtt://h:1883"}"#).unwrap();
        assert_eq!(c.base_topic, "homie");
        assert!(c.validate().is_empty());
        let c = parse(
            r#"{"url":"mqtt://h","username":"u","password":"secret","keep_alive":"10s",
                "devices":{"t210":{"id":"electric-smart-meter","name":"Stromzähler"}}}"#,
        )
        .unwrap();
        assert_eq!(c.keep_alive, Some(Duration::from_secs(10)));
        assert_eq!(
            c.devices["t210"].id.as_deref(),
            Some("electric-smart-meter")
        );
        assert!(c.validate().is_empty());
        assert!(!format!("{c:?}").contains("secret"));
        assert!(parse(r#"{"url":"mqtt://h","qos":1}"#).is_err());
    }

    #[test]
    fn invalid_ids_and_topics_are_reported_with_their_key() {
        let c = parse(
            r#"{"url":"mqtt://h","base_topic":"homie/#","password":"p",
                "devices":{"a":{"id":"Bad_Id"},"b":{"id":"x"},"c":{"id":"x"},"Z":{}}}"#,
        )
        .unwrap();
        let keys: Vec<String> = c.validate().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            vec![
                "password",
                "base_topic",
                "devices.Z",
                "devices.a.id",
                "devices.c.id"
            ]
        );
    }
}
