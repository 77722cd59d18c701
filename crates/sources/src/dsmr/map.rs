//! DSMR telegram → [`Reading`]: the domain decisions of the `dsmr` protocol in one place.
//!
//! - Key: the object's OBIS code `A.B.C.D.E.255` (the M-Bus channel stays in group B:
//!   `0-1:24.2.1` → `0.1.24.2.1.255`). An id that is not an OBIS code is kept as a
//!   [`Key::Named`] when it is a plain token (letters, digits, `.-:*_`), else dropped.
//! - Value: the object's **last** group, as the published vectors' `expected` maps have it.
//!   For a single-value line that is the value; for `(timestamp)(value)` lines (M-Bus channels,
//!   maximum demand `1-0:1.6.0`) the value; for the DSMR 2.2/3 gas line the `(value)` on the
//!   continuation line; for logs (`1-0:99.97.0`, `0-0:98.1.0`) the last entry.
//! - A group `number*unit` becomes an exact [`Decimal`] (digits and sign as sent) with the
//!   telegram's unit; `m3` is written `m³`, other units as sent (`kWh`, `kvarh`, `kVArh`, `GJ`;
//!   those with a DLMS code, such as `Wh`, `W`, `V`, `A`, `var`, `Hz`, `s`, map to it).
//! - A group without a unit stays text exactly as sent: `"0002"`, equipment ids and
//!   `0-0:96.13.0` messages in their hex form.
//! - The meter clock `0-0:1.0.0` is [`Reading::meter_time`] and, as SPEC.md asks, the value of
//!   `0.0.1.0.0.255` as an ISO time string (`2023-08-17T15:24:25+02:00`), with `S` read as
//!   UTC+02:00 (CEST) and `W` as UTC+01:00 (CET). The published vectors keep the telegram's
//!   `YYMMDDhhmmssX` text; their tests convert it. A clock that does not parse stays text. The
//!   offsets assume the CET zone of every DSMR country in the vectors; Irish meters (vector
//!   `ie-iskra-mie5t` says `S` in February) are off by one hour.
//!
//! What the one-value-per-key model leaves out (available from `proto-dsmr`'s typed API: see
//! `Object::captured`, `Object::legacy_mbus`, `Object::power_failures`): the capture time of
//! M-Bus readings and of the maximum demand, the unit of the DSMR 2.2/3 gas value (sent in a
//! separate group), and all but the last entry of the power failure log and of the monthly
//! maximum history.

use proto_dsmr::{Number, Telegram, Timestamp};
use smart_meter_core::{Decimal, Key, MeterId, MeterTime, Obis, Reading, Sample, Unit, Value};

use super::NAME;

/// Maps one parsed telegram to a reading of `meter`. `authenticated` is `None` for plain P1,
/// else whether the GCM tag was verified.
pub fn map(telegram: &Telegram<'_>, meter: &MeterId, authenticated: Option<bool>) -> Reading {
    map_with_capacity(telegram, meter, authenticated, 0)
}

/// [`map`] with room for `capacity` samples reserved up front (the adapter passes the sample
/// count of the meter's previous telegram, so a reading's samples are allocated once).
pub fn map_with_capacity(
    telegram: &Telegram<'_>,
    meter: &MeterId,
    authenticated: Option<bool>,
    capacity: usize,
) -> Reading {
    let mut reading = Reading::new(meter.clone(), NAME);
    reading.authenticated = authenticated;
    reading.samples.reserve_exact(capacity);
    let mut clock_seen = false;
    for object in telegram.objects() {
        let value = object.value();
        // The meter clock is the first `0-0:1.0.0` object (as `Telegram::clock` finds it);
        // it comes before the samples that use it.
        if !clock_seen && object.obis() == Some(proto_dsmr::Obis::CLOCK) {
            clock_seen = true;
            reading.meter_time = value.and_then(|g| g.timestamp()).and_then(meter_time);
        }
        let key = match object.obis() {
            Some(obis) => Key::Obis(Obis(obis.0)),
            None if is_token(object.id()) => Key::Named(object.id().into()),
            None => continue,
        };
        let Some(group) = value else {
            continue;
        };
        let sample = match (group.quantity(), reading.meter_time) {
            (Some((number, unit)), _) => Sample::number(key, decimal(number), self::unit(unit)),
            (None, Some(time)) if key == Key::Obis(Obis::CLOCK) => Sample {
                key,
                value: Value::Time(time),
                unit: None,
            },
            (None, _) => Sample::text(key, group.raw()),
        };
        reading.samples.push(sample);
    }
    reading
}

/// The meter's clock with the offset its S/W flag implies.
pub fn meter_time(t: Timestamp) -> Option<MeterTime> {
    MeterTime::new(
        t.year,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        None,
        t.utc_offset_minutes(),
    )
}

fn decimal(n: Number) -> Decimal {
    Decimal::new(n.mantissa, n.exponent)
}

/// A DSMR unit text as a [`Unit`]; `m3` is the cubic metre.
pub fn unit(symbol: &str) -> Option<Unit> {
    match symbol {
        "m3" => Unit::from_symbol("m³"),
        "m3/h" => Unit::from_symbol("m³/h"),
        other => Unit::from_symbol(other),
    }
}

fn is_token(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 32
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:*_".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn telegram_bytes(body: &str) -> Vec<u8> {
        let mut t = format!("/TST5\\2TEST\r\n\r\n{body}\r\n!").into_bytes();
        let crc = proto_dsmr::crc::crc16(&t);
        t.extend_from_slice(format!("{crc:04X}\r\n").as_bytes());
        t
    }

    fn reading(body: &str) -> Reading {
        let bytes = telegram_bytes(body);
        let telegram = Telegram::parse(&bytes).unwrap();
        map(&telegram, &MeterId::new("p1").unwrap(), None)
    }

    #[test]
    fn keeps_signs_digits_and_units_exactly() {
        let r = reading("1-0:2.7.0(-00.123*kW)\r\n0-1:24.2.1(200426223001S)(00246.138*m3)");
        let power = r.obis(Obis::new(1, 0, 2, 7, 0, 255)).unwrap();
        assert_eq!(power.value.as_number(), Some(Decimal::new(-123, -3)));
        assert_eq!(power.unit.as_ref().and_then(Unit::symbol), Some("kW"));
        let gas = r.obis(Obis::new(0, 1, 24, 2, 1, 255)).unwrap();
        assert_eq!(gas.value.to_string(), "246.138");
        assert_eq!(gas.unit.as_ref().and_then(Unit::symbol), Some("m³"));
    }

    #[test]
    fn reads_the_clock_with_its_summer_or_winter_offset() {
        let r = reading("0-0:1.0.0(200426223325S)");
        assert_eq!(
            r.meter_time.unwrap().to_string(),
            "2020-04-26T22:33:25+02:00"
        );
        let clock = r.obis(Obis::CLOCK).unwrap();
        assert_eq!(clock.value.to_string(), "2020-04-26T22:33:25+02:00");
        let r = reading("0-0:1.0.0(161113205757W)");
        assert_eq!(
            r.meter_time.unwrap().to_string(),
            "2016-11-13T20:57:57+01:00"
        );
        assert_eq!(reading("0-0:1.0.0(632525252525W)").meter_time, None);
    }

    #[test]
    fn only_the_first_clock_line_sets_the_meter_time() {
        let r = reading(
            "1-0:1.8.1(1*kWh)\r\n0-0:1.0.0(bad)\r\n0-0:1.0.0(200426223325S)\r\n0-0:96.1.1(1)",
        );
        assert_eq!(r.meter_time, None);
        let texts: Vec<String> = r.samples.iter().map(|s| s.value.to_string()).collect();
        assert_eq!(texts, ["1", "bad", "200426223325S", "1"]);
        let r = reading("0-0:1.0.0(200426223325S)\r\n0-0:1.0.0(161113205757W)");
        let times: Vec<String> = r.samples.iter().map(|s| s.value.to_string()).collect();
        assert_eq!(
            times,
            ["2020-04-26T22:33:25+02:00", "2020-04-26T22:33:25+02:00"]
        );
        let capacity = |n| {
            let bytes = telegram_bytes("1-0:1.8.1(1*kWh)");
            let telegram = Telegram::parse(&bytes).unwrap();
            map_with_capacity(&telegram, &MeterId::new("p1").unwrap(), None, n)
        };
        assert_eq!(capacity(0).samples, capacity(40).samples);
    }

    #[test]
    fn keeps_values_without_unit_as_text() {
        let r = reading("0-0:96.14.0(0002)\r\n0-0:96.13.0()\r\n1-0:13.7.0(4.556)");
        let texts: Vec<String> = r.samples.iter().map(|s| s.value.to_string()).collect();
        assert_eq!(texts, ["0002", "", "4.556"]);
        assert!(r.samples.iter().all(|s| s.unit.is_none()));
    }

    #[test]
    fn keeps_unknown_ids_as_named_keys_and_drops_unsafe_ones() {
        let r = reading("VENDOR.X(12*kWh)\r\nbad id#(1)\r\nnot a line");
        assert_eq!(r.samples.len(), 1);
        assert_eq!(r.samples[0].key, Key::Named("VENDOR.X".into()));
    }
}
