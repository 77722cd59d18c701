//! A synthetic DSMR 5 meter whose telegrams can be told apart: telegram `i` is the real
//! Iskra AM550 capture of the `proto-dsmr` vectors with its clock set to
//! 2020-01-01 00:00:00 CET + `i` seconds and its import register `1-0:1.8.1` set to `i` Wh
//! (written `kWh` with three decimals, as the meter does), with a correct CRC-16. Every other
//! line is as captured, so a telegram has the real size and the real mix of lines.

use serde_json::Value;

/// The captured telegram the synthetic ones are made from.
pub const TEMPLATE: &str =
    include_str!("../../crates/proto/dsmr/vectors/plain/nl-dsmr5-iskra-am550-two-mbus.txt");

const CLOCK_LINE: &str = "0-0:1.0.0(200426223325S)";
const ENERGY_LINE: &str = "1-0:1.8.1(002130.115*kWh)";

/// Unix time of telegram 0's clock: 2020-01-01T00:00:00+01:00.
pub const EPOCH: i64 = 1_577_833_200;

/// The OBIS key of the register that carries the telegram's number, as in the reading JSON.
pub const INDEX_KEY: &str = "1.0.1.8.1.255";

/// `YYMMDDhhmmss` of a Unix time shifted to CET (UTC+01:00).
fn cet_digits(unix: i64) -> String {
    let local = unix + 3600;
    let days = local.div_euclid(86_400);
    let secs = local.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{:02}{:02}{:02}{:02}{:02}{:02}",
        year % 100,
        month,
        day,
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Telegram `i`, `/` through `!CRC CR LF`.
pub fn telegram(i: u64) -> Vec<u8> {
    let body_end = TEMPLATE
        .rfind('!')
        .expect("the template has a checksum line");
    let clock = format!("0-0:1.0.0({}W)", cet_digits(EPOCH + i as i64));
    let energy = format!("1-0:1.8.1({:06}.{:03}*kWh)", i / 1000, i % 1000);
    let mut text = TEMPLATE[..=body_end]
        .replacen(CLOCK_LINE, &clock, 1)
        .replacen(ENERGY_LINE, &energy, 1);
    assert!(
        text.contains(&clock) && text.contains(&energy),
        "template changed"
    );
    let crc = proto_dsmr::crc::crc16(text.as_bytes());
    text.push_str(&format!("{crc:04X}\r\n"));
    text.into_bytes()
}

/// Telegrams `range` back to back, as a meter sends them.
pub fn capture(range: std::ops::Range<u64>) -> Vec<u8> {
    let mut out = Vec::with_capacity(TEMPLATE.len() * (range.end - range.start) as usize);
    for i in range {
        out.extend_from_slice(&telegram(i));
    }
    out
}

/// The telegram number a reading JSON object carries (its `1-0:1.8.1` in Wh), after checking
/// that its meter clock (`0.0.1.0.0.255`, ISO 8601) agrees.
pub fn index_of(reading: &Value) -> u64 {
    let kwh = reading["values"][INDEX_KEY]["value"]
        .as_f64()
        .unwrap_or_else(|| panic!("no {INDEX_KEY} in {reading}"));
    let i = (kwh * 1000.0).round() as u64;
    let clock = reading["values"]["0.0.1.0.0.255"]["value"].as_str();
    let d = cet_digits(EPOCH + i as i64);
    let want = format!(
        "20{}-{}-{}T{}:{}:{}+01:00",
        &d[0..2],
        &d[2..4],
        &d[4..6],
        &d[6..8],
        &d[8..10],
        &d[10..12]
    );
    assert_eq!(
        clock,
        Some(want.as_str()),
        "reading {i}: clock and register disagree"
    );
    i
}

/// The telegram numbers of reading JSON objects, in order.
pub fn indices(readings: &[Value]) -> Vec<u64> {
    readings.iter().map(index_of).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telegrams_carry_their_number_and_a_valid_crc() {
        let t = telegram(123_456);
        let parsed = proto_dsmr::Telegram::parse(&t).expect("valid telegram");
        let text = std::str::from_utf8(&t).unwrap();
        assert!(text.contains("1-0:1.8.1(000123.456*kWh)"));
        // 2020-01-01 00:00:00 + 123456 s = 2020-01-02 10:17:36.
        assert!(text.contains("0-0:1.0.0(200102101736W)"));
        assert!(parsed.clock().is_some());
        assert_eq!(cet_digits(EPOCH + 366 * 86_400), "210101000000");
    }
}
