//! Meter clock readings and UTC timestamps, without a calendar dependency.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::text::push_uint;

/// A meter's own clock reading: a civil date and time, with the UTC offset when the meter
/// sends one (DLMS deviation, DSMR's S/W flag).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MeterTime {
    /// Year (e.g. 2026).
    pub year: u16,
    /// Month 1..=12.
    pub month: u8,
    /// Day of month 1..=31.
    pub day: u8,
    /// Hour 0..=23.
    pub hour: u8,
    /// Minute 0..=59.
    pub minute: u8,
    /// Second 0..=59 (60 for a leap second is kept as sent).
    pub second: u8,
    /// Milliseconds, when the meter sends hundredths.
    pub millis: Option<u16>,
    /// Minutes east of UTC (CET = +60, CEST = +120); `None` when the meter does not say.
    pub offset_minutes: Option<i16>,
}

impl MeterTime {
    /// Checks the calendar fields; `None` when any is out of range.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        year: u16,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
        millis: Option<u16>,
        offset_minutes: Option<i16>,
    ) -> Option<Self> {
        let ok = (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month)
            && hour < 24
            && minute < 60
            && second <= 60
            && millis.is_none_or(|m| m < 1000)
            && offset_minutes.is_none_or(|o| (-16 * 60..=16 * 60).contains(&o));
        ok.then_some(MeterTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            millis,
            offset_minutes,
        })
    }

    /// Seconds since the Unix epoch, when the offset is known.
    pub fn unix_seconds(&self) -> Option<i64> {
        let offset = i64::from(self.offset_minutes?);
        let days = days_from_civil(i64::from(self.year), self.month, self.day);
        let local = days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second);
        Some(local - offset * 60)
    }

    /// Appends the ISO 8601 form of [`Display`](fmt::Display) to `out` as ASCII, without the
    /// formatting machinery.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        push_uint(out, u64::from(self.year), 4);
        out.push(b'-');
        push_uint(out, u64::from(self.month), 2);
        out.push(b'-');
        push_uint(out, u64::from(self.day), 2);
        out.push(b'T');
        push_uint(out, u64::from(self.hour), 2);
        out.push(b':');
        push_uint(out, u64::from(self.minute), 2);
        out.push(b':');
        push_uint(out, u64::from(self.second), 2);
        if let Some(ms) = self.millis {
            out.push(b'.');
            push_uint(out, u64::from(ms), 3);
        }
        if let Some(o) = self.offset_minutes {
            if o == 0 {
                out.push(b'Z');
            } else {
                out.push(if o < 0 { b'-' } else { b'+' });
                let a = o.unsigned_abs();
                push_uint(out, u64::from(a / 60), 2);
                out.push(b':');
                push_uint(out, u64::from(a % 60), 2);
            }
        }
    }

    /// As a [`SystemTime`], when the offset is known.
    pub fn to_system_time(&self) -> Option<SystemTime> {
        let secs = self.unix_seconds()?;
        let ms = u64::from(self.millis.unwrap_or(0));
        let secs = u64::try_from(secs).ok()?;
        Some(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(ms))
    }
}

impl fmt::Display for MeterTime {
    /// ISO 8601: `2021-09-27T09:47:15+02:00`, `…15.500+02:00` with milliseconds, no offset
    /// suffix when the offset is unknown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )?;
        if let Some(ms) = self.millis {
            write!(f, ".{ms:03}")?;
        }
        if let Some(o) = self.offset_minutes {
            if o == 0 {
                f.write_str("Z")?;
            } else {
                let sign = if o < 0 { '-' } else { '+' };
                let a = o.unsigned_abs();
                write!(f, "{sign}{:02}:{:02}", a / 60, a % 60)?;
            }
        }
        Ok(())
    }
}

/// Days in a month of the proleptic Gregorian calendar.
pub fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 (H. Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i64, m: u8, d: u8) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u8, u8) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// RFC 3339 UTC with milliseconds: `2026-11-21T22:00:00.123Z`.
pub fn format_utc(t: SystemTime) -> String {
    let mut s = Vec::with_capacity(24);
    write_utc(&mut s, t);
    String::from_utf8_lossy(&s).into_owned()
}

/// Appends [`format_utc`]'s text to `out` (ASCII).
pub fn write_utc(out: &mut Vec<u8>, t: SystemTime) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (y, m, day) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400) as u64;
    match u64::try_from(y) {
        Ok(y) => push_uint(out, y, 4),
        // Not reachable from a time after the epoch; kept exact all the same.
        Err(_) => out.extend_from_slice(format!("{y:04}").as_bytes()),
    }
    out.push(b'-');
    push_uint(out, u64::from(m), 2);
    out.push(b'-');
    push_uint(out, u64::from(day), 2);
    out.push(b'T');
    push_uint(out, rem / 3600, 2);
    out.push(b':');
    push_uint(out, rem % 3600 / 60, 2);
    out.push(b':');
    push_uint(out, rem % 60, 2);
    out.push(b'.');
    push_uint(out, u64::from(d.subsec_millis()), 3);
    out.push(b'Z');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_meter_time_with_offset() {
        let t = MeterTime::new(2021, 9, 27, 9, 47, 15, None, Some(120)).unwrap();
        assert_eq!(t.to_string(), "2021-09-27T09:47:15+02:00");
        assert_eq!(t.unix_seconds(), Some(1_632_728_835));
        let t = MeterTime::new(2021, 9, 27, 9, 47, 15, Some(5), None).unwrap();
        assert_eq!(t.to_string(), "2021-09-27T09:47:15.005");
        assert_eq!(t.unix_seconds(), None);
    }

    #[test]
    fn write_to_matches_display() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut times = vec![MeterTime {
            year: u16::MAX,
            month: u8::MAX,
            day: 0,
            hour: 100,
            minute: 255,
            second: 60,
            millis: Some(u16::MAX),
            offset_minutes: Some(i16::MIN),
        }];
        for _ in 0..5000 {
            let r = next();
            times.push(MeterTime {
                year: (r % 12_000) as u16,
                month: (r >> 16) as u8 % 14,
                day: (r >> 24) as u8 % 33,
                hour: (r >> 32) as u8 % 25,
                minute: (r >> 40) as u8 % 61,
                second: (r >> 48) as u8 % 62,
                millis: (r & 4 == 0).then_some((r >> 20) as u16 % 1001),
                offset_minutes: match r % 5 {
                    0 => None,
                    1 => Some(0),
                    _ => Some(((r >> 28) % 2000) as i16 - 1000),
                },
            });
        }
        for t in times {
            let mut s = b"x".to_vec();
            t.write_to(&mut s);
            assert_eq!(s, format!("x{t}").into_bytes(), "{t:?}");
        }
    }

    #[test]
    fn utc_text_is_fixed_width_rfc3339() {
        let reference = |t: SystemTime| {
            let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
            let secs = d.as_secs() as i64;
            let (y, m, day) = civil_from_days(secs.div_euclid(86_400));
            let rem = secs.rem_euclid(86_400);
            format!(
                "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
                rem / 3600,
                rem % 3600 / 60,
                rem % 60,
                d.subsec_millis()
            )
        };
        let mut ms: u64 = 1;
        while ms < 400_000_000_000_000 {
            for t in [
                UNIX_EPOCH + Duration::from_millis(ms),
                UNIX_EPOCH - Duration::from_millis(ms),
            ] {
                assert_eq!(format_utc(t), reference(t));
            }
            ms = ms * 3 + 7;
        }
        assert_eq!(format_utc(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn rejects_impossible_dates() {
        assert!(MeterTime::new(2023, 2, 29, 0, 0, 0, None, None).is_none());
        assert!(MeterTime::new(2024, 2, 29, 0, 0, 0, None, None).is_some());
        assert!(MeterTime::new(2024, 13, 1, 0, 0, 0, None, None).is_none());
        assert!(MeterTime::new(2024, 1, 1, 24, 0, 0, None, None).is_none());
    }

    #[test]
    fn formats_utc_timestamps() {
        let t = UNIX_EPOCH + Duration::from_millis(1_632_728_835_123);
        assert_eq!(format_utc(t), "2021-09-27T07:47:15.123Z");
        for days in [-1000, 0, 59, 60, 365 * 30 + 7, 20_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
