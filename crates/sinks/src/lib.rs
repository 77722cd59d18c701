//! Sinks: where readings go.
//!
//! Every sink is a folder with its `Config`, a pure encoder (reading → bytes/topics/points) and a
//! thin IO loop `run(config, subscription, stats)` that reads the bus until it closes, then
//! flushes and returns. Sinks do not watch the shutdown signal: they end when their input ends,
//! which is what lets them drain (the gateway bounds this with a grace period).
//!
//! # Adding a sink
//! 1. A folder `src/<name>/` with `Config` (serde, `deny_unknown_fields`), `Config::validate`,
//!    the encoder with tests, and `run`.
//! 2. One variant in [`SinkConfig`] and one arm in each of its matches.
//! 3. An example in `config/settings.toml` or the README.
//!
//! # MQTT connection
//! [`mqtt_conn`] is the supervised MQTT connection shared by the MQTT-based sinks (and compiled
//! into the raw-frame MQTT source). In short:
//!
//! ```no_run
//! # async fn demo() -> Result<(), String> {
//! use smart_meter_sinks::mqtt_conn::{self, Event, Message, Options, QoS};
//! let mut opts = Options::new("homie", "mqtt://127.0.0.1:1883".parse()?, "smart-meter-homie");
//! opts.last_will = Some(Message::new("homie/evn/$state", "lost", QoS::AtLeastOnce, true));
//! let (conn, mut events) = mqtt_conn::spawn(opts)?;
//! while let Some(ev) = events.recv().await {
//!     match ev {
//!         Event::Connected { .. } => {
//!             conn.publish(Message::new("homie/evn/$state", "ready", QoS::AtLeastOnce, true));
//!         }
//!         Event::Delivered(_id) => { /* the broker has it */ }
//!         _ => {}
//!     }
//! #   break;
//! }
//! let undelivered = conn.close(std::time::Duration::from_secs(5)).await;
//! # let _ = undelivered; Ok(()) }
//! ```

use std::sync::Arc;

use serde::Deserialize;
use smart_meter_core::stats::SinkStats;
use smart_meter_core::Subscription;

pub mod console;
pub mod homeassistant;
pub mod homie;
pub mod influxdb;
pub mod jsonl;
pub mod mqtt;
/// The shared MQTT connection (the `smart-meter-mqtt` crate).
pub use smart_meter_mqtt as mqtt_conn;
pub mod queue;
pub mod solarview;
#[cfg(feature = "sql")]
pub mod sql;

/// The `type` of a sink table and its settings. The only list of sink kinds.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SinkConfig {
    /// A readable table per reading on stdout.
    Console(console::Config),
    /// The reading JSON, one object per line, to a file or stdout.
    Jsonl(jsonl::Config),
    /// Line protocol to InfluxDB 1.x or 2.x.
    Influxdb(Box<influxdb::Config>),
    /// The Solarview export file of kaifareader (classic or full format).
    Solarview(solarview::Config),
    /// Every reading and per-interval aggregates in SQLite, MariaDB/MySQL or PostgreSQL.
    #[cfg(feature = "sql")]
    Sql(sql::Config),
    /// Every meter as a Homie 4.0.0 device.
    Homie(homie::Config),
    /// Home Assistant MQTT discovery configs and states.
    Homeassistant(homeassistant::Config),
    /// An MQTT broker: reading JSON, one topic per value, or a predecessor's layout.
    Mqtt(Box<mqtt::Config>),
}

impl SinkConfig {
    /// The `type` name.
    pub fn kind(&self) -> &'static str {
        match self {
            SinkConfig::Console(_) => "console",
            SinkConfig::Jsonl(_) => "jsonl",
            SinkConfig::Influxdb(_) => "influxdb",
            SinkConfig::Solarview(_) => "solarview",
            #[cfg(feature = "sql")]
            SinkConfig::Sql(_) => "sql",
            SinkConfig::Homie(_) => "homie",
            SinkConfig::Homeassistant(_) => "homeassistant",
            SinkConfig::Mqtt(_) => "mqtt",
        }
    }

    /// Semantic problems as (key, message), beyond what deserialization checks.
    pub fn validate(&self) -> Vec<(String, String)> {
        match self {
            SinkConfig::Console(c) => c.validate(),
            SinkConfig::Jsonl(c) => c.validate(),
            SinkConfig::Influxdb(c) => c.validate(),
            SinkConfig::Solarview(c) => c.validate(),
            #[cfg(feature = "sql")]
            SinkConfig::Sql(c) => c.validate(),
            SinkConfig::Homie(c) => c.validate(),
            SinkConfig::Homeassistant(c) => c.validate(),
            SinkConfig::Mqtt(c) => c.validate(),
        }
    }

    /// Runs the sink until `sub` ends, then flushes.
    ///
    /// # Errors
    /// Only for failures that make the sink unusable (a file that cannot be created). Transient
    /// destination outages are retried inside the sink.
    pub async fn run(
        self,
        name: String,
        sub: Subscription,
        stats: Arc<SinkStats>,
    ) -> anyhow::Result<()> {
        let _ = &name;
        match self {
            SinkConfig::Console(c) => console::run(c, sub, stats).await,
            SinkConfig::Jsonl(c) => jsonl::run(c, sub, stats).await,
            SinkConfig::Influxdb(c) => influxdb::run(*c, sub, stats).await,
            SinkConfig::Solarview(c) => solarview::run(c, sub, stats).await,
            #[cfg(feature = "sql")]
            SinkConfig::Sql(c) => sql::run(c, sub, stats).await,
            SinkConfig::Homie(c) => homie::run(c, sub, stats).await,
            SinkConfig::Homeassistant(c) => homeassistant::run(c, sub, stats).await,
            SinkConfig::Mqtt(c) => mqtt::run(*c, sub, stats).await,
        }
    }
}
