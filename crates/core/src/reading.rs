//! A reading: everything one frame (or one poll) of one meter said, and its JSON form.

use std::fmt;
use std::fmt::Write as _;
use std::time::SystemTime;

use crate::text::push_uint;
use crate::time::write_utc;
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
        let mut out = Vec::with_capacity(128 + self.samples.len() * 48);
        self.write_json(&mut out);
        // Always UTF-8: `write_json` appends only `&str` runs and ASCII.
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// Appends [`to_json`](Self::to_json)'s text (UTF-8) to `out` (sinks reuse one buffer for
    /// many readings). No allocation beyond growing `out`, except for readings with more than 128
    /// samples.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.reserve(128 + self.samples.len() * 48);
        out.extend_from_slice(b"{\"meter\":");
        crate::text::push_json_str(out, self.meter.as_str());
        out.extend_from_slice(b",\"protocol\":");
        crate::text::push_json_str(out, self.protocol);
        out.extend_from_slice(b",\"received_at\":\"");
        write_utc(out, self.received_at);
        out.extend_from_slice(b"\",\"meter_time\":");
        match &self.meter_time {
            Some(t) => {
                out.push(b'"');
                t.write_to(out);
                out.push(b'"');
            }
            None => out.extend_from_slice(b"null"),
        }
        match self.authenticated {
            Some(true) => out.extend_from_slice(b",\"authenticated\":true"),
            Some(false) => out.extend_from_slice(b",\"authenticated\":false"),
            None => {}
        }
        out.extend_from_slice(b",\"values\":{");
        // A JSON object cannot hold a key twice; the first occurrence wins. Keys almost never
        // repeat, so that is checked on sorted key fingerprints first, and only a possible
        // repeat pays for the exact check.
        if self.keys_may_repeat() {
            let mut first = true;
            for (i, s) in self.samples.iter().enumerate() {
                let earlier = self.samples.get(..i).unwrap_or_default();
                if earlier.iter().any(|e| e.key == s.key) {
                    continue;
                }
                if !first {
                    out.push(b',');
                }
                first = false;
                write_sample(out, s);
            }
        } else {
            for (i, s) in self.samples.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_sample(out, s);
            }
        }
        out.extend_from_slice(b"}}");
    }

    /// False when no key occurs twice among the samples. True when one may (a fingerprint
    /// collision of named keys answers true; the caller then checks exactly).
    fn keys_may_repeat(&self) -> bool {
        let n = self.samples.len();
        if n < 2 {
            return false;
        }
        let mut inline = [0u64; DEDUP_INLINE];
        let mut heap = Vec::new();
        let prints: &mut [u64] = match inline.get_mut(..n) {
            Some(slice) => slice,
            None => {
                heap.resize(n, 0);
                &mut heap
            }
        };
        for (p, s) in prints.iter_mut().zip(&self.samples) {
            *p = s.key.fingerprint();
        }
        prints.sort_unstable();
        prints.windows(2).any(|w| w[0] == w[1])
    }
}

/// Readings with up to this many samples check their keys for repeats without allocating.
const DEDUP_INLINE: usize = 128;

/// One `"key":{"value":…,"unit":…}` member of `values`.
fn write_sample(out: &mut Vec<u8>, s: &Sample) {
    match &s.key {
        Key::Obis(o) => {
            out.push(b'"');
            o.write_to(out);
            out.push(b'"');
        }
        Key::Kmp(r) => {
            out.extend_from_slice(b"\"kmp.");
            push_uint(out, u64::from(*r), 1);
            out.push(b'"');
        }
        Key::Named(n) => crate::text::push_json_str(out, n),
    }
    out.extend_from_slice(b":{\"value\":");
    match &s.value {
        Value::Number(d) => d.write_to(out),
        Value::Text(t) => crate::text::push_json_str(out, t),
        Value::Time(t) => {
            out.push(b'"');
            t.write_to(out);
            out.push(b'"');
        }
    }
    out.extend_from_slice(b",\"unit\":");
    match s.unit.as_ref().and_then(|u| u.symbol()) {
        Some(sym) => crate::text::push_json_str(out, sym),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
}

impl Key {
    /// Equal keys have equal fingerprints; OBIS and KMP keys have distinct ones, named keys a
    /// 56-bit hash (FNV-1a) of their text.
    fn fingerprint(&self) -> u64 {
        const TAG: u32 = 56;
        match self {
            Key::Obis(o) => o.0.iter().fold(0u64, |acc, &g| acc << 8 | u64::from(g)),
            Key::Kmp(r) => 1 << TAG | u64::from(*r),
            Key::Named(n) => {
                let hash = n.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                    (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
                });
                2 << TAG | hash >> 8
            }
        }
    }
}

/// Appends `s` as a JSON string literal, escaped as `serde_json` escapes it.
pub fn push_json_str(out: &mut String, s: &str) {
    crate::text::push_json_str(out, s);
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

    /// The reading JSON as written before `write_json`: `Display` of every part and
    /// `serde_json` for every string.
    fn reference_json(r: &Reading) -> String {
        let q = |s: &str| serde_json::to_string(s).unwrap();
        let mut out = String::new();
        out.push_str("{\"meter\":");
        out.push_str(&q(r.meter.as_str()));
        out.push_str(",\"protocol\":");
        out.push_str(&q(r.protocol));
        out.push_str(",\"received_at\":");
        out.push_str(&q(&crate::time::format_utc(r.received_at)));
        out.push_str(",\"meter_time\":");
        match &r.meter_time {
            Some(t) => out.push_str(&q(&t.to_string())),
            None => out.push_str("null"),
        }
        if let Some(a) = r.authenticated {
            let _ = write!(out, ",\"authenticated\":{a}");
        }
        out.push_str(",\"values\":{");
        let mut seen: Vec<&Key> = Vec::new();
        for s in &r.samples {
            if seen.contains(&&s.key) {
                continue;
            }
            if !seen.is_empty() {
                out.push(',');
            }
            seen.push(&s.key);
            out.push_str(&q(&s.key.to_string()));
            out.push_str(":{\"value\":");
            match &s.value {
                Value::Number(d) => {
                    let _ = write!(out, "{d}");
                }
                Value::Text(t) => out.push_str(&q(t)),
                Value::Time(t) => out.push_str(&q(&t.to_string())),
            }
            out.push_str(",\"unit\":");
            match s.unit.as_ref().and_then(|u| u.symbol()) {
                Some(sym) => out.push_str(&q(sym)),
                None => out.push_str("null"),
            }
            out.push('}');
        }
        out.push_str("}}");
        out
    }

    /// Readings of every shape from a fixed pseudo-random sequence: all key kinds, repeated
    /// keys, texts with escapes and non-ASCII, numbers of every magnitude, times with and
    /// without milliseconds and offsets, more samples than fit the inline key check.
    fn random_readings() -> Vec<Reading> {
        let mut x: u64 = 0x853c_49e6_748f_ea9b;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let texts = [
            "",
            "0002",
            "4B464D5F303031",
            "quote\" back\\ nl\n tab\t nul\u{0} us\u{1f}",
            "m³ °C µ 🔌",
            "\u{7f}",
        ];
        let names = ["VENDOR.X", "gas", "a", "b", "c", "tab\tkey"];
        let units = [
            None,
            Some(Unit::WH),
            Some(Unit::Dlms(200)),
            Some(Unit::Symbol("kWh".into())),
            Some(Unit::Dlms(13)),
        ];
        let mut readings = Vec::new();
        for i in 0..400 {
            let meter = MeterId::new(&format!("m-{i}")).unwrap();
            let mut r = Reading::new(meter, if i % 2 == 0 { "dsmr" } else { "mbus-dlms" });
            r.received_at = UNIX_EPOCH + Duration::from_millis(next() % 4_000_000_000_000);
            r.meter_time = match next() % 4 {
                0 => None,
                1 => MeterTime::new(2023, 8, 17, 15, 24, 25, None, Some(120)),
                2 => MeterTime::new(2021, 1, 2, 3, 4, 5, Some(67), Some(-90)),
                _ => MeterTime::new(1999, 12, 31, 23, 59, 60, Some(999), None),
            };
            r.authenticated = [None, Some(true), Some(false)][(next() % 3) as usize];
            let n = [0, 1, 2, 12, 40, 127, 128, 129, 300][(next() % 9) as usize];
            for _ in 0..n {
                let k = next();
                // Few distinct keys in some readings, so that repeats are common.
                let spread: u64 = if i % 3 == 0 { 4 } else { 256 };
                let key = match k % 10 {
                    0 => Key::Kmp(((k >> 8) % spread) as u16),
                    1 => Key::Named(names[(k >> 8) as usize % names.len()].into()),
                    _ => Key::Obis(Obis::new(
                        (k >> 8) as u8 % 2,
                        0,
                        ((k >> 16) % spread) as u8,
                        (k >> 24) as u8 % 3 + 7,
                        0,
                        255,
                    )),
                };
                let v = next();
                let value = match v % 6 {
                    0 => Value::Text(texts[(v >> 8) as usize % texts.len()].to_string()),
                    1 => Value::Time(MeterTime::new(2024, 2, 29, 0, 0, 1, None, Some(60)).unwrap()),
                    2 => Value::Number(Decimal::new(i128::from(v as i64) * 1_000_000_007, -7)),
                    _ => Value::Number(Decimal::new(
                        i128::from((v >> 16) as u32) - (1 << 31),
                        ((v >> 8) as u8 % 12) as i8 - 6,
                    )),
                };
                let unit = units[(v >> 48) as usize % units.len()].clone();
                r.samples.push(Sample { key, value, unit });
            }
            readings.push(r);
        }
        readings
    }

    #[test]
    fn write_json_matches_the_reference_writer_byte_for_byte() {
        let mut buf = b"previous line\n".to_vec();
        let mut repeats = 0;
        for r in random_readings() {
            let expected = reference_json(&r);
            assert_eq!(r.to_json(), expected);
            let len = buf.len();
            r.write_json(&mut buf);
            assert_eq!(buf.get(len..), Some(expected.as_bytes()));
            let parsed: serde_json::Value = serde_json::from_str(&expected).unwrap();
            let distinct = parsed["values"].as_object().unwrap().len();
            if distinct < r.samples.len() {
                repeats += 1;
            }
        }
        assert!(
            repeats > 50,
            "the sequence must exercise repeated keys ({repeats})"
        );
    }

    #[test]
    fn a_repeated_key_keeps_its_first_value() {
        let mut r = Reading::new(MeterId::new("m").unwrap(), "test");
        r.received_at = UNIX_EPOCH;
        for (key, v) in [("x", 1), ("y", 2), ("x", 3)] {
            r.samples.push(Sample::number(
                Key::Named(key.into()),
                Decimal::new(v, 0),
                None,
            ));
        }
        assert_eq!(
            r.to_json(),
            "{\"meter\":\"m\",\"protocol\":\"test\",\"received_at\":\"1970-01-01T00:00:00.000Z\",\
             \"meter_time\":null,\"values\":{\"x\":{\"value\":1,\"unit\":null},\
             \"y\":{\"value\":2,\"unit\":null}}}"
        );
    }

    #[test]
    fn octet_strings_are_ascii_or_hex() {
        assert_eq!(octets_to_text(b"KFM1234"), "KFM1234");
        assert_eq!(octets_to_text(&[0x01, 0xAB]), "01AB");
    }
}
