//! Arbitrary bytes as one P1 telegram (CRC check bypassed under cfg(fuzzing)) and as telegram
//! body text: the check/parse pair, the line grammar, groups, numbers, timestamps, OBIS codes,
//! hex text and the power failure log. Must never panic. Properties: `check` and `parse` agree
//! on the length of a complete telegram; a number re-parses from its own text to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_dsmr::{Line, Lines, Number, Object, Obis, Telegram, Timestamp};

fn number_round_trips(n: Number) {
    assert_eq!(Number::parse(&n.to_string()), Some(n), "{n}");
}

fn walk_object(o: &Object<'_>) {
    let _ = (o.obis(), o.group_count(), o.captured(), o.legacy_mbus());
    if let Some(v) = o.value() {
        let _ = v.value();
    }
    for g in o.groups() {
        let _ = (g.value(), g.unit(), g.timestamp(), g.obis(), g.hex_text());
        if let Some(n) = g.number() {
            number_round_trips(n);
        }
        if let Some((n, _unit)) = g.quantity() {
            number_round_trips(n);
        }
    }
    if let Some(log) = o.power_failures() {
        let _ = log.announced();
        log.for_each(drop);
    }
}

fn walk(lines: Lines<'_>) {
    for line in lines {
        match line {
            Line::Object(o) => walk_object(&o),
            Line::Unknown(text) => assert!(!text.trim().is_empty()),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let checked = Telegram::check(data);
    if let Ok(t) = Telegram::parse(data) {
        assert_eq!(t.len(), data.len());
        let _ = (t.header(), t.checksum(), t.clock(), t.object(Obis::CLOCK));
        walk(t.lines());
        assert_eq!(t.objects().count(), t.lines().filter(|l| matches!(l, Line::Object(_))).count());
        // A complete telegram with its line break is found by `check` with the same length.
        if data.ends_with(b"\n") {
            assert_eq!(checked, Ok(data.len()));
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        walk(Lines::new(text));
        if let Some(n) = Number::parse(text) {
            number_round_trips(n);
        }
        let _ = Timestamp::parse(text);
        let _ = Obis::parse(text);
    }
});
