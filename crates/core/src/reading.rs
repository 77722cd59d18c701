//! A reading: everything one frame (or one poll) of one meter said, and its JSON form.

use std::fmt;
use std::fmt::Write as _;
use std::time::SystemTime;

use crate::time::format_utc;
use crate::{Decimal, MeterId, MeterTime, Obis, Unit};

/// One decoded telegram, push or poll response of one meter.
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    /// The configured meter id (the source's `meter`, or its name).
    pub meter: MeterId,
    /// The protocol that produced it: `mbus-dlms`, `hdlc-dlms`, `dsmr`, `kamstrup`.
    pub protocol: &'static str,
    /// The gateway's clock when the last byte of the frame arrived.
    pub received_at: SystemTime,
    /// The meter's own clock, when the protocol carries one.
    pub meter_time: Option<MeterTime>,
    /// For encrypted frames: whether the GCM tag was verified (`Some(false)`: decrypted without
    /// authentication). `None` for plaintext protocols.
    pub authenticated: Option<bool>,
    /// The values, in the order the meter sent them.
    pub samples: Vec<Sample>,
}

/// One value of a reading.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// What it is.
    pub key: Key,
    /// Its value.
    pub value: Value,
    /// Its unit, if any.
    pub unit: Option<Unit>,
}

/// The key of a sample in outputs.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// An OBIS code (DLMS, DSMR, positional pushes mapped to their documented code).
    Obis(Obis),
    /// A Kamstrup KMP register id, written `kmp.<id>`.
    Kmp(u16),
    /// Anything else, written as is (e.g. a DSMR M-Bus channel's extra field).
    Named(Box<str>),
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Obis(o) => o.fmt(f),
            Key::Kmp(r) => write!(f, "kmp.{r}"),
            Key::Named(n) => f.write_str(n),
        }
    }
}

/// A sample's value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// An exact number, scaler applied.
    Number(Decimal),
    /// Text, or an octet string as hex when it is not printable ASCII.
    Text(String),
    /// A date and time.
    Time(MeterTime),
}

impl Value {
    /// The number, if this is one.
    pub fn as_number(&self) -> Option<Decimal> {
        match self {
            Value::Number(d) => Some(*d),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Number(d) => d.fmt(f),
            Value::Text(s) => f.write_str(s),
            Value::Time(t) => t.fmt(f),
        }
    }
}

impl Sample {
    /// A number with an optional unit.
    pub fn number(key: Key, value: Decimal, unit: Option<Unit>) -> Self {
        Sample {
            key,
            value: Value::Number(value),
            unit,
        }
    }

    /// A text value.
    pub fn text(key: Key, value: impl Into<String>) -> Self {
        Sample {
            key,
            value: Value::Text(value.into()),
            unit: None,
        }
    }
}

impl Reading {
    /// An empty reading received now.
    pub fn new(meter: MeterId, protocol: &'static str) -> Self {
        Reading {
            meter,
            protocol,
            received_at: SystemTime::now(),
            meter_time: None,
            authenticated: None,
            samples: Vec::new(),
        }
    }

    /// The first sample with this key.
    pub fn get(&self, key: &Key) -> Option<&Sample> {
        self.samples.iter().find(|s| &s.key == key)
    }

    /// The first sample with this OBIS code.
    pub fn obis(&self, obis: Obis) -> Option<&Sample> {
        self.get(&Key::Obis(obis))
    }

    /// The numeric value of this OBIS code.
    pub fn number(&self, obis: Obis) -> Option<Decimal> {
        self.obis(obis).and_then(|s| s.value.as_number())
    }

    /// The time this reading stands for: the meter's clock when it carries a UTC offset, else
    /// the gateway's receive time.
    pub fn timestamp(&self) -> SystemTime {
        self.meter_time
            .and_then(|t| t.to_system_time())
            .unwrap_or(self.received_at)
    }

    /// The reading JSON of SPEC.md, on one line. Numbers are written exactly as decimals.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(128 + self.samples.len() * 48);
        out.push_str("{\"meter\":");
        push_json_str(&mut out, self.meter.as_str());
        out.push_str(",\"protocol\":");
        push_json_str(&mut out, self.protocol);
        out.push_str(",\"received_at\":");
        push_json_str(&mut out, &format_utc(self.received_at));
        out.push_str(",\"meter_time\":");
        match &self.meter_time {
            Some(t) => push_json_str(&mut out, &t.to_string()),
            None => out.push_str("null"),
        }
        if let Some(a) = self.authenticated {
            let _ = write!(out, ",\"authenticated\":{a}");
        }
        out.push_str(",\"values\":{");
        let mut seen: Vec<&Key> = Vec::with_capacity(self.samples.len());
        let mut first = true;
        for s in &self.samples {
            // A JSON object cannot hold a key twice; the first occurrence wins.
            if seen.contains(&&s.key) {
                continue;
            }
            seen.push(&s.key);
            if !first {
                out.push(',');
            }
            first = false;
            push_json_str(&mut out, &s.key.to_string());
            out.push_str(":{\"value\":");
            match &s.value {
                Value::Number(d) => {
                    let _ = write!(out, "{d}");
                }
                Value::Text(t) => push_json_str(&mut out, t),
                Value::Time(t) => push_json_str(&mut out, &t.to_string()),
            }
            out.push_str(",\"unit\":");
            match s.unit.as_ref().and_then(|u| u.symbol()) {
                Some(sym) => push_json_str(&mut out, sym),
                None => out.push_str("null"),
            }
            out.push('}');
        }
        out.push_str("}}");
        out
    }
}

/// Appends `s` as a JSON string literal.
pub fn push_json_str(out: &mut String, s: &str) {
    // serde_json's escaping is the reference; it cannot fail for a &str.
    match serde_json::to_string(s) {
        Ok(q) => out.push_str(&q),
        Err(_) => out.push_str("\"\""),
    }
}

/// Text for an octet string: ASCII when every byte is printable, else upper-case hex.
pub fn octets_to_text(bytes: &[u8]) -> String {
    if !bytes.is_empty() && bytes.iter().all(|b| (0x20..0x7f).contains(b)) {
        bytes.iter().map(|&b| b as char).collect()
    } else {
        let mut s = String::with_capacity(bytes.len() * 2);
        for b in bytes {
            let _ = write!(s, "{b:02X}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn writes_the_spec_json_shape() {
        let mut r = Reading::new(MeterId::new("evn").unwrap(), "mbus-dlms");
        r.received_at = UNIX_EPOCH + Duration::from_millis(1_795_298_400_123);
        r.meter_time = MeterTime::new(2021, 9, 27, 9, 47, 15, None, Some(120));
        r.samples.push(Sample::number(
            Key::Obis(Obis::ENERGY_IMPORT),
            Decimal::new(12937, 0),
            Some(Unit::WH),
        ));
        r.samples.push(Sample::number(
            Key::Obis(Obis::new(1, 0, 32, 7, 0, 255)),
            Decimal::new(2337, -1),
            Some(Unit::V),
        ));
        r.samples.push(Sample::number(
            Key::Obis(Obis::new(1, 0, 13, 7, 0, 255)),
            Decimal::new(-819, -3),
            None,
        ));
        r.samples
            .push(Sample::text(Key::Obis(Obis::METER_NUMBER), "181220000009"));
        r.samples
            .push(Sample::number(Key::Kmp(60), Decimal::new(1, 0), None));
        let json = r.to_json();
        assert_eq!(
            json,
            "{\"meter\":\"evn\",\"protocol\":\"mbus-dlms\",\"received_at\":\"2026-11-21T22:00:00.123Z\",\
             \"meter_time\":\"2021-09-27T09:47:15+02:00\",\"values\":{\
             \"1.0.1.8.0.255\":{\"value\":12937,\"unit\":\"Wh\"},\
             \"1.0.32.7.0.255\":{\"value\":233.7,\"unit\":\"V\"},\
             \"1.0.13.7.0.255\":{\"value\":-0.819,\"unit\":null},\
             \"0.0.96.1.0.255\":{\"value\":\"181220000009\",\"unit\":null},\
             \"kmp.60\":{\"value\":1,\"unit\":null}}}"
        );
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed["values"]["1.0.32.7.0.255"]["value"], 233.7);
    }

    #[test]
    fn octet_strings_are_ascii_or_hex() {
        assert_eq!(octets_to_text(b"KFM1234"), "KFM1234");
        assert_eq!(octets_to_text(&[0x01, 0xAB]), "01AB");
    }
}
