//! The pure part of the Home Assistant sink: readings → MQTT discovery configs and state
//! messages. No IO here; the connection loop in `mod.rs` sends what these functions return.
//!
//! # Topics (defaults: discovery prefix `homeassistant`, base topic `smart-meter/ha`)
//! ```text
//! homeassistant/sensor/smart-meter-evn/1-0-1-8-0-255/config   discovery config (JSON, retained)
//! smart-meter/ha/evn/1-0-1-8-0-255                              state: the plain value (retained)
//! smart-meter/ha/status                                         availability: online / offline
//! ```
//! The discovery `node_id` is `smart-meter-<meter>` and the `object_id` the key as one token
//! (`1-0-1-8-0-255`, `kmp-60`), both within Home Assistant's `[a-zA-Z0-9_-]`.
//!
//! # Config payload
//! `name` (English, from the OBIS/KMP tables), `unique_id` `smart-meter-<meter>-<key>` (stable
//! across restarts and renames of the sink), `state_topic`, `availability_topic` with
//! `payload_available`/`payload_not_available`, `unit_of_measurement` (the meter's unit; Wh and
//! kWh are both accepted by the Energy dashboard, so the meter's own unit is kept exact),
//! `device_class` (energy, power, reactive_power, apparent_power, voltage, current,
//! power_factor, frequency, temperature, volume/gas/water, volume_flow_rate, duration,
//! timestamp), `state_class` (`total_increasing` for energy totals, volume totals and hour
//! counters, `measurement` for power, voltage, current, power factor and the other numbers),
//! `suggested_display_precision` (the register's decimals), `entity_category` `diagnostic` for
//! identity/status values, `expire_after` when configured, the `device` block and `origin`.
//!
//! # Device block
//! `identifiers` `[smart-meter-<meter>]`, `name` (configured, else the meter id),
//! `manufacturer` from the three-letter FLAG id at the start of the DLMS logical device name
//! (0.0.42.0.0.255, also DSMR's hex form), of a DSMR identification line when a source passes
//! it as the named key `header` (the `dsmr` source does not, so far), or of the meter number
//! (`SMS1030…`, Kaifa's `1KFM…`); Kamstrup for KMP; only when the FLAG id is a known one.
//! `model`: the identification line's type part when known, else the protocol name; `serial_number` from 0.0.96.1.0.255 (else 0.0.96.1.1.255,
//! else KMP register 1001); `sw_version` from the firmware version register when sent. DSMR sends
//! identifiers as hex-encoded ASCII; they are decoded for the device block. Configured values win.
//! When a later reading tells more (a serial number the first one lacked), the configs are
//! published again.
//!
//! # Stale entities
//! With `remove_stale = true` the sink subscribes to the discovery configs under
//! `<prefix>/sensor/+/+/config`. For every meter that has reported in this run, a retained config
//! under its node id (`smart-meter-<meter>`) whose object id is not a key that meter has reported
//! is stale: the sink publishes an empty retained payload on that config topic, which makes Home
//! Assistant remove the entity and deletes the retained config. Entities of meters that do not
//! report are left alone (they may belong to another gateway on the same broker, or to a meter
//! that reports rarely); remove those by deleting the device in Home Assistant, which clears its
//! retained configs.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value as Json};
use smart_meter_core::{Key, Obis, Reading, Sample, Value};

use crate::homie::naming::{self, Group, Naming, Quantity};
use crate::homie::topics::{published_samples, Message};

/// Payload of the availability topic while the sink is connected.
pub const ONLINE: &str = "online";
/// Payload of the availability topic after a clean shutdown, and the last will.
pub const OFFLINE: &str = "offline";

/// Per-meter settings of the device block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceOverride {
    /// Device name shown in Home Assistant.
    pub name: Option<String>,
    /// Manufacturer.
    pub manufacturer: Option<String>,
    /// Model.
    pub model: Option<String>,
}

/// What the encoder needs from the sink settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Discovery prefix, `homeassistant` by default.
    pub discovery_prefix: String,
    /// Prefix of state and availability topics, `smart-meter/ha` by default.
    pub base_topic: String,
    /// Retain state messages (so Home Assistant shows values at once after its restart).
    pub retain_states: bool,
    /// `expire_after` in seconds: entities become unavailable when their meter is silent.
    pub expire_after: Option<u64>,
    /// Device block overrides per meter id.
    pub devices: BTreeMap<String, DeviceOverride>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            discovery_prefix: "homeassistant".into(),
            base_topic: "smart-meter/ha".into(),
            retain_states: true,
            expire_after: None,
            devices: BTreeMap::new(),
        }
    }
}

/// The device block of one meter, as far as it is known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Device name.
    pub name: String,
    /// Manufacturer.
    pub manufacturer: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// Serial number.
    pub serial_number: Option<String>,
    /// Firmware version.
    pub sw_version: Option<String>,
}

#[derive(Debug, Clone)]
struct Entity {
    key: Key,
    object_id: String,
    config: String,
    last_state: Option<String>,
}

#[derive(Debug, Clone)]
struct MeterState {
    meter: String,
    device: DeviceInfo,
    entities: Vec<Entity>,
}

/// The discovery state of every meter seen so far.
#[derive(Debug, Clone)]
pub struct Discovery {
    settings: Settings,
    meters: Vec<MeterState>,
}

impl Discovery {
    /// No meters yet.
    pub fn new(mut settings: Settings) -> Self {
        settings.discovery_prefix = settings.discovery_prefix.trim_end_matches('/').to_string();
        settings.base_topic = settings.base_topic.trim_end_matches('/').to_string();
        Discovery {
            settings,
            meters: Vec::new(),
        }
    }

    /// The availability topic shared by every entity of this sink.
    pub fn availability_topic(&self) -> String {
        format!("{}/status", self.settings.base_topic)
    }

    /// `online` on the availability topic (retained).
    pub fn online(&self) -> Message {
        Message::retained(self.availability_topic(), ONLINE)
    }

    /// `offline` on the availability topic (retained): the last will and the last message of a
    /// clean shutdown.
    pub fn offline(&self) -> Message {
        Message::retained(self.availability_topic(), OFFLINE)
    }

    /// The filter to subscribe to for stale-entity removal.
    pub fn config_filter(&self) -> String {
        format!("{}/sensor/+/+/config", self.settings.discovery_prefix)
    }

    /// The Home Assistant status topic (`<prefix>/status`, `online` when Home Assistant starts).
    pub fn ha_status_topic(&self) -> String {
        format!("{}/status", self.settings.discovery_prefix)
    }

    /// The discovery config topic of a meter's entity.
    pub fn config_topic(&self, meter: &str, object_id: &str) -> String {
        format!(
            "{}/sensor/{}/{object_id}/config",
            self.settings.discovery_prefix,
            node_id(meter)
        )
    }

    /// The state topic of a meter's entity.
    pub fn state_topic(&self, meter: &str, object_id: &str) -> String {
        format!("{}/{meter}/{object_id}", self.settings.base_topic)
    }

    /// The messages for one reading: the discovery config of every entity that is new or whose
    /// config changed (new device details), then the state of every value in the reading.
    pub fn update(&mut self, reading: &Reading) -> Vec<Message> {
        let meter = reading.meter.as_str().to_string();
        let mi = match self.meters.iter().position(|m| m.meter == meter) {
            Some(i) => i,
            None => {
                self.meters.push(MeterState {
                    meter: meter.clone(),
                    device: DeviceInfo::default(),
                    entities: Vec::new(),
                });
                self.meters.len().saturating_sub(1)
            }
        };
        let Some(state) = self.meters.get(mi) else {
            return Vec::new();
        };
        let device = device_info(reading, &state.device, self.settings.devices.get(&meter));
        let device_changed = device != state.device;

        let mut configs = Vec::new();
        let mut states = Vec::new();
        let mut new_entities: Vec<Entity> = Vec::new();
        let mut updated: Vec<(usize, String)> = Vec::new();
        let mut seen: Vec<&Key> = Vec::with_capacity(reading.samples.len());
        let samples = published_samples(reading);
        for s in &samples {
            if seen.contains(&&s.key) {
                continue; // the first occurrence wins, as in the reading JSON
            }
            seen.push(&s.key);
            let Some(payload) = state_payload(&s.value) else {
                continue; // nothing readable: not published
            };
            let existing = state.entities.iter().position(|e| e.key == s.key);
            let object_id = match existing.and_then(|ei| state.entities.get(ei)) {
                Some(e) => e.object_id.clone(),
                None => {
                    // Distinct keys can slug alike (named keys); keep object ids unique.
                    let base = naming::key_slug(&s.key);
                    let mut id = base.clone();
                    let mut n = 2u32;
                    while state
                        .entities
                        .iter()
                        .chain(new_entities.iter())
                        .any(|e| e.object_id == id)
                    {
                        id = format!("{base}-{n}");
                        n = n.saturating_add(1);
                    }
                    id
                }
            };
            let config = self.entity_config(&meter, &object_id, s, reading, &device);
            match existing {
                Some(ei) => {
                    let changed = state.entities.get(ei).is_none_or(|e| e.config != config);
                    if changed || device_changed {
                        configs.push(Message::retained(
                            self.config_topic(&meter, &object_id),
                            config.clone(),
                        ));
                    }
                    updated.push((ei, config));
                }
                None => {
                    configs.push(Message::retained(
                        self.config_topic(&meter, &object_id),
                        config.clone(),
                    ));
                    new_entities.push(Entity {
                        key: s.key.clone(),
                        object_id: object_id.clone(),
                        config,
                        last_state: None,
                    });
                }
            }
            states.push((s.key.clone(), object_id, payload));
        }
        // Entities not in this reading keep their config; a changed device block changes theirs
        // too.
        let mut stale_configs = Vec::new();
        if device_changed {
            for (ei, e) in state.entities.iter().enumerate() {
                if updated.iter().any(|(i, _)| *i == ei) {
                    continue;
                }
                let cfg = replace_device(&e.config, &device);
                stale_configs.push((ei, cfg));
            }
        }

        let retain = self.settings.retain_states;
        let mut out = configs;
        for (ei, cfg) in &stale_configs {
            if let Some(e) = self.meters.get(mi).and_then(|m| m.entities.get(*ei)) {
                out.push(Message::retained(
                    self.config_topic(&meter, &e.object_id),
                    cfg.clone(),
                ));
            }
        }
        for (_, object_id, payload) in &states {
            out.push(Message {
                topic: self.state_topic(&meter, object_id),
                payload: payload.clone(),
                retain,
                qos: 1,
            });
        }

        let Some(state) = self.meters.get_mut(mi) else {
            return out;
        };
        state.device = device;
        for (ei, cfg) in updated.into_iter().chain(stale_configs) {
            if let Some(e) = state.entities.get_mut(ei) {
                e.config = cfg;
            }
        }
        state.entities.extend(new_entities);
        for (key, _, payload) in states {
            if let Some(e) = state.entities.iter_mut().find(|e| e.key == key) {
                e.last_state = Some(payload);
            }
        }
        out
    }

    /// Everything again after a (re)connect or when Home Assistant restarts: `online`, every
    /// config, and every last state.
    pub fn announcement(&self) -> Vec<Message> {
        let mut out = vec![self.online()];
        for m in &self.meters {
            for e in &m.entities {
                out.push(Message::retained(
                    self.config_topic(&m.meter, &e.object_id),
                    e.config.clone(),
                ));
            }
        }
        for m in &self.meters {
            for e in &m.entities {
                if let Some(s) = &e.last_state {
                    out.push(Message {
                        topic: self.state_topic(&m.meter, &e.object_id),
                        payload: s.clone(),
                        retain: self.settings.retain_states,
                        qos: 1,
                    });
                }
            }
        }
        out
    }

    /// Removal messages (empty retained payloads) for the retained config topics in
    /// `retained` that belong to a meter seen in this run and name an entity it never reported.
    pub fn stale<'a>(&self, retained: impl IntoIterator<Item = &'a str>) -> Vec<Message> {
        let mut out = Vec::new();
        for topic in retained {
            let Some((node, object_id)) = self.parse_config_topic(topic) else {
                continue;
            };
            let Some(m) = self.meters.iter().find(|m| node_id(&m.meter) == node) else {
                continue;
            };
            if m.entities.iter().any(|e| e.object_id == object_id) {
                continue;
            }
            out.push(Message::retained(topic.to_string(), ""));
        }
        out
    }

    /// `(node_id, object_id)` of a sensor config topic under this sink's discovery prefix.
    pub fn parse_config_topic<'a>(&self, topic: &'a str) -> Option<(&'a str, &'a str)> {
        let rest = topic
            .strip_prefix(self.settings.discovery_prefix.as_str())?
            .strip_prefix("/sensor/")?
            .strip_suffix("/config")?;
        let (node, object_id) = rest.split_once('/')?;
        (!node.is_empty() && !object_id.is_empty() && !object_id.contains('/'))
            .then_some((node, object_id))
    }

    /// The current device block of `meter`, if it has reported.
    pub fn device(&self, meter: &str) -> Option<&DeviceInfo> {
        self.meters
            .iter()
            .find(|m| m.meter == meter)
            .map(|m| &m.device)
    }

    fn entity_config(
        &self,
        meter: &str,
        object_id: &str,
        s: &Sample,
        reading: &Reading,
        device: &DeviceInfo,
    ) -> String {
        let unit = s.unit.as_ref().and_then(|u| u.symbol());
        let n = naming::name_key(&s.key, unit);
        let mut c = Map::new();
        c.insert("name".into(), json!(n.name));
        c.insert(
            "unique_id".into(),
            json!(format!("smart-meter-{meter}-{object_id}")),
        );
        c.insert(
            "state_topic".into(),
            json!(self.state_topic(meter, object_id)),
        );
        c.insert(
            "availability_topic".into(),
            json!(self.availability_topic()),
        );
        c.insert("payload_available".into(), json!(ONLINE));
        c.insert("payload_not_available".into(), json!(OFFLINE));
        let class = classify(&n, s, reading);
        if let Some(u) = class.unit {
            c.insert("unit_of_measurement".into(), json!(u));
        }
        if let Some(dc) = class.device_class {
            c.insert("device_class".into(), json!(dc));
        }
        if let Some(sc) = class.state_class {
            c.insert("state_class".into(), json!(sc));
        }
        if let Value::Number(d) = &s.value {
            if d.exponent() < 0 {
                c.insert(
                    "suggested_display_precision".into(),
                    json!(d.exponent().unsigned_abs()),
                );
            }
        }
        if class.diagnostic {
            c.insert("entity_category".into(), json!("diagnostic"));
        }
        if let Some(secs) = self.settings.expire_after {
            c.insert("expire_after".into(), json!(secs));
        }
        c.insert("device".into(), device_json(meter, device));
        c.insert(
            "origin".into(),
            json!({
                "name": "smart-meter",
                "sw_version": env!("CARGO_PKG_VERSION"),
                "support_url": "https://github.com/smart-meter/smart-meter",
            }),
        );
        Json::Object(c).to_string()
    }
}

/// The discovery node id of a meter: `smart-meter-<meter>`.
pub fn node_id(meter: &str) -> String {
    format!("smart-meter-{meter}")
}

/// The state payload of a value; `None` for empty text (not readable, and an empty retained
/// payload would delete the topic).
pub fn state_payload(v: &Value) -> Option<String> {
    match v {
        Value::Text(t) if t.is_empty() => None,
        other => Some(other.to_string()),
    }
}

struct Class {
    unit: Option<String>,
    device_class: Option<&'static str>,
    state_class: Option<&'static str>,
    diagnostic: bool,
}

/// Unit, device class, state class and category of a sample.
fn classify(n: &Naming, s: &Sample, reading: &Reading) -> Class {
    let unit = s.unit.as_ref().and_then(|u| u.symbol()).map(ha_unit);
    let diagnostic = matches!(n.group, Group::Meter)
        || matches!(
            n.quantity,
            Quantity::Text | Quantity::Count | Quantity::Clock
        );
    match &s.value {
        Value::Time(t) => Class {
            unit: None,
            // A timestamp entity needs a time zone; a clock without offset stays text.
            device_class: t.offset_minutes.map(|_| "timestamp"),
            state_class: None,
            diagnostic,
        },
        Value::Text(_) => Class {
            unit: None,
            device_class: None,
            state_class: None,
            diagnostic,
        },
        Value::Number(_) => {
            let device_class = device_class(n, unit.as_deref(), s, reading);
            let state_class = if n.cumulative {
                "total_increasing"
            } else if device_class == Some("energy") {
                // Energy without a known cumulative register (e.g. a period value).
                "total"
            } else {
                "measurement"
            };
            Class {
                unit,
                device_class,
                state_class: Some(state_class),
                diagnostic: diagnostic && !matches!(n.quantity, Quantity::Count),
            }
        }
    }
}

/// Home Assistant spells litres with a capital L.
fn ha_unit(symbol: &str) -> String {
    match symbol {
        "l" => "L".into(),
        "l/h" => "L/h".into(),
        "m3" => "m³".into(),
        other => other.into(),
    }
}

fn device_class(
    n: &Naming,
    unit: Option<&str>,
    s: &Sample,
    reading: &Reading,
) -> Option<&'static str> {
    Some(match n.quantity {
        Quantity::Energy if unit.is_some() => "energy",
        Quantity::Power if unit.is_some() => "power",
        Quantity::ReactivePower if unit.is_some() => "reactive_power",
        Quantity::ApparentPower if unit.is_some() => "apparent_power",
        Quantity::Voltage if unit.is_some() => "voltage",
        Quantity::Current if unit.is_some() => "current",
        Quantity::PowerFactor if unit.is_none() || unit == Some("%") => "power_factor",
        Quantity::Frequency if unit.is_some() => "frequency",
        Quantity::Temperature if unit.is_some() => "temperature",
        Quantity::Duration if unit.is_some() => "duration",
        Quantity::VolumeFlow if unit == Some("m³/h") => "volume_flow_rate",
        Quantity::Volume if unit.is_some() => match mbus_medium(&s.key, reading) {
            Some(3) => "gas",
            Some(6 | 7) => "water",
            _ => "volume",
        },
        _ => return None,
    })
}

/// The M-Bus device type of a DSMR channel value (`0.B.24.1.0.255` of the same reading):
/// 3 gas, 6 warm water, 7 water.
fn mbus_medium(key: &Key, reading: &Reading) -> Option<u8> {
    let Key::Obis(o) = key else { return None };
    let [a, b, ..] = o.groups();
    if a != 0 || b == 0 {
        return None;
    }
    let v = reading.obis(Obis::new(0, b, 24, 1, 0, 255))?;
    match &v.value {
        Value::Text(t) => t.trim().parse().ok(),
        Value::Number(d) => d.to_i64().and_then(|i| u8::try_from(i).ok()),
        Value::Time(_) => None,
    }
}

fn device_json(meter: &str, d: &DeviceInfo) -> Json {
    let mut m = Map::new();
    m.insert("identifiers".into(), json!([node_id(meter)]));
    m.insert("name".into(), json!(d.name));
    if let Some(v) = &d.manufacturer {
        m.insert("manufacturer".into(), json!(v));
    }
    if let Some(v) = &d.model {
        m.insert("model".into(), json!(v));
    }
    if let Some(v) = &d.serial_number {
        m.insert("serial_number".into(), json!(v));
    }
    if let Some(v) = &d.sw_version {
        m.insert("sw_version".into(), json!(v));
    }
    Json::Object(m)
}

/// A config with its `device` block replaced.
fn replace_device(config: &str, device: &DeviceInfo) -> String {
    let Ok(Json::Object(mut c)) = serde_json::from_str::<Json>(config) else {
        return config.to_string();
    };
    let meter_node = c
        .get("device")
        .and_then(|d| d.get("identifiers"))
        .and_then(|i| i.get(0))
        .and_then(|i| i.as_str())
        .map(str::to_string);
    if let Some(node) = meter_node {
        if let Some(meter) = node.strip_prefix("smart-meter-") {
            c.insert("device".into(), device_json(meter, device));
        }
    }
    Json::Object(c).to_string()
}

/// The device block after `reading`: what it tells, over what earlier readings told, under the
/// configured overrides.
pub fn device_info(
    reading: &Reading,
    previous: &DeviceInfo,
    overrides: Option<&DeviceOverride>,
) -> DeviceInfo {
    let dsmr = reading.protocol == "dsmr";
    let text = |o: Obis| -> Option<String> {
        match &reading.obis(o)?.value {
            Value::Text(t) if !t.is_empty() => Some(if dsmr {
                hex_ascii(t).unwrap_or_else(|| t.clone())
            } else {
                t.clone()
            }),
            Value::Number(d) => Some(d.to_string()),
            _ => None,
        }
    };
    let header = reading
        .get(&Key::Named("header".into()))
        .and_then(|s| match &s.value {
            Value::Text(t) => Some(t.clone()),
            _ => None,
        });
    let ldn = text(Obis::LOGICAL_DEVICE_NAME);
    let number = text(Obis::METER_NUMBER);
    let equipment = text(Obis::new(0, 0, 96, 1, 1, 255));
    let kmp_serial = reading
        .get(&Key::Kmp(1001))
        .map(|s| s.value.to_string())
        .filter(|s| !s.is_empty());
    let firmware = text(Obis::new(1, 0, 0, 2, 0, 255));

    let manufacturer = if reading.protocol == "kamstrup" {
        Some("Kamstrup".to_string())
    } else {
        ldn.as_deref()
            .and_then(flag_at_start)
            .or_else(|| {
                header
                    .as_deref()
                    .and_then(|h| flag_at_start(h.trim_start_matches('/')))
            })
            .or_else(|| number.as_deref().and_then(flag_in_meter_number))
            .and_then(flag_manufacturer)
            .map(str::to_string)
    };
    let model = header
        .as_deref()
        .and_then(dsmr_model)
        .or_else(|| previous.model.clone())
        .unwrap_or_else(|| reading.protocol.to_string());
    let serial = number.or(equipment).or(kmp_serial);

    let o = overrides.cloned().unwrap_or_default();
    DeviceInfo {
        name: o.name.unwrap_or_else(|| reading.meter.as_str().to_string()),
        manufacturer: o
            .manufacturer
            .or(manufacturer)
            .or_else(|| previous.manufacturer.clone()),
        model: Some(o.model.unwrap_or(model)),
        serial_number: serial.or_else(|| previous.serial_number.clone()),
        sw_version: firmware.or_else(|| previous.sw_version.clone()),
    }
}

/// ASCII text of a hex string when every byte is printable (DSMR's 96.1.1, 42.0.0).
fn hex_ascii(s: &str) -> Option<String> {
    let s = s.trim();
    if s.is_empty() || s.len() % 2 != 0 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = String::with_capacity(s.len() / 2);
    let bytes = s.as_bytes();
    for pair in bytes.chunks(2) {
        let text = std::str::from_utf8(pair).ok()?;
        let b = u8::from_str_radix(text, 16).ok()?;
        if !(0x20..0x7f).contains(&b) {
            return None;
        }
        out.push(char::from(b));
    }
    Some(out)
}

/// The three-letter FLAG id at the start of `s`.
fn flag_at_start(s: &str) -> Option<String> {
    let flag: String = s.chars().take(3).collect();
    (flag.len() == 3 && flag.chars().all(|c| c.is_ascii_alphabetic()))
        .then(|| flag.to_ascii_uppercase())
}

/// The FLAG id inside a meter number: at its start (`SMS1030788000020`) or after one digit
/// (Kaifa's `1KFM0100000035`).
fn flag_in_meter_number(s: &str) -> Option<String> {
    flag_at_start(s).or_else(|| {
        let mut chars = s.chars();
        chars
            .next()
            .filter(char::is_ascii_digit)
            .and_then(|_| flag_at_start(chars.as_str()))
    })
}

/// Manufacturers of the FLAG ids seen on the supported meters.
fn flag_manufacturer(flag: String) -> Option<&'static str> {
    Some(match flag.as_str() {
        "KFM" => "Kaifa",
        "SAG" => "Sagemcom",
        "LGZ" | "LGF" => "Landis+Gyr",
        "ISK" => "Iskraemeco",
        "SMS" => "Siemens",
        "KAM" => "Kamstrup",
        "ELS" => "Elster",
        "EMH" => "EMH metering",
        "ADN" => "Aidon",
        "XMX" => "Xemex",
        _ => return None,
    })
}

/// The type part of a DSMR identification line: `/ISk5\2MT382-1000` → `MT382-1000`,
/// `/KFM5KAIFA-METER` → `KAIFA-METER`.
fn dsmr_model(header: &str) -> Option<String> {
    let rest = header.trim().strip_prefix('/')?;
    let rest = rest.get(4..)?; // FLAG id and baud-rate character
    let rest = match rest.strip_prefix('\\') {
        Some(r) => r.get(1..)?, // "\2": the enhanced identification digit
        None => rest,
    };
    let model = rest.trim();
    (!model.is_empty()).then(|| model.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use smart_meter_core::{Decimal, MeterId, MeterTime, Unit};

    fn reading(meter: &str, protocol: &'static str, samples: Vec<Sample>) -> Reading {
        let mut r = Reading::new(MeterId::new(meter).unwrap(), protocol);
        r.samples = samples;
        r
    }

    fn num(key: &str, m: i128, e: i8, unit: Option<Unit>) -> Sample {
        Sample::number(Key::Obis(key.parse().unwrap()), Decimal::new(m, e), unit)
    }

    fn config_of(msgs: &[Message], topic: &str) -> serde_json::Value {
        let m = msgs
            .iter()
            .find(|m| m.topic == topic)
            .unwrap_or_else(|| panic!("no {topic}"));
        assert!(m.retain);
        serde_json::from_str(&m.payload).unwrap()
    }

    #[test]
    fn energy_totals_are_energy_dashboard_sensors() {
        let mut d = Discovery::new(Settings::default());
        let msgs = d.update(&reading(
            "evn",
            "mbus-dlms",
            vec![
                num("1.0.1.8.0.255", 12937, 0, Some(Unit::WH)),
                Sample::text(Key::Obis(Obis::METER_NUMBER), "1KFM0100000035"),
                Sample::text(Key::Obis(Obis::LOGICAL_DEVICE_NAME), "KFM1100100000035"),
            ],
        ));
        let c = config_of(
            &msgs,
            "homeassistant/sensor/smart-meter-evn/1-0-1-8-0-255/config",
        );
        assert_eq!(
            c,
            json!({
                "name": "Active energy import",
                "unique_id": "smart-meter-evn-1-0-1-8-0-255",
                "state_topic": "smart-meter/ha/evn/1-0-1-8-0-255",
                "availability_topic": "smart-meter/ha/status",
                "payload_available": "online",
                "payload_not_available": "offline",
                "unit_of_measurement": "Wh",
                "device_class": "energy",
                "state_class": "total_increasing",
                "device": {
                    "identifiers": ["smart-meter-evn"],
                    "name": "evn",
                    "manufacturer": "Kaifa",
                    "model": "mbus-dlms",
                    "serial_number": "1KFM0100000035",
                },
                "origin": {
                    "name": "smart-meter",
                    "sw_version": env!("CARGO_PKG_VERSION"),
                    "support_url": "https://github.com/smart-meter/smart-meter",
                },
            })
        );
        let state = msgs
            .iter()
            .find(|m| m.topic == "smart-meter/ha/evn/1-0-1-8-0-255")
            .unwrap();
        assert_eq!(state.payload, "12937");
        assert!(state.retain);
        // Configs come before states, so the entity exists when its state arrives.
        let first_state = msgs.iter().position(|m| !m.topic.ends_with("/config"));
        let last_config = msgs.iter().rposition(|m| m.topic.ends_with("/config"));
        assert!(last_config < first_state);
        let serial = config_of(
            &msgs,
            "homeassistant/sensor/smart-meter-evn/0-0-96-1-0-255/config",
        );
        assert_eq!(serial["entity_category"], "diagnostic");
        assert!(serial.get("state_class").is_none());
        assert!(serial.get("unit_of_measurement").is_none());
    }

    #[test]
    fn instantaneous_values_are_measurements_with_their_device_class() {
        let mut d = Discovery::new(Settings::default());
        let msgs = d.update(&reading(
            "m",
            "mbus-dlms",
            vec![
                num("1.0.1.7.0.255", 1068, 0, Some(Unit::W)),
                num("1.0.32.7.0.255", 2337, -1, Some(Unit::V)),
                num("1.0.31.7.0.255", 123, -2, Some(Unit::A)),
                num("1.0.13.7.0.255", -819, -3, None),
                num("1.0.3.7.0.255", 103, 0, Some(Unit::VAR)),
                num("1.0.3.8.0.255", 671304, 0, Some(Unit::VARH)),
            ],
        ));
        let get = |k: &str| {
            config_of(
                &msgs,
                &format!("homeassistant/sensor/smart-meter-m/{k}/config"),
            )
        };
        let p = get("1-0-1-7-0-255");
        assert_eq!(
            (
                &p["device_class"],
                &p["state_class"],
                &p["unit_of_measurement"]
            ),
            (&json!("power"), &json!("measurement"), &json!("W"))
        );
        let v = get("1-0-32-7-0-255");
        assert_eq!(
            (
                &v["device_class"],
                &v["state_class"],
                &v["suggested_display_precision"]
            ),
            (&json!("voltage"), &json!("measurement"), &json!(1))
        );
        let i = get("1-0-31-7-0-255");
        assert_eq!(
            (&i["device_class"], &i["unit_of_measurement"]),
            (&json!("current"), &json!("A"))
        );
        let pf = get("1-0-13-7-0-255");
        assert_eq!(pf["device_class"], "power_factor");
        assert_eq!(pf["state_class"], "measurement");
        assert!(pf.get("unit_of_measurement").is_none());
        assert_eq!(pf["name"], "Power factor");
        let q = get("1-0-3-7-0-255");
        assert_eq!(q["device_class"], "reactive_power");
        let qe = get("1-0-3-8-0-255");
        assert!(qe.get("device_class").is_none());
        assert_eq!(qe["state_class"], "total_increasing");
        assert_eq!(qe["unit_of_measurement"], "varh");
        let pf_state = msgs
            .iter()
            .find(|m| m.topic == "smart-meter/ha/m/1-0-13-7-0-255")
            .unwrap();
        assert_eq!(pf_state.payload, "-0.819");
    }

    #[test]
    fn configs_are_sent_once_and_again_only_when_they_change() {
        let mut d = Discovery::new(Settings::default());
        let r1 = reading(
            "m",
            "mbus-dlms",
            vec![num("1.0.1.8.0.255", 1, 0, Some(Unit::WH))],
        );
        assert_eq!(d.update(&r1).len(), 2);
        let again = d.update(&r1);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].topic, "smart-meter/ha/m/1-0-1-8-0-255");
        // A serial number appears: the existing entity's device block is updated.
        let r2 = reading(
            "m",
            "mbus-dlms",
            vec![Sample::text(
                Key::Obis(Obis::METER_NUMBER),
                "SMS1030788000020",
            )],
        );
        let msgs = d.update(&r2);
        let c = config_of(
            &msgs,
            "homeassistant/sensor/smart-meter-m/1-0-1-8-0-255/config",
        );
        assert_eq!(c["device"]["serial_number"], "SMS1030788000020");
        assert_eq!(c["device"]["manufacturer"], "Siemens");
        assert_eq!(c["unit_of_measurement"], "Wh");
    }

    #[test]
    fn dsmr_identifiers_are_decoded_and_the_header_gives_the_model() {
        let mut d = Discovery::new(Settings::default());
        d.update(&reading(
            "p1",
            "dsmr",
            vec![
                Sample::text(Key::Named("header".into()), "/ISk5\\2MT382-1000"),
                Sample::text(
                    Key::Obis("0.0.96.1.1.255".parse().unwrap()),
                    "4B384547303034303436333935353037",
                ),
                num(
                    "1.0.1.8.1.255",
                    1234567,
                    -3,
                    Some(Unit::Symbol("kWh".into())),
                ),
            ],
        ));
        let dev = d.device("p1").unwrap();
        assert_eq!(dev.manufacturer.as_deref(), Some("Iskraemeco"));
        assert_eq!(dev.model.as_deref(), Some("MT382-1000"));
        assert_eq!(dev.serial_number.as_deref(), Some("K8EG004046395507"));
        let mut d = Discovery::new(Settings::default());
        d.update(&reading(
            "hu",
            "dsmr",
            vec![Sample::text(
                Key::Obis(Obis::LOGICAL_DEVICE_NAME),
                "53414733303832323030303032313630",
            )],
        ));
        assert_eq!(
            d.device("hu").unwrap().manufacturer.as_deref(),
            Some("Sagemcom")
        );
    }

    #[test]
    fn configured_device_details_win() {
        let mut s = Settings::default();
        s.devices.insert(
            "heat".into(),
            DeviceOverride {
                name: Some("Fernwärme".into()),
                manufacturer: None,
                model: Some("Multical 403".into()),
            },
        );
        let mut d = Discovery::new(s);
        let msgs = d.update(&reading(
            "heat",
            "kamstrup",
            vec![
                Sample::number(
                    Key::Kmp(60),
                    Decimal::new(55006, -3),
                    Some(Unit::Symbol("MWh".into())),
                ),
                Sample::number(Key::Kmp(86), Decimal::new(5365, -2), Some(Unit::Dlms(9))),
                Sample::number(
                    Key::Kmp(89),
                    Decimal::new(786, -2),
                    Some(Unit::Symbol("K".into())),
                ),
                Sample::number(Key::Kmp(68), Decimal::new(187556, -2), Some(Unit::Dlms(13))),
                Sample::number(
                    Key::Kmp(74),
                    Decimal::new(0, 0),
                    Some(Unit::Symbol("l/h".into())),
                ),
                Sample::number(
                    Key::Kmp(1004),
                    Decimal::new(51234, 0),
                    Some(Unit::Symbol("h".into())),
                ),
            ],
        ));
        let get = |k: &str| {
            config_of(
                &msgs,
                &format!("homeassistant/sensor/smart-meter-heat/{k}/config"),
            )
        };
        let e = get("kmp-60");
        assert_eq!(e["device"]["name"], "Fernwärme");
        assert_eq!(e["device"]["manufacturer"], "Kamstrup");
        assert_eq!(e["device"]["model"], "Multical 403");
        assert_eq!(
            (
                &e["device_class"],
                &e["state_class"],
                &e["unit_of_measurement"]
            ),
            (&json!("energy"), &json!("total_increasing"), &json!("MWh"))
        );
        assert_eq!(e["unique_id"], "smart-meter-heat-kmp-60");
        assert_eq!(get("kmp-86")["device_class"], "temperature");
        assert!(get("kmp-89").get("device_class").is_none());
        assert_eq!(get("kmp-68")["device_class"], "volume");
        assert_eq!(get("kmp-68")["state_class"], "total_increasing");
        assert_eq!(get("kmp-74")["unit_of_measurement"], "L/h");
        assert!(get("kmp-74").get("device_class").is_none());
        assert_eq!(get("kmp-1004")["device_class"], "duration");
        assert_eq!(get("kmp-1004")["state_class"], "total_increasing");
    }

    #[test]
    fn mbus_channels_are_gas_or_water_by_their_device_type() {
        let mut d = Discovery::new(Settings::default());
        let msgs = d.update(&reading(
            "p1",
            "dsmr",
            vec![
                Sample::text(Key::Obis("0.1.24.1.0.255".parse().unwrap()), "003"),
                num("0.1.24.2.1.255", 981443, -3, Some(Unit::Dlms(13))),
                Sample::text(Key::Obis("0.2.24.1.0.255".parse().unwrap()), "007"),
                num("0.2.24.2.1.255", 8579, -3, Some(Unit::Dlms(13))),
            ],
        ));
        let gas = config_of(
            &msgs,
            "homeassistant/sensor/smart-meter-p1/0-1-24-2-1-255/config",
        );
        assert_eq!(
            (&gas["device_class"], &gas["state_class"]),
            (&json!("gas"), &json!("total_increasing"))
        );
        let water = config_of(
            &msgs,
            "homeassistant/sensor/smart-meter-p1/0-2-24-2-1-255/config",
        );
        assert_eq!(water["device_class"], "water");
        assert_eq!(water["name"], "M-Bus channel 2 reading");
    }

    #[test]
    fn clocks_with_an_offset_are_timestamps() {
        let mut d = Discovery::new(Settings::default());
        let t = MeterTime::new(2021, 9, 27, 9, 47, 15, None, Some(120)).unwrap();
        let msgs = d.update(&reading(
            "m",
            "mbus-dlms",
            vec![Sample {
                key: Key::Obis(Obis::CLOCK),
                value: Value::Time(t),
                unit: None,
            }],
        ));
        let c = config_of(
            &msgs,
            "homeassistant/sensor/smart-meter-m/0-0-1-0-0-255/config",
        );
        assert_eq!(c["device_class"], "timestamp");
        assert_eq!(c["entity_category"], "diagnostic");
        assert!(c.get("state_class").is_none());
        assert!(msgs
            .iter()
            .any(|m| m.payload == "2021-09-27T09:47:15+02:00"));
    }

    #[test]
    fn empty_values_publish_nothing() {
        let mut d = Discovery::new(Settings::default());
        let msgs = d.update(&reading(
            "m",
            "dsmr",
            vec![Sample::text(
                Key::Obis("0.0.96.13.0.255".parse().unwrap()),
                "",
            )],
        ));
        assert!(msgs.is_empty());
    }

    #[test]
    fn named_keys_that_slug_alike_get_distinct_entities() {
        let mut d = Discovery::new(Settings::default());
        let msgs = d.update(&reading(
            "m",
            "dsmr",
            vec![
                Sample::text(Key::Named("a.b".into()), "x"),
                Sample::text(Key::Named("a_b".into()), "y"),
            ],
        ));
        let a = config_of(&msgs, "homeassistant/sensor/smart-meter-m/a-b/config");
        let b = config_of(&msgs, "homeassistant/sensor/smart-meter-m/a-b-2/config");
        assert_ne!(a["unique_id"], b["unique_id"]);
        let again = d.update(&reading(
            "m",
            "dsmr",
            vec![Sample::text(Key::Named("a_b".into()), "z")],
        ));
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].topic, "smart-meter/ha/m/a-b-2");
    }

    #[test]
    fn stale_configs_of_reporting_meters_are_removed() {
        let mut d = Discovery::new(Settings::default());
        d.update(&reading(
            "m",
            "mbus-dlms",
            vec![num("1.0.1.8.0.255", 1, 0, Some(Unit::WH))],
        ));
        let retained = [
            "homeassistant/sensor/smart-meter-m/1-0-1-8-0-255/config",
            "homeassistant/sensor/smart-meter-m/1-0-2-8-0-255/config",
            "homeassistant/sensor/smart-meter-other/1-0-2-8-0-255/config",
            "homeassistant/sensor/someone-else/x/config",
            "homeassistant/binary_sensor/smart-meter-m/x/config",
        ];
        let removals = d.stale(retained);
        assert_eq!(
            removals,
            vec![Message::retained(
                "homeassistant/sensor/smart-meter-m/1-0-2-8-0-255/config".into(),
                ""
            )]
        );
    }

    #[test]
    fn settings_change_prefixes_and_add_expiry() {
        let mut d = Discovery::new(Settings {
            discovery_prefix: "ha/".into(),
            base_topic: "meters".into(),
            retain_states: false,
            expire_after: Some(300),
            devices: BTreeMap::new(),
        });
        let msgs = d.update(&reading(
            "m",
            "mbus-dlms",
            vec![num("1.0.1.8.0.255", 1, 0, Some(Unit::WH))],
        ));
        let c = config_of(&msgs, "ha/sensor/smart-meter-m/1-0-1-8-0-255/config");
        assert_eq!(c["expire_after"], 300);
        assert_eq!(c["availability_topic"], "meters/status");
        let state = msgs
            .iter()
            .find(|m| m.topic == "meters/m/1-0-1-8-0-255")
            .unwrap();
        assert!(!state.retain);
        let again = d.announcement();
        assert_eq!(
            again[0],
            Message::retained("meters/status".into(), "online")
        );
        assert_eq!(again.len(), 3);
        assert_eq!(d.offline().payload, "offline");
    }
}
