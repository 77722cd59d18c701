//! A checker for the Homie 4.0.0 rules, applied to a snapshot of topics (topic → last payload,
//! e.g. every retained message under `homie/#`). The tests use it on what the sink publishes
//! and on what a real broker hands back; it can also check other Homie devices.
//!
//! Checked, per device under the base topic:
//! - every topic level that is not an attribute is a valid id (`^[a-z0-9]+(-[a-z0-9]+)*$`);
//! - `$homie` = `4.0.0`, `$name` non-empty, `$state` one of init, ready, disconnected,
//!   sleeping, lost, alert; `$nodes` lists valid, unique ids; `$extensions` is present (an empty
//!   payload is allowed, and [`Options::extensions_may_be_absent`] accepts its absence in a
//!   retained snapshot, where MQTT cannot keep an empty payload);
//! - every listed node has `$name` (non-empty), `$type` and `$properties` (valid, unique ids);
//! - every listed property has `$name` (non-empty) and `$datatype` (integer, float, boolean,
//!   string, enum, color, datetime, duration); `$settable`/`$retained` are `true` or `false`;
//!   `$format` is present for enum and color and a `from:to` range of numbers when given for
//!   integer and float;
//! - a property's value, when present, is a valid payload of its datatype;
//! - nothing else lives under the device: no topics of undeclared nodes or properties, no
//!   unknown attributes.

use std::collections::{BTreeMap, BTreeSet};

use super::naming::is_valid_id;

/// Relaxations for snapshots that cannot show everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Accept a missing `$extensions` (an empty payload cannot be retained).
    pub extensions_may_be_absent: bool,
}

const STATES: [&str; 6] = ["init", "ready", "disconnected", "sleeping", "lost", "alert"];
const DATATYPES: [&str; 8] = [
    "integer", "float", "boolean", "string", "enum", "color", "datetime", "duration",
];
const DEVICE_ATTRS: [&str; 6] = [
    "$homie",
    "$name",
    "$state",
    "$nodes",
    "$extensions",
    "$implementation",
];

/// The device ids found under `base` (every `<base>/<id>/$homie` topic).
pub fn devices(base: &str, topics: &BTreeMap<String, String>) -> Vec<String> {
    let prefix = format!("{}/", base.trim_end_matches('/'));
    topics
        .keys()
        .filter_map(|t| t.strip_prefix(&prefix)?.strip_suffix("/$homie"))
        .filter(|d| !d.contains('/'))
        .map(str::to_string)
        .collect()
}

/// Every rule the device `device` under `base` breaks, as readable sentences; empty when it
/// conforms.
pub fn check_device(
    base: &str,
    device: &str,
    topics: &BTreeMap<String, String>,
    opts: Options,
) -> Vec<String> {
    let mut problems = Vec::new();
    let dev = format!("{}/{device}", base.trim_end_matches('/'));
    let get = |suffix: &str| topics.get(&format!("{dev}/{suffix}")).map(String::as_str);

    if !is_valid_id(device) {
        problems.push(format!("device id {device:?} is not a valid Homie id"));
    }
    match get("$homie") {
        Some("4.0.0") => {}
        other => problems.push(format!("$homie is {other:?}, expected \"4.0.0\"")),
    }
    match get("$name") {
        Some(n) if !n.is_empty() => {}
        other => problems.push(format!("device $name is {other:?}, expected a name")),
    }
    match get("$state") {
        Some(s) if STATES.contains(&s) => {}
        other => problems.push(format!("$state is {other:?}, not a Homie state")),
    }
    if get("$extensions").is_none() && !opts.extensions_may_be_absent {
        problems.push("$extensions is missing".to_string());
    }
    let nodes = match get("$nodes") {
        Some(list) => id_list("$nodes", list, &mut problems),
        None => {
            problems.push("$nodes is missing".to_string());
            Vec::new()
        }
    };

    let mut declared: BTreeSet<String> =
        DEVICE_ATTRS.iter().map(|a| format!("{dev}/{a}")).collect();
    for node in &nodes {
        let nt = format!("{dev}/{node}");
        let nget = |suffix: &str| topics.get(&format!("{nt}/{suffix}")).map(String::as_str);
        match nget("$name") {
            Some(n) if !n.is_empty() => {}
            other => problems.push(format!("node {node}: $name is {other:?}")),
        }
        if nget("$type").is_none() {
            problems.push(format!("node {node}: $type is missing"));
        }
        let props = match nget("$properties") {
            Some(list) => id_list(&format!("node {node}: $properties"), list, &mut problems),
            None => {
                problems.push(format!("node {node}: $properties is missing"));
                Vec::new()
            }
        };
        for a in ["$name", "$type", "$properties"] {
            declared.insert(format!("{nt}/{a}"));
        }
        for prop in &props {
            let pt = format!("{nt}/{prop}");
            let pget = |suffix: &str| topics.get(&format!("{pt}/{suffix}")).map(String::as_str);
            let what = format!("property {node}/{prop}");
            match pget("$name") {
                Some(n) if !n.is_empty() => {}
                other => problems.push(format!("{what}: $name is {other:?}")),
            }
            let datatype = pget("$datatype");
            match datatype {
                Some(d) if DATATYPES.contains(&d) => {}
                other => problems.push(format!("{what}: $datatype is {other:?}")),
            }
            for flag in ["$settable", "$retained"] {
                if let Some(v) = pget(flag) {
                    if v != "true" && v != "false" {
                        problems.push(format!("{what}: {flag} is {v:?}, not true or false"));
                    }
                }
            }
            let format = pget("$format");
            match (datatype, format) {
                (Some("enum" | "color"), None) => {
                    problems.push(format!("{what}: $format is required for its datatype"))
                }
                (Some(dt @ ("integer" | "float")), Some(f)) if !is_range(f, dt == "integer") => {
                    problems.push(format!("{what}: $format {f:?} is not a from:to range"));
                }
                _ => {}
            }
            if let (Some(dt), Some(v)) = (datatype, topics.get(&pt)) {
                if !valid_payload(dt, v) {
                    problems.push(format!("{what}: value {v:?} is not a valid {dt}"));
                }
            }
            declared.insert(pt.clone());
            for a in [
                "$name",
                "$datatype",
                "$format",
                "$settable",
                "$retained",
                "$unit",
            ] {
                declared.insert(format!("{pt}/{a}"));
            }
        }
    }

    let prefix = format!("{dev}/");
    for topic in topics.keys().filter(|t| t.starts_with(&prefix)) {
        if !declared.contains(topic) {
            problems.push(format!("{topic} is not declared by $nodes/$properties"));
        }
        if let Some(rest) = topic.strip_prefix(&prefix) {
            for level in rest.split('/') {
                if !level.starts_with('$') && !is_valid_id(level) {
                    problems.push(format!("{topic}: level {level:?} is not a valid id"));
                }
            }
        }
    }
    problems
}

fn id_list(what: &str, list: &str, problems: &mut Vec<String>) -> Vec<String> {
    let ids: Vec<String> = if list.is_empty() {
        Vec::new()
    } else {
        list.split(',').map(str::to_string).collect()
    };
    let mut seen = BTreeSet::new();
    for id in &ids {
        if !is_valid_id(id) {
            problems.push(format!("{what}: {id:?} is not a valid id"));
        }
        if !seen.insert(id) {
            problems.push(format!("{what}: {id:?} is listed twice"));
        }
    }
    ids
}

fn is_range(f: &str, integer: bool) -> bool {
    let Some((a, b)) = f.split_once(':') else {
        return false;
    };
    if integer {
        a.parse::<i64>().is_ok() && b.parse::<i64>().is_ok()
    } else {
        a.parse::<f64>().is_ok() && b.parse::<f64>().is_ok()
    }
}

/// Whether `v` is a valid payload of the Homie datatype `dt`.
pub fn valid_payload(dt: &str, v: &str) -> bool {
    match dt {
        "integer" => v.parse::<i64>().is_ok(),
        "float" => {
            !v.is_empty()
                && v.bytes()
                    .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
                && v.parse::<f64>().is_ok_and(f64::is_finite)
        }
        "boolean" => v == "true" || v == "false",
        "datetime" => is_iso8601(v),
        "string" => true,
        _ => !v.is_empty(),
    }
}

/// `YYYY-MM-DDThh:mm:ss[.fff][Z|±hh:mm]`.
fn is_iso8601(v: &str) -> bool {
    let b = v.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b.get(r)
            .is_some_and(|s| !s.is_empty() && s.iter().all(u8::is_ascii_digit))
    };
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(digits(0..4)
        && at(4, b'-')
        && digits(5..7)
        && at(7, b'-')
        && digits(8..10)
        && at(10, b'T')
        && digits(11..13)
        && at(13, b':')
        && digits(14..16)
        && at(16, b':')
        && digits(17..19))
    {
        return false;
    }
    let mut i = 19;
    if at(i, b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match b.get(i) {
        None => true,
        Some(b'Z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            digits(i + 1..i + 3) && at(i + 3, b':') && digits(i + 4..i + 6) && i + 6 == b.len()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(t, p)| (t.to_string(), p.to_string()))
            .collect()
    }

    fn good() -> BTreeMap<String, String> {
        snapshot(&[
            ("homie/d/$homie", "4.0.0"),
            ("homie/d/$name", "D"),
            ("homie/d/$state", "ready"),
            ("homie/d/$extensions", ""),
            ("homie/d/$nodes", "n"),
            ("homie/d/n/$name", "N"),
            ("homie/d/n/$type", "t"),
            ("homie/d/n/$properties", "p,q"),
            ("homie/d/n/p/$name", "P"),
            ("homie/d/n/p/$datatype", "float"),
            ("homie/d/n/p/$format", "-1:1"),
            ("homie/d/n/p", "-0.5"),
            ("homie/d/n/q/$name", "Q"),
            ("homie/d/n/q/$datatype", "datetime"),
            ("homie/d/n/q", "2021-09-27T09:47:15+02:00"),
        ])
    }

    #[test]
    fn a_conforming_device_has_no_problems() {
        let t = good();
        assert_eq!(devices("homie", &t), vec!["d".to_string()]);
        assert_eq!(
            check_device("homie", "d", &t, Options::default()),
            Vec::<String>::new()
        );
    }

    #[test]
    fn each_broken_rule_is_reported() {
        let cases: Vec<(&str, Option<&str>, &str)> = vec![
            ("homie/d/$homie", Some("3.0.1"), "$homie"),
            ("homie/d/$state", Some("online"), "$state"),
            ("homie/d/$extensions", None, "$extensions is missing"),
            ("homie/d/$nodes", Some("n,Bad_id"), "not a valid id"),
            ("homie/d/n/$type", None, "$type is missing"),
            ("homie/d/n/p/$name", Some(""), "$name is Some(\"\")"),
            ("homie/d/n/p/$datatype", Some("number"), "$datatype"),
            ("homie/d/n/p/$format", Some("0-1"), "range"),
            ("homie/d/n/p", Some("1,5"), "not a valid float"),
            (
                "homie/d/n/q",
                Some("2021-09-27 09:47"),
                "not a valid datetime",
            ),
            ("homie/d/n/stale", Some("1"), "not declared"),
        ];
        for (topic, payload, expect) in cases {
            let mut t = good();
            match payload {
                Some(p) => t.insert(topic.to_string(), p.to_string()),
                None => t.remove(topic),
            };
            let problems = check_device("homie", "d", &t, Options::default());
            assert!(
                problems.iter().any(|p| p.contains(expect)),
                "{topic}={payload:?}: {problems:?}"
            );
        }
        let mut t = good();
        t.remove("homie/d/$extensions");
        let relaxed = Options {
            extensions_may_be_absent: true,
        };
        assert!(check_device("homie", "d", &t, relaxed).is_empty());
    }

    #[test]
    fn payloads_are_checked_per_datatype() {
        assert!(valid_payload("integer", "-12937"));
        assert!(!valid_payload("integer", "1.5"));
        assert!(valid_payload("float", "233.7"));
        assert!(valid_payload("float", "12937"));
        assert!(!valid_payload("float", ""));
        assert!(!valid_payload("float", "NaN"));
        assert!(valid_payload("datetime", "2021-09-27T09:47:15"));
        assert!(valid_payload("datetime", "2021-09-27T09:47:15.005Z"));
        assert!(!valid_payload("datetime", "2021-09-27T09:47:15+2"));
        assert!(valid_payload("boolean", "false"));
    }
}
