//! The pure part of the Homie sink: one [`HomieDevice`] per meter turns readings into the
//! Homie 4.0.0 topics and payloads to publish. No IO here; the connection loop in `mod.rs`
//! sends what these functions return, in order.
//!
//! # Topics of a device (base topic `homie`, device `evn`)
//! ```text
//! homie/evn/$state            init → ready; disconnected on shutdown; lost (last will)
//! homie/evn/$homie            4.0.0
//! homie/evn/$name             the configured name, else the meter id
//! homie/evn/$extensions       "" (no extensions)
//! homie/evn/$implementation   smart-meter
//! homie/evn/$nodes            energy,power,voltage,…   (only nodes that have properties)
//! homie/evn/energy/$name      Energy
//! homie/evn/energy/$type      cumulative energy registers
//! homie/evn/energy/$properties imported-total,exported-total,…
//! homie/evn/energy/imported-total/$name      Active energy import
//! homie/evn/energy/imported-total/$datatype  integer
//! homie/evn/energy/imported-total/$unit      Wh
//! homie/evn/energy/imported-total/$settable  false
//! homie/evn/energy/imported-total/$retained  true
//! homie/evn/energy/imported-total            12937
//! ```
//! Every message is retained and sent with QoS 1.
//!
//! # Decisions
//! - **The device appears with the first reading of its meter.** Its properties are the keys of
//!   that reading. A later reading with a new key adds the property (and its node), and the
//!   device is announced again: `$state` = `init`, every attribute, the values, `$state` =
//!   `ready`. The same happens when a property's unit changes or its datatype must widen.
//! - **Datatypes are decided when a property is announced**, from its first value: `datetime` for
//!   the meter clock, `string` for text, and for numbers `float` when the register has a
//!   fractional resolution (a negative scaler / decimal digits, even if this value is whole, e.g.
//!   `2300e-1` V) or its quantity is fractional by nature (voltage, current, power factor,
//!   frequency, temperatures, flow), else `integer` (energy totals in Wh, power in W, counters).
//!   Values keep that datatype. Only a value the datatype cannot carry (a fraction on an integer
//!   property, text on a number property) widens it (integer → float → string), and the device
//!   is announced again; nothing is ever rounded.
//! - **The meter clock** (`meter/clock`) is the reading's `meter_time` whenever it has one, also
//!   where the source keeps the clock line as text (DSMR's `YYMMDDhhmmssX`), so it is always a
//!   `datetime` when the time is known ([`published_samples`]).
//! - **Payloads are exact**: decimals as written in the reading JSON (`233.7`, `-0.819`),
//!   integers without a point, the clock as ISO 8601 (`2021-09-27T09:47:15+02:00`; without an
//!   offset when the meter sends none).
//! - **`$unit`** is the meter's unit symbol; counts without a unit get `#`; no unit, no `$unit`.
//!   **`$format`** is published only where a range means something: `-1:1` for power factors.
//! - **A value that could not be read is not published**: sources leave unreadable registers out
//!   of the reading, and an empty text value is skipped too (an empty retained payload would
//!   delete the topic).
//! - `$extensions` is the empty string: Homie 4 requires the attribute, and the gateway uses no
//!   extension. MQTT cannot retain an empty payload (it deletes the retained topic), so
//!   subscribers connected during the announcement see it and later ones see no topic; both mean
//!   "no extensions" to Homie controllers.

use std::borrow::Cow;

use smart_meter_core::{Key, Obis, Reading, Sample, Value};

use super::naming::{self, Group, Quantity};

/// The Homie convention version published in `$homie`.
pub const HOMIE_VERSION: &str = "4.0.0";
/// `$implementation`.
pub const IMPLEMENTATION: &str = "smart-meter";

/// One MQTT publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The topic.
    pub topic: String,
    /// The payload (UTF-8).
    pub payload: String,
    /// The retain flag.
    pub retain: bool,
    /// The QoS level, 0 to 2.
    pub qos: u8,
}

impl Message {
    /// A retained QoS 1 message, the kind Homie uses for everything.
    pub fn retained(topic: String, payload: impl Into<String>) -> Self {
        Message {
            topic,
            payload: payload.into(),
            retain: true,
            qos: 1,
        }
    }
}

/// A Homie property datatype.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datatype {
    /// A whole number (i64).
    Integer,
    /// A decimal number.
    Float,
    /// Text.
    String,
    /// An ISO 8601 date and time.
    Datetime,
}

impl Datatype {
    /// The `$datatype` payload.
    pub fn as_str(self) -> &'static str {
        match self {
            Datatype::Integer => "integer",
            Datatype::Float => "float",
            Datatype::String => "string",
            Datatype::Datetime => "datetime",
        }
    }

    /// The datatype a property gets from its first value.
    pub fn for_first(value: &Value, quantity: Quantity) -> Datatype {
        match value {
            Value::Time(_) => Datatype::Datetime,
            Value::Text(_) => Datatype::String,
            Value::Number(d) => {
                if d.exponent() < 0 || quantity.is_fractional() || d.to_i64().is_none() {
                    Datatype::Float
                } else {
                    Datatype::Integer
                }
            }
        }
    }

    /// The payload of `value` in this datatype, or `None` when the datatype cannot carry it.
    pub fn render(self, value: &Value) -> Option<String> {
        match (self, value) {
            (Datatype::Integer, Value::Number(d)) => d.to_i64().map(|i| i.to_string()),
            (Datatype::Float, Value::Number(d)) => Some(d.to_string()),
            (Datatype::Datetime, Value::Time(t)) => Some(t.to_string()),
            (Datatype::String, v) => Some(v.to_string()),
            _ => None,
        }
    }

    /// The narrowest datatype at least as wide as `self` that can carry `value`.
    pub fn widen_for(self, value: &Value) -> Datatype {
        if self.render(value).is_some() {
            return self;
        }
        match (self, value) {
            (Datatype::Integer, Value::Number(_)) => Datatype::Float,
            _ => Datatype::String,
        }
    }
}

/// A property of the device.
#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    /// The property id (unique in its node).
    pub id: String,
    /// The reading key it carries.
    pub key: Key,
    /// `$name`.
    pub name: String,
    /// `$datatype`.
    pub datatype: Datatype,
    /// `$unit`, if any.
    pub unit: Option<String>,
    /// `$format`, if any.
    pub format: Option<&'static str>,
    /// The last value published, for re-announcements.
    pub last: Option<String>,
}

/// A node of the device.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Its group (id, `$name`, `$type`).
    pub group: Group,
    /// Its properties in order of first appearance.
    pub properties: Vec<Property>,
}

/// The Homie view of one meter.
#[derive(Debug, Clone)]
pub struct HomieDevice {
    base: String,
    id: String,
    name: String,
    nodes: Vec<Node>,
}

impl HomieDevice {
    /// A device without properties yet. `base_topic` without a trailing slash (`homie`), `id` a
    /// valid Homie id (see [`device_id`]).
    pub fn new(base_topic: &str, id: &str, name: &str) -> Self {
        HomieDevice {
            base: base_topic.trim_end_matches('/').to_string(),
            id: id.to_string(),
            name: name.to_string(),
            nodes: Vec::new(),
        }
    }

    /// The device id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The nodes, in `$nodes` order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// `<base>/<device>`.
    pub fn topic(&self) -> String {
        format!("{}/{}", self.base, self.id)
    }

    /// The `$state` topic.
    pub fn state_topic(&self) -> String {
        format!("{}/{}/$state", self.base, self.id)
    }

    /// The last will to register with the connection: `$state` = `lost`, retained, QoS 1.
    pub fn last_will(&self) -> Message {
        Message::retained(self.state_topic(), "lost")
    }

    /// The message to send before a clean disconnect: `$state` = `disconnected`.
    pub fn disconnected(&self) -> Message {
        Message::retained(self.state_topic(), "disconnected")
    }

    /// True once the device has properties (it has seen a reading with at least one value).
    pub fn is_announced(&self) -> bool {
        !self.nodes.is_empty()
    }

    /// The messages for one reading of this device's meter: the values, preceded by a full
    /// announcement (and followed by `$state` = `ready`) when the reading changes the device's
    /// structure.
    pub fn update(&mut self, reading: &Reading) -> Vec<Message> {
        let mut changed = false;
        // (topic, payload): topics are fixed when a property is created, while node indices
        // shift as nodes are inserted in `$nodes` order.
        let mut values: Vec<(String, String)> = Vec::with_capacity(reading.samples.len());
        let samples = published_samples(reading);
        let mut seen: Vec<&Key> = Vec::with_capacity(reading.samples.len());
        for s in &samples {
            if seen.contains(&&s.key) {
                continue; // the first occurrence wins, as in the reading JSON
            }
            seen.push(&s.key);
            if matches!(&s.value, Value::Text(t) if t.is_empty()) {
                continue;
            }
            let (n, p, c) = self.property_for(s);
            changed |= c;
            let Some(node) = self.nodes.get_mut(n) else {
                continue;
            };
            let group = node.group;
            let Some(prop) = node.properties.get_mut(p) else {
                continue;
            };
            let Some(payload) = prop.datatype.render(&s.value) else {
                continue;
            };
            prop.last = Some(payload.clone());
            let topic = format!("{}/{}/{}/{}", self.base, self.id, group.id(), prop.id);
            values.push((topic, payload));
        }
        let mut out = Vec::new();
        if changed {
            out.extend(self.attributes());
        }
        for (topic, payload) in values {
            out.push(Message::retained(topic, payload));
        }
        if changed {
            out.push(Message::retained(self.state_topic(), "ready"));
        }
        out
    }

    /// The full announcement after a (re)connect: `$state` = `init`, every attribute, the last
    /// value of every property, `$state` = `ready`. Empty while the device has no properties
    /// (it has not seen a reading yet).
    pub fn announcement(&self) -> Vec<Message> {
        if !self.is_announced() {
            return Vec::new();
        }
        let mut out = self.attributes();
        for node in &self.nodes {
            for prop in &node.properties {
                if let Some(v) = &prop.last {
                    out.push(Message::retained(
                        self.property_topic(node, prop),
                        v.clone(),
                    ));
                }
            }
        }
        out.push(Message::retained(self.state_topic(), "ready"));
        out
    }

    /// `$state` = `init` and every device, node and property attribute.
    fn attributes(&self) -> Vec<Message> {
        let dev = self.topic();
        let mut out = vec![
            Message::retained(self.state_topic(), "init"),
            Message::retained(format!("{dev}/$homie"), HOMIE_VERSION),
            Message::retained(format!("{dev}/$name"), self.name.clone()),
            Message::retained(format!("{dev}/$extensions"), ""),
            Message::retained(format!("{dev}/$implementation"), IMPLEMENTATION),
        ];
        let nodes: Vec<&str> = self.nodes.iter().map(|n| n.group.id()).collect();
        out.push(Message::retained(format!("{dev}/$nodes"), nodes.join(",")));
        for node in &self.nodes {
            let nt = format!("{dev}/{}", node.group.id());
            out.push(Message::retained(format!("{nt}/$name"), node.group.name()));
            out.push(Message::retained(format!("{nt}/$type"), node.group.kind()));
            let props: Vec<&str> = node.properties.iter().map(|p| p.id.as_str()).collect();
            out.push(Message::retained(
                format!("{nt}/$properties"),
                props.join(","),
            ));
            for p in &node.properties {
                let pt = format!("{nt}/{}", p.id);
                out.push(Message::retained(format!("{pt}/$name"), p.name.clone()));
                out.push(Message::retained(
                    format!("{pt}/$datatype"),
                    p.datatype.as_str(),
                ));
                if let Some(u) = &p.unit {
                    out.push(Message::retained(format!("{pt}/$unit"), u.clone()));
                }
                if let Some(f) = p.format {
                    out.push(Message::retained(format!("{pt}/$format"), f));
                }
                out.push(Message::retained(format!("{pt}/$settable"), "false"));
                out.push(Message::retained(format!("{pt}/$retained"), "true"));
            }
        }
        out
    }

    fn property_topic(&self, node: &Node, prop: &Property) -> String {
        format!("{}/{}/{}/{}", self.base, self.id, node.group.id(), prop.id)
    }

    /// Finds or creates the property of `s`, adapting unit and datatype. Returns (node index,
    /// property index, whether the structure changed).
    fn property_for(&mut self, s: &Sample) -> (usize, usize, bool) {
        let unit_symbol = s.unit.as_ref().and_then(|u| u.symbol());
        let naming = naming::name_key(&s.key, unit_symbol);
        let unit = unit_symbol
            .map(str::to_string)
            .or_else(|| (naming.quantity == Quantity::Count).then(|| "#".to_string()));
        let format = (naming.quantity == Quantity::PowerFactor).then_some("-1:1");

        // Existing property of this key?
        for (ni, node) in self.nodes.iter_mut().enumerate() {
            if let Some(pi) = node.properties.iter().position(|p| p.key == s.key) {
                let mut changed = false;
                if let Some(p) = node.properties.get_mut(pi) {
                    let widened = p.datatype.widen_for(&s.value);
                    if widened != p.datatype {
                        p.datatype = widened;
                        changed = true;
                    }
                    if p.unit != unit {
                        p.unit = unit;
                        changed = true;
                    }
                    let f = if p.datatype == Datatype::String || p.datatype == Datatype::Datetime {
                        None
                    } else {
                        format
                    };
                    if p.format != f {
                        p.format = f;
                        changed = true;
                    }
                }
                return (ni, pi, changed);
            }
        }

        // A new property: find or insert its node (nodes stay in `Group::ALL` order).
        let ni = match self.nodes.iter().position(|n| n.group == naming.group) {
            Some(i) => i,
            None => {
                let at = self
                    .nodes
                    .iter()
                    .position(|n| n.group > naming.group)
                    .unwrap_or(self.nodes.len());
                self.nodes.insert(
                    at,
                    Node {
                        group: naming.group,
                        properties: Vec::new(),
                    },
                );
                at
            }
        };
        let datatype = Datatype::for_first(&s.value, naming.quantity);
        let format = if matches!(datatype, Datatype::String | Datatype::Datetime) {
            None
        } else {
            format
        };
        let Some(node) = self.nodes.get_mut(ni) else {
            return (ni, 0, false);
        };
        let mut id = naming.id.clone();
        let mut n = 2u32;
        while node.properties.iter().any(|p| p.id == id) {
            id = format!("{}-{n}", naming.id);
            n = n.saturating_add(1);
        }
        node.properties.push(Property {
            id,
            key: s.key.clone(),
            name: naming.name,
            datatype,
            unit,
            format,
            last: None,
        });
        (ni, node.properties.len().saturating_sub(1), true)
    }
}

/// The samples the Homie and Home Assistant sinks publish: the reading's samples, with the meter
/// clock (`0.0.1.0.0.255`) as a date and time whenever the reading has [`Reading::meter_time`]
/// (DSMR sources keep the clock line's raw `YYMMDDhhmmssX` text as the sample), and added from
/// `meter_time` when no sample carries it.
pub fn published_samples(reading: &Reading) -> Vec<Cow<'_, Sample>> {
    let mut out: Vec<Cow<'_, Sample>> = Vec::with_capacity(reading.samples.len() + 1);
    let mut clock_seen = false;
    for s in &reading.samples {
        if s.key == Key::Obis(Obis::CLOCK) {
            clock_seen = true;
            if let (Value::Text(_), Some(t)) = (&s.value, reading.meter_time) {
                out.push(Cow::Owned(Sample {
                    key: s.key.clone(),
                    value: Value::Time(t),
                    unit: None,
                }));
                continue;
            }
        }
        out.push(Cow::Borrowed(s));
    }
    if let (false, Some(t)) = (clock_seen, reading.meter_time) {
        out.push(Cow::Owned(Sample {
            key: Key::Obis(Obis::CLOCK),
            value: Value::Time(t),
            unit: None,
        }));
    }
    out
}

/// A Homie device id for a meter id: `_` becomes `-`, runs of `-` collapse, no `-` at either
/// end (`kamstrup_403` → `kamstrup-403`).
pub fn device_id(meter: &str) -> String {
    naming::slug(meter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use smart_meter_core::{Decimal, MeterId, MeterTime, Obis, Unit};

    fn reading(samples: Vec<Sample>) -> Reading {
        let mut r = Reading::new(MeterId::new("evn").unwrap(), "mbus-dlms");
        r.samples = samples;
        r
    }

    fn num(key: &str, m: i128, e: i8, unit: Option<Unit>) -> Sample {
        Sample::number(Key::Obis(key.parse().unwrap()), Decimal::new(m, e), unit)
    }

    fn pairs(msgs: &[Message]) -> Vec<(String, String)> {
        msgs.iter()
            .map(|m| (m.topic.clone(), m.payload.clone()))
            .collect()
    }

    #[test]
    fn first_reading_announces_the_device_then_publishes_values_then_ready() {
        let mut d = HomieDevice::new("homie", "evn", "EVN meter");
        let msgs = d.update(&reading(vec![
            num("1.0.1.8.0.255", 12937, 0, Some(Unit::WH)),
            num("1.0.32.7.0.255", 2337, -1, Some(Unit::V)),
            num("1.0.13.7.0.255", -819, -3, None),
        ]));
        assert!(msgs.iter().all(|m| m.retain && m.qos == 1));
        let expected: Vec<(&str, &str)> = vec![
            ("homie/evn/$state", "init"),
            ("homie/evn/$homie", "4.0.0"),
            ("homie/evn/$name", "EVN meter"),
            ("homie/evn/$extensions", ""),
            ("homie/evn/$implementation", "smart-meter"),
            ("homie/evn/$nodes", "energy,voltage,power-factor"),
            ("homie/evn/energy/$name", "Energy"),
            ("homie/evn/energy/$type", "cumulative energy registers"),
            ("homie/evn/energy/$properties", "imported-total"),
            (
                "homie/evn/energy/imported-total/$name",
                "Active energy import",
            ),
            ("homie/evn/energy/imported-total/$datatype", "integer"),
            ("homie/evn/energy/imported-total/$unit", "Wh"),
            ("homie/evn/energy/imported-total/$settable", "false"),
            ("homie/evn/energy/imported-total/$retained", "true"),
            ("homie/evn/voltage/$name", "Voltage"),
            ("homie/evn/voltage/$type", "instantaneous voltage"),
            ("homie/evn/voltage/$properties", "l1"),
            ("homie/evn/voltage/l1/$name", "Voltage L1"),
            ("homie/evn/voltage/l1/$datatype", "float"),
            ("homie/evn/voltage/l1/$unit", "V"),
            ("homie/evn/voltage/l1/$settable", "false"),
            ("homie/evn/voltage/l1/$retained", "true"),
            ("homie/evn/power-factor/$name", "Power factor"),
            ("homie/evn/power-factor/$type", "instantaneous power factor"),
            ("homie/evn/power-factor/$properties", "total"),
            ("homie/evn/power-factor/total/$name", "Power factor"),
            ("homie/evn/power-factor/total/$datatype", "float"),
            ("homie/evn/power-factor/total/$format", "-1:1"),
            ("homie/evn/power-factor/total/$settable", "false"),
            ("homie/evn/power-factor/total/$retained", "true"),
            ("homie/evn/energy/imported-total", "12937"),
            ("homie/evn/voltage/l1", "233.7"),
            ("homie/evn/power-factor/total", "-0.819"),
            ("homie/evn/$state", "ready"),
        ];
        let got = pairs(&msgs);
        let got: Vec<(&str, &str)> = got.iter().map(|(t, p)| (t.as_str(), p.as_str())).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn values_go_to_their_own_topics_when_earlier_nodes_are_inserted_later() {
        let mut d = HomieDevice::new("homie", "m", "m");
        // `meter` comes after `energy` in `$nodes` but is seen first.
        let msgs = d.update(&reading(vec![
            Sample::text(Key::Obis(Obis::METER_NUMBER), "123"),
            num("1.0.32.7.0.255", 2301, -1, Some(Unit::V)),
            num("1.0.1.8.0.255", 5, 0, Some(Unit::WH)),
        ]));
        let p = pairs(&msgs);
        assert!(p.contains(&("homie/m/$nodes".into(), "energy,voltage,meter".into())));
        assert!(p.contains(&("homie/m/meter/number".into(), "123".into())));
        assert!(p.contains(&("homie/m/voltage/l1".into(), "230.1".into())));
        assert!(p.contains(&("homie/m/energy/imported-total".into(), "5".into())));
    }

    #[test]
    fn later_readings_with_the_same_keys_publish_only_values() {
        let mut d = HomieDevice::new("homie", "evn", "evn");
        d.update(&reading(vec![num("1.0.1.8.0.255", 1, 0, Some(Unit::WH))]));
        let msgs = d.update(&reading(vec![num("1.0.1.8.0.255", 2, 0, Some(Unit::WH))]));
        assert_eq!(
            pairs(&msgs),
            vec![(
                "homie/evn/energy/imported-total".to_string(),
                "2".to_string()
            )]
        );
    }

    #[test]
    fn a_new_key_extends_the_properties_and_re_announces() {
        let mut d = HomieDevice::new("homie", "evn", "evn");
        d.update(&reading(vec![num("1.0.1.8.0.255", 1, 0, Some(Unit::WH))]));
        let msgs = d.update(&reading(vec![
            num("1.0.1.8.0.255", 2, 0, Some(Unit::WH)),
            num("1.0.2.8.0.255", 5, 0, Some(Unit::WH)),
            num("1.0.1.7.0.255", 300, 0, Some(Unit::W)),
        ]));
        let p = pairs(&msgs);
        assert_eq!(
            p.first().unwrap(),
            &("homie/evn/$state".into(), "init".into())
        );
        assert!(p.contains(&("homie/evn/$nodes".into(), "energy,power".into())));
        assert!(p.contains(&(
            "homie/evn/energy/$properties".into(),
            "imported-total,exported-total".into()
        )));
        assert!(p.contains(&("homie/evn/power/$properties".into(), "current-usage".into())));
        assert!(p.contains(&("homie/evn/energy/exported-total".into(), "5".into())));
        assert_eq!(
            p.last().unwrap(),
            &("homie/evn/$state".into(), "ready".into())
        );
    }

    #[test]
    fn datatypes_follow_the_register_resolution_and_stay_consistent() {
        let mut d = HomieDevice::new("homie", "m", "m");
        // 230.0 V sent as 2300e-1: a float even though the value is whole.
        d.update(&reading(vec![
            num("1.0.32.7.0.255", 2300, -1, Some(Unit::V)),
            num("1.0.31.7.0.255", 1, 0, Some(Unit::A)),
            num("1.0.1.7.0.255", 1068, 0, Some(Unit::W)),
            Sample::text(Key::Obis(Obis::METER_NUMBER), "1KFM0100000035"),
            Sample {
                key: Key::Obis(Obis::CLOCK),
                value: Value::Time(
                    MeterTime::new(2021, 7, 19, 15, 46, 35, None, Some(120)).unwrap(),
                ),
                unit: None,
            },
        ]));
        let types: Vec<(String, Datatype)> = d
            .nodes()
            .iter()
            .flat_map(|n| n.properties.iter().map(|p| (p.id.clone(), p.datatype)))
            .collect();
        assert_eq!(
            types,
            vec![
                ("current-usage".into(), Datatype::Integer),
                ("l1".into(), Datatype::Float),
                ("l1".into(), Datatype::Float),
                ("number".into(), Datatype::String),
                ("clock".into(), Datatype::Datetime),
            ]
        );
        let msgs = d.update(&reading(vec![
            num("1.0.32.7.0.255", 2300, -1, Some(Unit::V)),
            num("1.0.1.7.0.255", 1070, 0, Some(Unit::W)),
        ]));
        assert_eq!(
            pairs(&msgs),
            vec![
                ("homie/m/voltage/l1".into(), "230".into()),
                ("homie/m/power/current-usage".into(), "1070".into()),
            ]
        );
        let clock = d.announcement();
        assert!(pairs(&clock).contains(&(
            "homie/m/meter/clock".into(),
            "2021-07-19T15:46:35+02:00".into()
        )));
    }

    #[test]
    fn a_value_the_datatype_cannot_carry_widens_it_instead_of_rounding() {
        let mut d = HomieDevice::new("homie", "m", "m");
        d.update(&reading(vec![num("1.0.1.8.0.255", 5, 0, Some(Unit::WH))]));
        let msgs = d.update(&reading(vec![num("1.0.1.8.0.255", 55, -1, Some(Unit::WH))]));
        let p = pairs(&msgs);
        assert!(p.contains(&(
            "homie/m/energy/imported-total/$datatype".into(),
            "float".into()
        )));
        assert!(p.contains(&("homie/m/energy/imported-total".into(), "5.5".into())));
        assert_eq!(p.last().unwrap().1, "ready");
    }

    #[test]
    fn a_raw_clock_text_is_published_as_the_meter_time() {
        let mut d = HomieDevice::new("homie", "p1", "p1");
        let mut r = reading(vec![Sample::text(Key::Obis(Obis::CLOCK), "200512135409S")]);
        r.meter_time = MeterTime::new(2020, 5, 12, 13, 54, 9, None, Some(120));
        let msgs = d.update(&r);
        let p = pairs(&msgs);
        assert!(p.contains(&("homie/p1/meter/clock/$datatype".into(), "datetime".into())));
        assert!(p.contains(&(
            "homie/p1/meter/clock".into(),
            "2020-05-12T13:54:09+02:00".into()
        )));
        // Without a meter time the text stays text.
        let mut d = HomieDevice::new("homie", "p1", "p1");
        let msgs = d.update(&reading(vec![Sample::text(Key::Obis(Obis::CLOCK), "x")]));
        assert!(pairs(&msgs).contains(&("homie/p1/meter/clock/$datatype".into(), "string".into())));
    }

    #[test]
    fn values_that_could_not_be_read_are_not_published() {
        let mut d = HomieDevice::new("homie", "m", "m");
        let msgs = d.update(&reading(vec![Sample::text(
            Key::Obis("0.0.96.13.0.255".parse().unwrap()),
            "",
        )]));
        assert!(msgs.is_empty());
        assert!(!d.is_announced());
        assert!(d.announcement().is_empty());
    }

    #[test]
    fn reconnect_announcement_republishes_attributes_and_last_values() {
        let mut d = HomieDevice::new("homie/", "m", "m");
        let first = d.update(&reading(vec![num("1.0.1.8.0.255", 7, 0, Some(Unit::WH))]));
        let again = d.announcement();
        assert_eq!(first, again);
        assert_eq!(
            d.last_will(),
            Message::retained("homie/m/$state".into(), "lost")
        );
        assert_eq!(d.disconnected().payload, "disconnected");
    }

    #[test]
    fn duplicate_keys_publish_the_first_occurrence_only() {
        let mut d = HomieDevice::new("homie", "m", "m");
        let msgs = d.update(&reading(vec![
            num("1.0.1.8.0.255", 7, 0, Some(Unit::WH)),
            num("1.0.1.8.0.255", 8, 0, Some(Unit::WH)),
        ]));
        let values: Vec<_> = msgs
            .iter()
            .filter(|m| m.topic == "homie/m/energy/imported-total")
            .collect();
        assert_eq!(values.len(), 1);
        assert_eq!(values[0].payload, "7");
    }

    #[test]
    fn colliding_named_keys_get_distinct_ids() {
        let mut d = HomieDevice::new("homie", "m", "m");
        d.update(&reading(vec![
            Sample::text(Key::Named("a.b".into()), "x"),
            Sample::text(Key::Named("a_b".into()), "y"),
        ]));
        let ids: Vec<&str> = d.nodes()[0]
            .properties
            .iter()
            .map(|p| p.id.as_str())
            .collect();
        assert_eq!(ids, vec!["a-b", "a-b-2"]);
    }

    #[test]
    fn device_ids_are_valid_homie_ids() {
        assert_eq!(device_id("kamstrup_403"), "kamstrup-403");
        assert_eq!(device_id("a__b_"), "a-b");
        assert!(naming::is_valid_id(&device_id("x-_-y")));
    }
}
