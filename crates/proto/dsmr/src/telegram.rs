//! A complete P1 telegram: check, then parse into a borrowed, CRC-verified view.
//!
//! DSMR 5.0.2 P1 §6.2: `/XXXZ Ident CR LF CR LF Data ! CRC CR LF`. DSMR 2.2 and 3 have no CRC
//! (`!` is followed directly by CR LF); those telegrams are accepted as
//! [`Checksum::Absent`]. The CRC may be written with fewer than four digits (`!B9F`).

use crate::line::{Line, Lines, Object};
use crate::scan::find_any;
use crate::value::Timestamp;
use crate::{crc, Error, Obis};

/// What guarded the telegram's integrity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checksum {
    /// The CRC-16 after `!` matched the computed one.
    Verified(u16),
    /// No CRC was sent (DSMR 2.2/3): the telegram is unchecked.
    Absent,
}

/// A borrowed view of one complete telegram whose CRC (when present) has been verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Telegram<'a> {
    header: &'a str,
    body: &'a str,
    checksum: Checksum,
    len: usize,
}

/// Where a telegram ends: the CRC it carries and the offset after its line break.
pub(crate) struct Tail {
    pub(crate) crc: Option<u16>,
    pub(crate) end: usize,
}

/// Reads the checksum line after the `!` at `bang`: 0 to 4 hex digits, then CR LF (or LF).
/// With `at_end`, the input may stop right after the digits or the CR.
pub(crate) fn tail(bytes: &[u8], bang: usize, at_end: bool) -> Result<Tail, Error> {
    let mut pos = bang.saturating_add(1);
    let mut crc: u16 = 0;
    let mut digits: u8 = 0;
    while let Some(&b) = bytes.get(pos) {
        match char::from(b).to_digit(16) {
            Some(n) if digits < 4 => {
                crc = crc.wrapping_shl(4) | u16::try_from(n).unwrap_or(0);
                digits = digits.saturating_add(1);
                pos = pos.saturating_add(1);
            }
            Some(_) => return Err(Error::BadCrcLine { offset: pos }),
            None => break,
        }
    }
    let crc = (digits > 0).then_some(crc);
    let end_here = |end: usize| {
        if at_end {
            Ok(Tail { crc, end })
        } else {
            Err(Error::Incomplete)
        }
    };
    match bytes.get(pos) {
        None => return end_here(pos),
        Some(b'\n') => {
            return Ok(Tail {
                crc,
                end: pos.saturating_add(1),
            })
        }
        Some(b'\r') => pos = pos.saturating_add(1),
        Some(_) => return Err(Error::BadCrcLine { offset: pos }),
    }
    match bytes.get(pos) {
        None => end_here(pos),
        Some(b'\n') => Ok(Tail {
            crc,
            end: pos.saturating_add(1),
        }),
        Some(_) => Err(Error::BadCrcLine { offset: pos }),
    }
}

/// Finds the `!` that ends the data of the telegram starting at `bytes[0] == '/'`, from
/// `from` on. `Err(Truncated)` when a new `/` comes first.
pub(crate) fn find_bang(bytes: &[u8], from: usize) -> Result<Option<usize>, Error> {
    let rest = bytes.get(from..).unwrap_or_default();
    match find_any(rest, [b'!', b'/']) {
        Some(i) => {
            let at = from.saturating_add(i);
            if bytes.get(at) == Some(&b'/') {
                Err(Error::Truncated { len: at })
            } else {
                Ok(Some(at))
            }
        }
        None => Ok(None),
    }
}

impl<'a> Telegram<'a> {
    /// Checks whether `bytes` starts with a complete telegram and returns its length, the
    /// checksum line's CR LF included. Cheap: no CRC, no text check.
    ///
    /// # Errors
    /// - [`Error::Incomplete`]: a prefix of a telegram, more bytes needed;
    /// - [`Error::NoStart`]: `bytes` does not start with `/`;
    /// - [`Error::Truncated`]: a new `/` comes before `!`;
    /// - [`Error::BadCrcLine`]: the line after `!` is not a checksum.
    pub fn check(bytes: &[u8]) -> Result<usize, Error> {
        match bytes.first() {
            None => return Err(Error::Incomplete),
            Some(b'/') => {}
            Some(_) => return Err(Error::NoStart),
        }
        let bang = find_bang(bytes, 1)?.ok_or(Error::Incomplete)?;
        Ok(tail(bytes, bang, false)?.end)
    }

    /// Parses one complete telegram (from `/` through the checksum line; its final CR LF may be
    /// missing) and verifies its CRC.
    ///
    /// # Errors
    /// The errors of [`check`](Self::check) (`Incomplete` when there is no `!`), bytes after the
    /// checksum line ([`Error::BadCrcLine`]), [`Error::BadChecksum`], and [`Error::NotText`]
    /// for bytes that are not UTF-8 text.
    pub fn parse(bytes: &'a [u8]) -> Result<Telegram<'a>, Error> {
        match bytes.first() {
            None => return Err(Error::Incomplete),
            Some(b'/') => {}
            Some(_) => return Err(Error::NoStart),
        }
        let bang = find_bang(bytes, 1)?.ok_or(Error::Incomplete)?;
        let tail = tail(bytes, bang, true)?;
        if tail.end != bytes.len() {
            return Err(Error::BadCrcLine { offset: tail.end });
        }
        let signed = bytes.get(..=bang).ok_or(Error::Incomplete)?;
        let checksum = match tail.crc {
            Some(given) => {
                crc::verify(signed, given)?;
                Checksum::Verified(given)
            }
            None => Checksum::Absent,
        };
        let data = bytes.get(1..bang).ok_or(Error::Incomplete)?;
        let text = core::str::from_utf8(data).map_err(|e| Error::NotText {
            offset: e.valid_up_to().saturating_add(1),
        })?;
        let (header, body) = match text.find('\n') {
            Some(nl) => (
                text.get(..nl).unwrap_or_default(),
                text.get(nl.saturating_add(1)..).unwrap_or_default(),
            ),
            None => (text, ""),
        };
        Ok(Telegram {
            header: header.strip_suffix('\r').unwrap_or(header),
            body,
            checksum,
            len: bytes.len(),
        })
    }

    /// The identification line without `/` (`ISK5\2M550T-1012`): three letters of manufacturer,
    /// a baud rate digit, the meter type.
    pub const fn header(&self) -> &'a str {
        self.header
    }

    /// The text between the identification line and `!`.
    pub const fn body(&self) -> &'a str {
        self.body
    }

    /// How the telegram was checked.
    pub const fn checksum(&self) -> Checksum {
        self.checksum
    }

    /// Length in bytes of the parsed input.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Always false: a telegram holds at least `/` and `!`.
    pub const fn is_empty(&self) -> bool {
        false
    }

    /// The logical lines of the body.
    pub fn lines(&self) -> Lines<'a> {
        Lines::new(self.body)
    }

    /// The data objects of the body, unknown lines skipped.
    pub fn objects(&self) -> impl Iterator<Item = Object<'a>> + 'a {
        self.lines().filter_map(|line| match line {
            Line::Object(o) => Some(o),
            Line::Unknown(_) => None,
        })
    }

    /// The first object with this OBIS code.
    pub fn object(&self, obis: Obis) -> Option<Object<'a>> {
        self.objects().find(|o| o.obis() == Some(obis))
    }

    /// The meter clock `0-0:1.0.0`, when present and valid.
    pub fn clock(&self) -> Option<Timestamp> {
        self.object(Obis::CLOCK)?.value()?.timestamp()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, clippy::unwrap_used)]
    use super::*;

    const V5: &[u8] = b"/ISK5\\2M550T-1012\r\n\r\n1-3:0.2.8(50)\r\n0-0:1.0.0(200426223325S)\r\n1-0:1.8.1(002130.115*kWh)\r\n!";

    fn with_crc(data: &[u8]) -> Vec<u8> {
        let mut t = data.to_vec();
        t.extend_from_slice(format!("{:04X}\r\n", crc::crc16(data)).as_bytes());
        t
    }

    #[test]
    fn parses_a_telegram_and_verifies_its_crc() {
        let bytes = with_crc(V5);
        assert_eq!(Telegram::check(&bytes), Ok(bytes.len()));
        let t = Telegram::parse(&bytes).unwrap();
        assert_eq!(t.header(), "ISK5\\2M550T-1012");
        assert!(matches!(t.checksum(), Checksum::Verified(_)));
        assert_eq!(t.objects().count(), 3);
        assert_eq!(t.clock().unwrap().to_string(), "2020-04-26T22:33:25+02:00");
    }

    #[test]
    fn rejects_telegram_with_bad_crc() {
        let mut bytes = with_crc(V5);
        let pos = bytes.iter().position(|&b| b == b'8').unwrap();
        bytes[pos] = b'9';
        assert!(matches!(
            Telegram::parse(&bytes),
            Err(Error::BadChecksum { .. })
        ));
    }

    #[test]
    fn accepts_dsmr3_telegrams_without_crc_as_unchecked() {
        let t = Telegram::parse(b"/ISk5\\2MT382-1000\r\n\r\n1-0:1.8.1(12345.678*kWh)\r\n!\r\n")
            .unwrap();
        assert_eq!(t.checksum(), Checksum::Absent);
        assert_eq!(t.objects().count(), 1);
    }

    #[test]
    fn accepts_an_unpadded_three_digit_crc() {
        let data = b"/NWA-WARMTELINK\r\n\r\n1-3:0.2.8(50)\r\n0-0:1.0.0(260215200523W)\r\n0-0:96.1.1(ADC3100000158491)\r\n0-0:96.13.1()\r\n0-0:96.13.0()\r\n0-1:24.1.0(004)\r\n0-1:96.1.0(621848012D2C0B0C)\r\n0-1:24.2.1(260215200523W)(240.860*GJ)\r\n!";
        assert_eq!(crc::crc16(data), 0x0B9F);
        let mut bytes = data.to_vec();
        bytes.extend_from_slice(b"B9F\r\n");
        assert_eq!(
            Telegram::parse(&bytes).unwrap().checksum(),
            Checksum::Verified(0x0B9F)
        );
    }

    #[test]
    fn check_says_incomplete_until_the_crc_line_ends() {
        let bytes = with_crc(V5);
        for cut in 0..bytes.len() {
            assert_eq!(
                Telegram::check(&bytes[..cut]),
                Err(Error::Incomplete),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn parse_accepts_a_missing_final_line_break() {
        let bytes = with_crc(V5);
        assert!(Telegram::parse(&bytes[..bytes.len() - 2]).is_ok());
        assert!(Telegram::parse(&bytes[..bytes.len() - 1]).is_ok());
    }

    #[test]
    fn reports_a_new_start_before_the_end_as_truncated() {
        assert_eq!(
            Telegram::check(b"/AB5\r\n\r\n1-0:1.8.1(1*kWh)\r\n/CD5\r\n!\r\n"),
            Err(Error::Truncated { len: 26 })
        );
    }

    #[test]
    fn rejects_a_checksum_line_that_is_not_hex() {
        assert_eq!(
            Telegram::check(b"/A\r\n!12G4\r\n"),
            Err(Error::BadCrcLine { offset: 7 })
        );
        assert_eq!(
            Telegram::check(b"/A\r\n!12345\r\n"),
            Err(Error::BadCrcLine { offset: 9 })
        );
        assert_eq!(
            Telegram::check(b"/A\r\n!12\rX"),
            Err(Error::BadCrcLine { offset: 8 })
        );
        assert_eq!(
            Telegram::check(b"/A\r\n!12\r1"),
            Err(Error::BadCrcLine { offset: 8 })
        );
        assert_eq!(
            Telegram::parse(b"/A\r\n!\r\nxx"),
            Err(Error::BadCrcLine { offset: 7 })
        );
    }

    #[test]
    fn rejects_bytes_that_are_not_text_with_their_offset() {
        let mut data = b"/AB5\r\n\r\n1-0:1.8.1(1*kWh)\r\n!".to_vec();
        data[10] = 0xFF;
        let mut bytes = data.clone();
        bytes.extend_from_slice(format!("{:04X}\r\n", crc::crc16(&data)).as_bytes());
        assert_eq!(Telegram::parse(&bytes), Err(Error::NotText { offset: 10 }));
    }
}
