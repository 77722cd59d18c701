//! `homeassistant`: every value of every meter as a Home Assistant sensor through [MQTT
//! discovery], ready for the Energy dashboard.
//!
//! [MQTT discovery]: https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery
//!
//! # Configuration
//! ```toml
//! [evn.sinks.ha]
//! type = "homeassistant"
//! url = "mqtt://homeassistant.lan:1883"   # mqtts:// for TLS (ca_file = "…" for a private CA)
//! username = "meter"                      # optional
//! password = "…"                          # optional; keep it in .secrets.toml
//! # discovery_prefix = "homeassistant"    # Home Assistant's default
//! # base_topic = "smart-meter/ha"         # state and availability topics
//! # retain = true                         # retained states: values show at once after an HA restart
//! # expire_after = "5m"                   # entities turn unavailable when their meter is silent
//! # remove_stale = false                  # remove entities a meter no longer reports
//! # client_id = "smart-meter-ha"          # default: smart-meter-<sink name>
//! [evn.sinks.ha.devices.evn]              # optional device block details per meter id
//! name = "Stromzähler"
//! manufacturer = "Kaifa"
//! model = "MA309"
//! ```
//!
//! # Behaviour
//! - Topics, payloads, device and state classes, the device block and the removal of stale
//!   entities are described in [`topics`].
//! - **Availability**: the connection's last will sets `<base_topic>/status` to `offline`; on
//!   every CONNACK the sink publishes `online`, every discovery config and the last state of
//!   every entity (so a broker restart without persistence loses nothing), and on a clean
//!   shutdown `offline`.
//! - **Home Assistant restarts**: the sink subscribes to `<discovery_prefix>/status` and
//!   publishes configs and states again when Home Assistant announces `online`.
//! - **Never blocks the bus**: publishing only queues. While the broker is unreachable,
//!   readings update the entity states that the next CONNACK publishes (Home Assistant shows
//!   the current value; history between is not replayed). Readings are skipped (counted as
//!   `dropped`) when more than [`MAX_BACKLOG`] messages are unacknowledged.
//! - **Counters**: `delivered` counts readings whose states the broker acknowledged (readings
//!   that arrived while it was unreachable count when the announcement carrying their states is
//!   acknowledged), `queued` unacknowledged messages, `retries` failed connects and lost
//!   connections.

pub mod topics;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use smart_meter_core::stats::SinkStats;
use smart_meter_core::{MeterId, Subscription};
use tracing::{debug, info, warn};

use crate::homie::{publish_all, to_mqtt, topic_prefix_problem, Delivery};
use crate::mqtt_conn::{self, BrokerUrl, Event, Password, ProtocolVersion, QoS};
use topics::{DeviceOverride, Discovery, Settings};

/// Unacknowledged messages above which readings are skipped.
pub const MAX_BACKLOG: usize = 10_000;

/// How long a clean shutdown waits for the broker to take the last messages.
const CLOSE_DRAIN: Duration = Duration::from_secs(5);

/// Settings of a `homeassistant` sink.
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
    /// Client id (default `smart-meter-<sink name>`); keep it stable.
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
    /// Home Assistant's discovery prefix (default `homeassistant`).
    #[serde(default = "default_discovery_prefix")]
    pub discovery_prefix: String,
    /// Prefix of state and availability topics (default `smart-meter/ha`).
    #[serde(default = "default_base_topic")]
    pub base_topic: String,
    /// Retain state messages (default true).
    #[serde(default = "default_true")]
    pub retain: bool,
    /// Entities become unavailable when no state arrived for this long (default: never).
    #[serde(default, with = "humantime_serde")]
    pub expire_after: Option<Duration>,
    /// Remove retained entities that a reporting meter no longer has (default false).
    #[serde(default)]
    pub remove_stale: bool,
    /// Device block details per meter id.
    #[serde(default)]
    pub devices: BTreeMap<String, DeviceConfig>,
}

/// Device block details of one meter; each overrides what the readings tell.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    /// Device name (default: the meter id).
    #[serde(default)]
    pub name: Option<String>,
    /// Manufacturer.
    #[serde(default)]
    pub manufacturer: Option<String>,
    /// Model.
    #[serde(default)]
    pub model: Option<String>,
}

fn default_discovery_prefix() -> String {
    "homeassistant".into()
}

fn default_base_topic() -> String {
    "smart-meter/ha".into()
}

fn default_true() -> bool {
    true
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
        if let Some(problem) = topic_prefix_problem(&self.discovery_prefix) {
            errors.push(("discovery_prefix".into(), problem));
        }
        if let Some(problem) = topic_prefix_problem(&self.base_topic) {
            errors.push(("base_topic".into(), problem));
        }
        if self
            .expire_after
            .is_some_and(|d| d.as_secs() == 0 || d.subsec_nanos() != 0)
        {
            errors.push((
                "expire_after".into(),
                "must be a whole number of seconds, at least 1 s".into(),
            ));
        }
        for (meter, d) in &self.devices {
            if let Err(e) = MeterId::new(meter) {
                errors.push((format!("devices.{meter}"), e));
            }
            for (k, v) in [
                ("name", &d.name),
                ("manufacturer", &d.manufacturer),
                ("model", &d.model),
            ] {
                if v.as_deref().is_some_and(str::is_empty) {
                    errors.push((format!("devices.{meter}.{k}"), "must not be empty".into()));
                }
            }
        }
        errors
    }

    /// The encoder settings.
    pub fn settings(&self) -> Settings {
        Settings {
            discovery_prefix: self.discovery_prefix.clone(),
            base_topic: self.base_topic.clone(),
            retain_states: self.retain,
            expire_after: self.expire_after.map(|d| d.as_secs()),
            devices: self
                .devices
                .iter()
                .map(|(m, d)| {
                    (
                        m.clone(),
                        DeviceOverride {
                            name: d.name.clone(),
                            manufacturer: d.manufacturer.clone(),
                            model: d.model.clone(),
                        },
                    )
                })
                .collect(),
        }
    }
}

/// Publishes discovery configs and states until the bus closes, then `offline`.
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
        .map_err(|e| anyhow::anyhow!("homeassistant sink {name}: url: {e}"))?;
    let mut discovery = Discovery::new(config.settings());
    let ha_status = discovery.ha_status_topic();

    let mut opts = mqtt_conn::Options::new(
        name.clone(),
        url,
        config
            .client_id
            .clone()
            .unwrap_or_else(|| format!("smart-meter-{name}")),
    );
    opts.username = config.username.clone();
    opts.password = config.password.clone();
    opts.protocol = config.protocol_version;
    if let Some(k) = config.keep_alive {
        opts.keep_alive = k;
    }
    opts.ca_file = config.ca_file.clone();
    opts.last_will = Some(to_mqtt(discovery.offline()));
    opts.subscriptions
        .push((ha_status.clone(), QoS::AtLeastOnce));
    if config.remove_stale {
        opts.subscriptions
            .push((discovery.config_filter(), QoS::AtLeastOnce));
    }
    let (conn, mut events) =
        mqtt_conn::spawn(opts).map_err(|e| anyhow::anyhow!("homeassistant sink {name}: {e}"))?;

    let mut connected = false;
    let mut delivery = Delivery::default();
    // Retained discovery configs on the broker (with remove_stale).
    let mut retained: BTreeSet<String> = BTreeSet::new();

    loop {
        tokio::select! {
            reading = sub.next() => {
                let Some(reading) = reading else { break };
                let msgs = discovery.update(&reading);
                if !connected || !conn.is_connected() {
                    // Kept in the entity states; the announcement on CONNACK publishes them.
                    delivery.hold();
                } else if conn.outstanding() > MAX_BACKLOG {
                    stats.dropped.fetch_add(1, Ordering::Relaxed);
                } else {
                    delivery.hold();
                    delivery.publish(&conn, msgs);
                }
                if config.remove_stale && connected {
                    remove_stale(&conn, &discovery, &mut retained, &name);
                }
            }
            event = events.recv() => {
                let Some(event) = event else {
                    anyhow::bail!("homeassistant sink {name}: the MQTT connection task ended");
                };
                match event {
                    Event::Connected { .. } => {
                        connected = true;
                        stats.connected.store(true, Ordering::Relaxed);
                        delivery.publish(&conn, discovery.announcement());
                        debug!(sink = %name, "Discovery configs published.");
                    }
                    Event::ConnectFailed { error } | Event::ConnectionLost { error } => {
                        connected = false;
                        stats.connected.store(false, Ordering::Relaxed);
                        stats.retries.fetch_add(1, Ordering::Relaxed);
                        // mqtt_conn logs the failure (rate-limited).
                        stats.set_last_error(Some(error));
                    }
                    Event::Delivered(id) => {
                        stats.delivered.fetch_add(delivery.delivered(id), Ordering::Relaxed);
                    }
                    Event::Message(m) if m.topic == ha_status => {
                        // Home Assistant's birth message (not a retained copy of an old one).
                        if m.payload == b"online" && !m.retain && connected {
                            info!(sink = %name, "Home Assistant started; publishing configs again.");
                            delivery.publish(&conn, discovery.announcement());
                        }
                    }
                    Event::Message(m) => {
                        if discovery.parse_config_topic(&m.topic).is_some() {
                            if m.payload.is_empty() {
                                retained.remove(&m.topic);
                            } else {
                                retained.insert(m.topic);
                            }
                            if config.remove_stale && connected {
                                remove_stale(&conn, &discovery, &mut retained, &name);
                            }
                        }
                    }
                    // mqtt_conn logs a refused subscription.
                    Event::Subscribed { .. } => {}
                }
            }
        }
        stats.queued.store(
            i64::try_from(conn.outstanding()).unwrap_or(i64::MAX),
            Ordering::Relaxed,
        );
    }

    conn.publish(to_mqtt(discovery.offline()));
    let left = conn.close(CLOSE_DRAIN).await;
    if left > 0 {
        warn!(sink = %name, undelivered = left, "Broker did not take every message before shutdown.");
    }
    // Acknowledgements that arrived while closing.
    while let Some(event) = events.try_recv() {
        if let Event::Delivered(id) = event {
            stats
                .delivered
                .fetch_add(delivery.delivered(id), Ordering::Relaxed);
        }
    }
    stats.connected.store(false, Ordering::Relaxed);
    stats.queued.store(0, Ordering::Relaxed);
    Ok(())
}

fn remove_stale(
    conn: &mqtt_conn::Connection,
    discovery: &Discovery,
    retained: &mut BTreeSet<String>,
    name: &str,
) {
    let removals = discovery.stale(retained.iter().map(String::as_str));
    for m in &removals {
        info!(sink = %name, topic = %m.topic, "Removing a stale Home Assistant entity.");
        retained.remove(&m.topic);
    }
    publish_all(conn, removals);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Config, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_overrides_parse() {
        let c = parse(r#"{"url":"mqtt://h"}"#).unwrap();
        assert_eq!(c.discovery_prefix, "homeassistant");
        assert_eq!(c.base_topic, "smart-meter/ha");
        assert!(c.retain);
        assert!(!c.remove_stale);
        assert!(c.validate().is_empty());
        let c = parse(
            r#"{"url":"mqtts://h","username":"u","password":"pw","expire_after":"5m",
                "remove_stale":true,"devices":{"evn":{"manufacturer":"Kaifa","model":"MA309"}}}"#,
        )
        .unwrap();
        assert_eq!(c.settings().expire_after, Some(300));
        assert_eq!(c.settings().devices["evn"].model.as_deref(), Some("MA309"));
        assert!(!format!("{c:?}").contains("\"pw\""));
        assert!(parse(r#"{"url":"mqtt://h","discovery":"x"}"#).is_err());
    }

    #[test]
    fn bad_values_are_reported_with_their_key() {
        let c = parse(
            r#"{"url":"http://h","discovery_prefix":"","base_topic":"a/+","expire_after":"1500ms",
                "devices":{"m":{"name":""}}}"#,
        )
        .unwrap();
        let keys: Vec<String> = c.validate().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            vec![
                "url",
                "discovery_prefix",
                "base_topic",
                "expire_after",
                "devices.m.name"
            ]
        );
    }
}
