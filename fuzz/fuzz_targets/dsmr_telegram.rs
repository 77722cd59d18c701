//! Telegram check/parse and the OBIS line grammar on arbitrary bytes: no panic, and every
//! accessor of every object is exercised. Under `cfg(fuzzing)` the CRC is not checked, so the
//! grammar is reached.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_dsmr::{Line, Lines, Object, Telegram};

fn exercise(object: &Object<'_>) {
    let _ = (object.id(), object.obis(), object.raw());
    // The one-pass line scanner and the group iterator must agree: an object has groups.
    assert!(object.group_count() >= 1, "{:?}", object.raw());
    assert!(object.value().is_some());
    assert!(object.raw().trim_start_matches([' ', '\t']).starts_with(object.id()));
    for group in object.groups() {
        let _ = (group.raw(), group.value(), group.unit(), group.obis());
        if let Some(n) = group.number() {
            let _ = n.to_string();
        }
        let _ = group.quantity();
        if let Some(t) = group.timestamp() {
            let _ = (t.to_string(), t.utc_offset_minutes());
        }
        let _ = group.hex_text();
    }
    let _ = (object.value(), object.captured(), object.legacy_mbus());
    if let Some(log) = object.power_failures() {
        let _ = log.announced();
        for entry in log {
            let _ = (entry.end, entry.duration.quantity());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let checked = Telegram::check(data);
    match Telegram::parse(data) {
        Ok(telegram) => {
            let _ = (telegram.header(), telegram.checksum(), telegram.clock());
            for line in telegram.lines() {
                if let Line::Object(o) = line {
                    exercise(&o);
                }
            }
            // A telegram that parses ends where `check` says, or lacks only its final CR LF.
            if let Ok(len) = checked {
                assert_eq!(len, data.len());
            }
        }
        Err(_) => {}
    }
    if let Ok(text) = std::str::from_utf8(data) {
        for line in Lines::new(text) {
            if let Line::Object(o) = line {
                exercise(&o);
            }
        }
    }
});
