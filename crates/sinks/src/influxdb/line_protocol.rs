//! InfluxDB line protocol: points and their text form, with the escaping rules of the line
//! protocol reference (InfluxDB 1.x "line protocol reference", 2.x "line protocol"):
//!
//! | element | escaped |
//! |---|---|
//! | measurement | `,` and space |
//! | tag key, tag value, field key | `,`, `=` and space |
//! | string field value (in `"…"`) | `"` and `\` |
//!
//! Line protocol cannot carry a newline in any element, so CR, LF and TAB become a space (and are
//! then escaped like one). Outside string values a backslash cannot be escaped, and a trailing
//! one would escape the separator after it (telegraf#3004), so trailing backslashes of names and
//! tag values are dropped. Empty tag values are not allowed, so such tags are left out; fields
//! with an empty key are left out; a point without fields is not written at all.
//!
//! Numbers: floats are written in Rust's shortest round-trip form (`233.7`, `12937`, never
//! exponent notation, which InfluxDB reads back to the same `f64`); NaN and infinities cannot be
//! represented and are left out. Integers carry the `i` suffix.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;

/// A field value.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldValue {
    /// A float field.
    Float(f64),
    /// An integer field (`12937i`).
    Integer(i64),
    /// A string field.
    Text(String),
}

/// One point: measurement, tags, fields and an optional timestamp.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// The measurement name.
    pub measurement: String,
    /// Tag key/value pairs; written sorted by key, as InfluxDB recommends.
    pub tags: Vec<(String, String)>,
    /// Field key/value pairs in order; a repeated key keeps its first value.
    pub fields: Vec<(String, FieldValue)>,
    /// The timestamp; without one the server's clock is used.
    pub time: Option<SystemTime>,
}

/// Timestamp precision of written points (`precision` in the config and the write URL).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Nanoseconds.
    Ns,
    /// Microseconds.
    Us,
    /// Milliseconds (the default: meters report at most milliseconds).
    #[default]
    Ms,
    /// Seconds.
    S,
}

impl Precision {
    /// The name used in the 2.x write URL and in spool file names: `ns`, `us`, `ms`, `s`.
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Ns => "ns",
            Precision::Us => "us",
            Precision::Ms => "ms",
            Precision::S => "s",
        }
    }

    /// The 1.x `/write` spelling: `n`, `u`, `ms`, `s`.
    pub fn v1_param(self) -> &'static str {
        match self {
            Precision::Ns => "n",
            Precision::Us => "u",
            Precision::Ms => "ms",
            Precision::S => "s",
        }
    }

    /// Parses [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<Precision> {
        Some(match s {
            "ns" => Precision::Ns,
            "us" => Precision::Us,
            "ms" => Precision::Ms,
            "s" => Precision::S,
            _ => return None,
        })
    }

    /// `t` as an integer count of this unit since the Unix epoch (rounded down, also before
    /// 1970).
    pub fn timestamp(self, t: SystemTime) -> i128 {
        let nanos: i128 = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => i128::try_from(d.as_nanos()).unwrap_or(i128::MAX),
            Err(e) => -i128::try_from(e.duration().as_nanos()).unwrap_or(i128::MAX),
        };
        let div: i128 = match self {
            Precision::Ns => 1,
            Precision::Us => 1_000,
            Precision::Ms => 1_000_000,
            Precision::S => 1_000_000_000,
        };
        nanos.div_euclid(div)
    }
}

/// Appends `s` as a measurement name.
pub fn push_measurement(out: &mut String, s: &str) {
    push_escaped(out, s, &[',', ' ']);
}

/// Appends `s` as a tag key, tag value or field key.
pub fn push_key(out: &mut String, s: &str) {
    push_escaped(out, s, &[',', '=', ' ']);
}

fn push_escaped(out: &mut String, s: &str, special: &[char]) {
    let s = s.trim_end_matches('\\');
    for c in s.chars() {
        let c = if matches!(c, '\n' | '\r' | '\t') {
            ' '
        } else {
            c
        };
        if special.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Appends `s` as a quoted string field value.
pub fn push_string_value(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' | '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// True when `s` still has something left after escaping rules drop trailing backslashes.
fn usable(s: &str) -> bool {
    !s.trim_end_matches('\\').is_empty()
}

/// Appends the line for `point` (without a newline). Returns false, appending nothing, when the
/// point has no writable field or no measurement.
pub fn write_point(out: &mut String, point: &Point, precision: Precision) -> bool {
    let mut fields: Vec<&(String, FieldValue)> = Vec::with_capacity(point.fields.len());
    for f in &point.fields {
        let writable = usable(&f.0)
            && match &f.1 {
                FieldValue::Float(x) => x.is_finite(),
                _ => true,
            };
        if writable && !fields.iter().any(|g| g.0 == f.0) {
            fields.push(f);
        }
    }
    if fields.is_empty() || !usable(&point.measurement) {
        return false;
    }
    push_measurement(out, &point.measurement);
    let mut tags: Vec<&(String, String)> = point
        .tags
        .iter()
        .filter(|(k, v)| usable(k) && usable(v))
        .collect();
    tags.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    tags.dedup_by(|a, b| a.0 == b.0);
    for (k, v) in tags {
        out.push(',');
        push_key(out, k);
        out.push('=');
        push_key(out, v);
    }
    out.push(' ');
    for (i, (k, v)) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_key(out, k);
        out.push('=');
        match v {
            FieldValue::Float(x) => {
                let _ = write!(out, "{x}");
            }
            FieldValue::Integer(n) => {
                let _ = write!(out, "{n}i");
            }
            FieldValue::Text(s) => push_string_value(out, s),
        }
    }
    if let Some(t) = point.time {
        let _ = write!(out, " {}", precision.timestamp(t));
    }
    true
}

/// The lines of `points`, joined by `\n` (no trailing newline); empty when none is writable.
pub fn encode_points(points: &[Point], precision: Precision) -> String {
    let mut out = String::new();
    for p in points {
        let mark = out.len();
        if !out.is_empty() {
            out.push('\n');
        }
        if !write_point(&mut out, p, precision) {
            out.truncate(mark);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn point(measurement: &str) -> Point {
        Point {
            measurement: measurement.into(),
            tags: Vec::new(),
            fields: Vec::new(),
            time: None,
        }
    }

    #[test]
    fn escapes_measurement_tags_and_field_keys_per_element() {
        let mut p = point("my meas,ure=ment");
        p.tags.push(("ta g,=".into(), "va l,=ue".into()));
        p.fields.push(("fi eld,=".into(), FieldValue::Integer(1)));
        let mut out = String::new();
        assert!(write_point(&mut out, &p, Precision::Ms));
        assert_eq!(
            out,
            r"my\ meas\,ure=ment,ta\ g\,\==va\ l\,\=ue fi\ eld\,\==1i"
        );
    }

    #[test]
    fn escapes_quotes_and_backslashes_in_string_fields_only() {
        let mut p = point("m");
        p.fields.push((
            "text".into(),
            FieldValue::Text("say \"hi\" C:\\dir, a=b".into()),
        ));
        let mut out = String::new();
        assert!(write_point(&mut out, &p, Precision::Ms));
        assert_eq!(out, r#"m text="say \"hi\" C:\\dir, a=b""#);
    }

    #[test]
    fn newlines_never_reach_the_wire() {
        let mut p = point("a\nb");
        p.tags.push(("t".into(), "x\r\ny".into()));
        p.fields
            .push(("f\tg".into(), FieldValue::Text("l1\nl2".into())));
        let mut out = String::new();
        assert!(write_point(&mut out, &p, Precision::Ms));
        assert_eq!(out, r#"a\ b,t=x\ \ y f\ g="l1 l2""#);
    }

    #[test]
    fn trailing_backslashes_are_dropped_from_names() {
        let mut p = point("m\\");
        p.tags.push(("t".into(), "v\\\\".into()));
        p.tags.push(("empty".into(), "\\".into()));
        p.fields.push(("f\\".into(), FieldValue::Float(1.5)));
        let mut out = String::new();
        assert!(write_point(&mut out, &p, Precision::Ms));
        assert_eq!(out, "m,t=v f=1.5");
    }

    #[test]
    fn floats_use_shortest_round_trip_form_and_integers_the_i_suffix() {
        let mut p = point("m");
        p.fields.push(("a".into(), FieldValue::Float(233.7)));
        p.fields.push(("b".into(), FieldValue::Float(12937.0)));
        p.fields.push(("c".into(), FieldValue::Float(-0.819)));
        p.fields.push(("d".into(), FieldValue::Float(1e21)));
        p.fields.push(("e".into(), FieldValue::Float(0.000_000_1)));
        p.fields.push(("f".into(), FieldValue::Integer(-5)));
        p.fields.push(("nan".into(), FieldValue::Float(f64::NAN)));
        p.fields
            .push(("inf".into(), FieldValue::Float(f64::INFINITY)));
        let mut out = String::new();
        assert!(write_point(&mut out, &p, Precision::Ms));
        assert_eq!(
            out,
            "m a=233.7,b=12937,c=-0.819,d=1000000000000000000000,e=0.0000001,f=-5i"
        );
        let back: f64 = "233.7".parse().unwrap();
        assert_eq!(back, 233.7);
    }

    #[test]
    fn tags_are_sorted_and_empty_values_left_out() {
        let mut p = point("m");
        p.tags.push(("protocol".into(), "dsmr".into()));
        p.tags.push(("meter".into(), "evn".into()));
        p.tags.push(("empty".into(), String::new()));
        p.fields.push(("x".into(), FieldValue::Integer(1)));
        let mut out = String::new();
        assert!(write_point(&mut out, &p, Precision::Ms));
        assert_eq!(out, "m,meter=evn,protocol=dsmr x=1i");
    }

    #[test]
    fn repeated_field_keys_keep_the_first_value() {
        let mut p = point("m");
        p.fields.push(("x".into(), FieldValue::Integer(1)));
        p.fields.push(("x".into(), FieldValue::Integer(2)));
        let mut out = String::new();
        assert!(write_point(&mut out, &p, Precision::Ms));
        assert_eq!(out, "m x=1i");
    }

    #[test]
    fn a_point_without_fields_writes_nothing() {
        let mut p = point("m");
        p.fields.push(("nan".into(), FieldValue::Float(f64::NAN)));
        let mut out = String::from("keep");
        assert!(!write_point(&mut out, &p, Precision::Ms));
        assert_eq!(out, "keep");
        let lines = encode_points(&[p.clone(), point("n")], Precision::Ms);
        assert_eq!(lines, "");
        let mut good = point("g");
        good.fields.push(("x".into(), FieldValue::Integer(1)));
        assert_eq!(
            encode_points(&[p, good.clone(), good], Precision::Ms),
            "g x=1i\ng x=1i"
        );
    }

    #[test]
    fn timestamps_follow_the_precision() {
        let t = UNIX_EPOCH + Duration::from_nanos(1_632_728_835_123_456_789);
        assert_eq!(Precision::Ns.timestamp(t), 1_632_728_835_123_456_789);
        assert_eq!(Precision::Us.timestamp(t), 1_632_728_835_123_456);
        assert_eq!(Precision::Ms.timestamp(t), 1_632_728_835_123);
        assert_eq!(Precision::S.timestamp(t), 1_632_728_835);
        let before = UNIX_EPOCH - Duration::from_millis(1500);
        assert_eq!(Precision::S.timestamp(before), -2);
        let mut p = point("m");
        p.fields.push(("x".into(), FieldValue::Integer(1)));
        p.time = Some(t);
        let mut out = String::new();
        write_point(&mut out, &p, Precision::S);
        assert_eq!(out, "m x=1i 1632728835");
    }

    #[test]
    fn precision_names_for_both_api_versions() {
        for p in [Precision::Ns, Precision::Us, Precision::Ms, Precision::S] {
            assert_eq!(Precision::parse(p.as_str()), Some(p));
        }
        assert_eq!(Precision::Ns.v1_param(), "n");
        assert_eq!(Precision::Us.v1_param(), "u");
        assert_eq!(Precision::parse("m"), None);
    }
}
