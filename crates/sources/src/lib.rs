//! Sources of readings: transports that move bytes and protocol adapters that turn them into
//! readings.
//!
//! # Layout
//! - [`protocol`]: the [`protocol::MeterProtocol`] seam every adapter
//!   implements.
//! - [`transport`]: `serial`, `tcp` and `file` replay, all driving the same pump loop.
//! - [`key`]: [`key::AesKey`], keys from config with redacted `Debug`.
//! - [`serial_settings`]: line settings and per-protocol defaults.
//! - One folder per protocol adapter, listed in [`ProtocolConfig`].
//!
//! # Adding a protocol
//! 1. A pure parser crate under `crates/proto/`.
//! 2. A folder `src/<name>/` here with `NAME`, `LINE` (serial defaults), `Config` (serde,
//!    `deny_unknown_fields`: the protocol-specific keys of a source table such as `key`,
//!    `auth_key`, `layout`, `registers`, `interval`), `Config::validate`,
//!    `Config::build(meter) -> Box<dyn MeterProtocol>` and a `map.rs` from proto types to
//!    [`Reading`](smart_meter_core::Reading).
//! 3. One variant in [`ProtocolConfig`] and one arm in each of its matches.

pub mod dsmr;
pub mod hdlc_dlms;
pub mod kamstrup;
pub mod key;
pub mod mbus_dlms;
pub mod mqtt_ingest;
pub mod protocol;
pub mod serial_settings;
pub mod transport;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use smart_meter_core::stats::SourceStats;
use smart_meter_core::{MeterId, Publisher};
use tokio_util::sync::CancellationToken;
use tracing::error;

use protocol::MeterProtocol;
use serial_settings::LineDefaults;
use transport::file::{FileConfig, Speed};
use transport::serial::SerialConfig;
use transport::Sink;

/// The protocol of a source and its protocol-specific settings. The only list of protocols.
#[derive(Debug, Clone)]
pub enum ProtocolConfig {
    /// DLMS/COSEM push over wired M-Bus (Netz NÖ, KSM West).
    MbusDlms(mbus_dlms::Config),
    /// DLMS/COSEM push over HDLC (Wiener Netze, Netz Burgenland, IR heads, HAN ports).
    HdlcDlms(hdlc_dlms::Config),
    /// DSMR P1 telegrams, plain or encrypted (Energienetze Steiermark, Luxembourg).
    Dsmr(dsmr::Config),
    /// Kamstrup KMP polling over an optical head.
    Kamstrup(kamstrup::Config),
}

/// The protocol names accepted in `protocol = "…"`.
pub const PROTOCOLS: &[&str] = &[mbus_dlms::NAME, hdlc_dlms::NAME, dsmr::NAME, kamstrup::NAME];

impl ProtocolConfig {
    /// Parses the protocol-specific keys (`rest`: the source table without the transport and
    /// common keys) for `protocol`.
    ///
    /// # Errors
    /// (key, message) pairs: an unknown protocol, unknown keys, wrong types.
    pub fn parse(
        protocol: &str,
        rest: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, Vec<(String, String)>> {
        match protocol {
            mbus_dlms::NAME => parse_protocol(rest).map(ProtocolConfig::MbusDlms),
            hdlc_dlms::NAME => parse_protocol(rest).map(ProtocolConfig::HdlcDlms),
            dsmr::NAME => parse_protocol(rest).map(ProtocolConfig::Dsmr),
            kamstrup::NAME => parse_protocol(rest).map(ProtocolConfig::Kamstrup),
            other => Err(vec![(
                "protocol".into(),
                format!(
                    "unknown protocol {other:?}; expected one of: {}",
                    PROTOCOLS.join(", ")
                ),
            )]),
        }
    }

    /// The protocol name.
    pub fn name(&self) -> &'static str {
        match self {
            ProtocolConfig::MbusDlms(_) => mbus_dlms::NAME,
            ProtocolConfig::HdlcDlms(_) => hdlc_dlms::NAME,
            ProtocolConfig::Dsmr(_) => dsmr::NAME,
            ProtocolConfig::Kamstrup(_) => kamstrup::NAME,
        }
    }

    /// Serial defaults of the protocol.
    pub fn line(&self) -> LineDefaults {
        match self {
            ProtocolConfig::MbusDlms(_) => mbus_dlms::LINE,
            ProtocolConfig::HdlcDlms(_) => hdlc_dlms::LINE,
            ProtocolConfig::Dsmr(_) => dsmr::LINE,
            ProtocolConfig::Kamstrup(_) => kamstrup::LINE,
        }
    }

    /// Semantic problems as (key, message).
    pub fn validate(&self) -> Vec<(String, String)> {
        match self {
            ProtocolConfig::MbusDlms(c) => c.validate(),
            ProtocolConfig::HdlcDlms(c) => c.validate(),
            ProtocolConfig::Dsmr(c) => c.validate(),
            ProtocolConfig::Kamstrup(c) => c.validate(),
        }
    }

    /// A fresh protocol instance for `meter`.
    pub fn build(&self, meter: MeterId) -> Box<dyn MeterProtocol> {
        match self {
            ProtocolConfig::MbusDlms(c) => c.build(meter),
            ProtocolConfig::HdlcDlms(c) => c.build(meter),
            ProtocolConfig::Dsmr(c) => c.build(meter),
            ProtocolConfig::Kamstrup(c) => c.build(meter),
        }
    }
}

fn parse_protocol<T: serde::de::DeserializeOwned>(
    rest: serde_json::Map<String, serde_json::Value>,
) -> Result<T, Vec<(String, String)>> {
    serde_path_to_error::deserialize(serde_json::Value::Object(rest)).map_err(|e| {
        let path = e.path().to_string();
        let key = if path == "." { String::new() } else { path };
        vec![(key, e.into_inner().to_string())]
    })
}

/// How a source gets its bytes.
#[derive(Debug, Clone)]
pub enum Transport {
    /// A local serial port.
    Serial(SerialConfig),
    /// A TCP serial bridge, `host:port`.
    Tcp(String),
    /// A replayed capture.
    File(FileConfig),
    /// Raw frames as MQTT messages (ESP8266 bridges).
    Mqtt(Box<mqtt_ingest::Config>),
}

impl Transport {
    /// Short description for logs.
    pub fn describe(&self) -> String {
        match self {
            Transport::Serial(s) => format!("serial {}", s.port),
            Transport::Tcp(a) => format!("tcp {a}"),
            Transport::File(f) => format!("file {}", f.path.display()),
            Transport::Mqtt(m) => format!("mqtt {} {}", m.url, m.filter()),
        }
    }
}

/// `serial = "/dev/ttyUSB0"` or `serial = { port = …, baud = … }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SerialSpec {
    /// Just the device.
    Port(String),
    /// Device and line settings.
    Table(SerialConfig),
}

/// A source table as written in the config, before validation.
#[derive(Debug, Clone, Deserialize)]
pub struct RawSource {
    /// `mbus-dlms`, `hdlc-dlms`, `dsmr`, `kamstrup`.
    pub protocol: String,
    /// Serial transport.
    pub serial: Option<SerialSpec>,
    /// TCP transport.
    pub tcp: Option<String>,
    /// File replay transport.
    pub file: Option<PathBuf>,
    /// File replay pace.
    pub speed: Option<Speed>,
    /// File replay: start again at the end.
    #[serde(rename = "loop")]
    pub repeat: Option<bool>,
    /// File replay: pause between passes (default 1 s in realtime, none at max speed).
    #[serde(default, with = "humantime_serde")]
    pub pause: Option<Duration>,
    /// Raw frames over MQTT.
    pub mqtt: Option<Box<mqtt_ingest::Config>>,
    /// The meter id in outputs (default: the source's name).
    pub meter: Option<String>,
    /// Everything else: the protocol's own keys.
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

/// A validated source.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// The table name under `sources`.
    pub name: String,
    /// The meter id used in readings.
    pub meter: MeterId,
    /// Where the bytes come from.
    pub transport: Transport,
    /// How they are decoded.
    pub protocol: ProtocolConfig,
}

impl SourceConfig {
    /// Validates a raw source table. Relative file paths resolve against `base` (the config
    /// folder).
    ///
    /// # Errors
    /// Every problem found, as (key relative to the source table, message).
    pub fn from_raw(
        name: &str,
        raw: RawSource,
        base: &Path,
    ) -> Result<Self, Vec<(String, String)>> {
        let mut errors = Vec::new();
        let meter = match MeterId::new(raw.meter.as_deref().unwrap_or(name)) {
            Ok(m) => Some(m),
            Err(e) => {
                let key = if raw.meter.is_some() { "meter" } else { "" };
                let hint = if raw.meter.is_some() {
                    String::new()
                } else {
                    " (the source's name is its meter id unless `meter` is set)".to_string()
                };
                errors.push((key.to_string(), format!("{e}{hint}")));
                None
            }
        };
        let count = usize::from(raw.serial.is_some())
            + usize::from(raw.tcp.is_some())
            + usize::from(raw.file.is_some())
            + usize::from(raw.mqtt.is_some());
        if count != 1 {
            errors.push((
                String::new(),
                format!(
                    "exactly one transport is required (serial, tcp, file or mqtt), found {count}"
                ),
            ));
        }
        if raw.file.is_none() {
            for (k, present) in [
                ("speed", raw.speed.is_some()),
                ("loop", raw.repeat.is_some()),
                ("pause", raw.pause.is_some()),
            ] {
                if present {
                    errors.push((k.to_string(), "only applies to `file` replay".into()));
                }
            }
        }
        let transport = if let Some(m) = raw.mqtt {
            for (k, msg) in m.validate() {
                errors.push((format!("mqtt.{k}"), msg));
            }
            Some(Transport::Mqtt(m))
        } else if let Some(spec) = raw.serial {
            let cfg = match spec {
                SerialSpec::Port(port) => SerialConfig {
                    port,
                    baud: None,
                    parity: None,
                    data_bits: None,
                    stop_bits: None,
                },
                SerialSpec::Table(t) => t,
            };
            errors.extend(cfg.validate());
            Some(Transport::Serial(cfg))
        } else if let Some(addr) = raw.tcp {
            if !addr.contains(':') {
                errors.push(("tcp".into(), format!("expected host:port, got {addr:?}")));
            }
            Some(Transport::Tcp(addr))
        } else if let Some(path) = raw.file {
            let path = if path.is_relative() {
                base.join(path)
            } else {
                path
            };
            if !path.is_file() {
                errors.push(("file".into(), format!("no such file: {}", path.display())));
            }
            let speed = raw.speed.unwrap_or_default();
            let pause = raw.pause.unwrap_or(match speed {
                Speed::Max => Duration::ZERO,
                Speed::Realtime => Duration::from_secs(1),
            });
            Some(Transport::File(FileConfig {
                path,
                speed,
                repeat: raw.repeat.unwrap_or(false),
                pause,
            }))
        } else {
            None
        };
        let protocol = match ProtocolConfig::parse(&raw.protocol, raw.rest) {
            Ok(p) => {
                errors.extend(p.validate());
                Some(p)
            }
            Err(e) => {
                errors.extend(e);
                None
            }
        };
        if let (Some(Transport::Mqtt(_)), Some(p)) = (&transport, &protocol) {
            if p.name() == kamstrup::NAME {
                errors.push((
                    "mqtt".into(),
                    "kamstrup meters are polled; an MQTT stream cannot carry the requests".into(),
                ));
            }
        }
        match (meter, transport, protocol) {
            (Some(meter), Some(transport), Some(protocol)) if errors.is_empty() => {
                Ok(SourceConfig {
                    name: name.to_string(),
                    meter,
                    transport,
                    protocol,
                })
            }
            _ => Err(errors),
        }
    }

    /// Runs the source until its input ends (file replay) or `cancel` fires.
    pub async fn run(
        self,
        publisher: Publisher,
        stats: Arc<SourceStats>,
        cancel: CancellationToken,
    ) {
        let mut proto = self.protocol.build(self.meter.clone());
        let line = self.protocol.line();
        let mut sink = Sink::new(self.name.clone(), publisher, stats);
        match &self.transport {
            Transport::File(f) => {
                if let Err(e) =
                    transport::file::run(f, line, proto.as_mut(), &mut sink, &cancel).await
                {
                    error!(source = %self.name, error = %e, "Replay failed.");
                    sink.stats.set_last_error(Some(e));
                }
            }
            Transport::Serial(s) => {
                transport::serial::run(s, line, proto.as_mut(), &mut sink, &cancel).await;
            }
            Transport::Tcp(addr) => {
                transport::tcp::run(addr, proto.as_mut(), &mut sink, &cancel).await;
            }
            Transport::Mqtt(m) => {
                let protocol = self.protocol.clone();
                let meter = self.meter.clone();
                let made =
                    mqtt_ingest::run(m, || protocol.build(meter.clone()), &mut sink, &cancel);
                if let Err(e) = made.await {
                    error!(source = %self.name, error = %e, "MQTT source cannot run.");
                    sink.stats.set_last_error(Some(e));
                }
            }
        }
    }
}
