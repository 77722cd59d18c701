//! The COSEM date-time (Blue Book DLMS UA 1000-1 ed. 15 §4.1.6.1, "Date and time formats").
//!
//! ```text
//! year (2, BE; FFFF = not specified) | month (FF n.s., FE DST begin, FD DST end)
//! | day of month (FF n.s., FE last, FD second last) | day of week (1 = Monday, FF n.s.)
//! | hour | minute | second | hundredths (FF n.s.)
//! | deviation (2, signed minutes; 8000 = not specified) | clock status (FF n.s.)
//! ```
//!
//! # Deviation sign
//! The Blue Book defines the deviation as the minutes *of local time to UTC*, i.e.
//! `UTC - local`: Austrian meters send `FF88` (−120) in summer time (UTC+2) and `FFC4` (−60)
//! in winter. [`DateTime::deviation`] keeps the raw value; [`DateTime::offset_minutes_east`]
//! negates it into the usual "minutes east of UTC" (+120 for CEST).

/// Deviation value meaning "not specified".
pub const DEVIATION_NOT_SPECIFIED: i16 = i16::MIN;
/// Clock status bit: daylight saving time is active.
pub const CLOCK_STATUS_DST: u8 = 0x80;

/// A decoded COSEM date-time. `None` marks a field the meter sent as "not specified"
/// (`0xFF`, `0xFFFF` or `0x8000`). Month and day keep the special values `0xFD`/`0xFE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DateTime {
    /// Year.
    pub year: Option<u16>,
    /// Month 1..=12 (or `0xFD`/`0xFE`).
    pub month: Option<u8>,
    /// Day of month 1..=31 (or `0xFD`/`0xFE`).
    pub day: Option<u8>,
    /// Day of week, 1 = Monday .. 7 = Sunday.
    pub weekday: Option<u8>,
    /// Hour 0..=23.
    pub hour: Option<u8>,
    /// Minute 0..=59.
    pub minute: Option<u8>,
    /// Second 0..=59.
    pub second: Option<u8>,
    /// Hundredths of a second 0..=99.
    pub hundredths: Option<u8>,
    /// Raw deviation: minutes of local time to UTC (`UTC - local`, so −120 for UTC+2).
    pub deviation: Option<i16>,
    /// Clock status bits (bit 7: daylight saving active).
    pub clock_status: Option<u8>,
}

fn spec(b: u8) -> Option<u8> {
    (b != 0xFF).then_some(b)
}

fn unspec(v: Option<u8>) -> u8 {
    v.unwrap_or(0xFF)
}

impl DateTime {
    /// Decodes the 12-byte date-time.
    pub fn from_bytes(b: &[u8; 12]) -> DateTime {
        let [y0, y1, month, day, weekday, hour, minute, second, hundredths, d0, d1, status] = *b;
        let year = u16::from_be_bytes([y0, y1]);
        let deviation = i16::from_be_bytes([d0, d1]);
        DateTime {
            year: (year != 0xFFFF).then_some(year),
            month: spec(month),
            day: spec(day),
            weekday: spec(weekday),
            hour: spec(hour),
            minute: spec(minute),
            second: spec(second),
            hundredths: spec(hundredths),
            deviation: (deviation != DEVIATION_NOT_SPECIFIED).then_some(deviation),
            clock_status: spec(status),
        }
    }

    /// Decodes the 5-byte date (year, month, day, weekday).
    pub fn from_date_bytes(b: &[u8; 5]) -> DateTime {
        let [y0, y1, month, day, weekday] = *b;
        Self::from_bytes(&[
            y0, y1, month, day, weekday, 0xFF, 0xFF, 0xFF, 0xFF, 0x80, 0x00, 0xFF,
        ])
    }

    /// Decodes the 4-byte time (hour, minute, second, hundredths).
    pub fn from_time_bytes(b: &[u8; 4]) -> DateTime {
        let [h, m, s, hs] = *b;
        Self::from_bytes(&[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, h, m, s, hs, 0x80, 0x00, 0xFF])
    }

    /// Decodes a date-time sent as an octet-string: exactly 12 bytes whose fields are in
    /// range (see [`DateTime::is_plausible`]).
    pub fn from_octet_string(b: &[u8]) -> Option<DateTime> {
        let arr = <&[u8; 12]>::try_from(b).ok()?;
        let dt = Self::from_bytes(arr);
        dt.is_plausible().then_some(dt)
    }

    /// Encodes back into the 12-byte form.
    pub fn to_bytes(&self) -> [u8; 12] {
        let [y0, y1] = self.year.unwrap_or(0xFFFF).to_be_bytes();
        let [d0, d1] = self
            .deviation
            .unwrap_or(DEVIATION_NOT_SPECIFIED)
            .to_be_bytes();
        [
            y0,
            y1,
            unspec(self.month),
            unspec(self.day),
            unspec(self.weekday),
            unspec(self.hour),
            unspec(self.minute),
            unspec(self.second),
            unspec(self.hundredths),
            d0,
            d1,
            unspec(self.clock_status),
        ]
    }

    /// Combines a date (5-byte form) and a time (4-byte form) sent as separate items.
    pub fn from_date_and_time(date: &DateTime, time: &DateTime) -> DateTime {
        DateTime {
            year: date.year,
            month: date.month,
            day: date.day,
            weekday: date.weekday,
            hour: time.hour,
            minute: time.minute,
            second: time.second,
            hundredths: time.hundredths,
            deviation: None,
            clock_status: None,
        }
    }

    /// True when every specified field is within its range (months and days may also be
    /// `0xFD`/`0xFE`, the weekday 0, the deviation within ±14 hours).
    pub fn is_plausible(&self) -> bool {
        let in_range = |v: Option<u8>, lo: u8, hi: u8| v.is_none_or(|v| (lo..=hi).contains(&v));
        let month_ok = self
            .month
            .is_none_or(|m| (1..=12).contains(&m) || m == 0xFD || m == 0xFE);
        let day_ok = self
            .day
            .is_none_or(|d| (1..=31).contains(&d) || d == 0xFD || d == 0xFE);
        month_ok
            && day_ok
            // Weekday 0 is outside the Blue Book range but Aidon meters send it.
            && in_range(self.weekday, 0, 7)
            && in_range(self.hour, 0, 23)
            && in_range(self.minute, 0, 59)
            && in_range(self.second, 0, 59)
            && in_range(self.hundredths, 0, 99)
            && self.deviation.is_none_or(|d| (-840..=840).contains(&d))
    }

    /// The UTC offset in minutes east of UTC (+120 for CEST), i.e. the negated
    /// deviation; `None` when not specified or out of range.
    pub fn offset_minutes_east(&self) -> Option<i16> {
        self.deviation
            .filter(|d| (-840..=840).contains(d))
            .map(|d| d.saturating_neg())
    }

    /// Whether the clock status says daylight saving time is active.
    pub fn is_dst(&self) -> Option<bool> {
        self.clock_status.map(|s| s & CLOCK_STATUS_DST != 0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use super::*;

    #[test]
    fn decodes_a_summer_time_stamp_with_negative_deviation() {
        // Netz NÖ document example: 2021-09-27 09:47:15, deviation FF88, status 80 (DST).
        let b = [
            0x07, 0xE5, 0x09, 0x1B, 0x01, 0x09, 0x2F, 0x0F, 0x00, 0xFF, 0x88, 0x80,
        ];
        let dt = DateTime::from_bytes(&b);
        assert_eq!(dt.year, Some(2021));
        assert_eq!((dt.month, dt.day, dt.weekday), (Some(9), Some(27), Some(1)));
        assert_eq!(
            (dt.hour, dt.minute, dt.second, dt.hundredths),
            (Some(9), Some(47), Some(15), Some(0))
        );
        assert_eq!(dt.deviation, Some(-120));
        assert_eq!(dt.offset_minutes_east(), Some(120));
        assert_eq!(dt.is_dst(), Some(true));
        assert!(dt.is_plausible());
        assert_eq!(dt.to_bytes(), b);
    }

    #[test]
    fn not_specified_fields_are_none() {
        // L+G E450: hundredths FF, deviation 8000, status 00.
        let b = [
            0x07, 0xE7, 0x03, 0x1C, 0x02, 0x13, 0x0B, 0x14, 0xFF, 0x80, 0x00, 0x00,
        ];
        let dt = DateTime::from_bytes(&b);
        assert_eq!(dt.hundredths, None);
        assert_eq!(dt.deviation, None);
        assert_eq!(dt.offset_minutes_east(), None);
        assert_eq!(dt.clock_status, Some(0));
        assert_eq!(dt.to_bytes(), b);
        let none = DateTime::from_bytes(&[0xFF; 12]);
        assert_eq!(none.year, None);
        assert_eq!(none.deviation, Some(-1));
    }

    #[test]
    fn octet_strings_that_are_not_date_times_are_rejected() {
        assert!(DateTime::from_octet_string(b"181220000009").is_none());
        assert!(DateTime::from_octet_string(&[0x07, 0xE5, 0x09]).is_none());
        let b = [
            0x07, 0xE6, 0x02, 0x04, 0x05, 0x10, 0x2B, 0x14, 0x00, 0xFF, 0xC4, 0x00,
        ];
        assert_eq!(
            DateTime::from_octet_string(&b)
                .unwrap()
                .offset_minutes_east(),
            Some(60)
        );
    }

    #[test]
    fn date_and_time_items_combine() {
        let date = DateTime::from_date_bytes(&[0x07, 0xE5, 0x03, 0x19, 0x04]);
        let time = DateTime::from_time_bytes(&[0x13, 0x01, 0x0E, 0x00]);
        let dt = DateTime::from_date_and_time(&date, &time);
        assert_eq!(
            (dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second),
            (Some(2021), Some(3), Some(25), Some(19), Some(1), Some(14))
        );
        assert_eq!(dt.deviation, None);
    }
}
