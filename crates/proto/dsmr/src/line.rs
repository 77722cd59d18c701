//! The lenient OBIS line grammar of a telegram body (DSMR 5.0.2 P1 §6.4, older versions alike).
//!
//! ```text
//! line         = id 1*group [CR] LF *continuation
//! id           = OBIS reduced id "A-B:C.D.E" (or any text without "(")
//! group        = "(" *(any but "(" and ")") ")"      (spaces between groups are tolerated)
//! continuation = 1*group [CR] LF                    (DSMR 2.2/3: the gas value on its own line)
//! ```
//!
//! Nothing here is an error: a line that does not follow the grammar is a [`Line::Unknown`], an
//! id that is not an OBIS code is kept as text ([`Object::id`]). All views borrow the telegram.

use crate::scan::find_any;
use crate::value::{decode_hex, Number, Timestamp};
use crate::Obis;

/// One value group `( … )`: its content without the parentheses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Group<'a>(&'a str);

impl<'a> Group<'a> {
    /// A group with this content (no parentheses).
    pub const fn new(content: &'a str) -> Self {
        Group(content)
    }

    /// The content exactly as sent, unit included (`000123.456*kWh`).
    pub const fn raw(&self) -> &'a str {
        self.0
    }

    /// The part before `*`: the value without its unit.
    pub fn value(&self) -> &'a str {
        self.0.split_once('*').map_or(self.0, |(v, _)| v)
    }

    /// The unit after `*` (`kWh`, `m3`), if the group has one.
    pub fn unit(&self) -> Option<&'a str> {
        self.0.split_once('*').map(|(_, u)| u)
    }

    /// The value as a decimal number, if it is one (unit or not).
    pub fn number(&self) -> Option<Number> {
        Number::parse(self.value())
    }

    /// A number with a non-empty unit: the DSMR quantity form `value*unit`.
    pub fn quantity(&self) -> Option<(Number, &'a str)> {
        let (value, unit) = self.0.split_once('*')?;
        if unit.is_empty() {
            return None;
        }
        Some((Number::parse(value)?, unit))
    }

    /// The value as a timestamp `YYMMDDhhmmssX`, if it is one.
    pub fn timestamp(&self) -> Option<Timestamp> {
        Timestamp::parse(self.0)
    }

    /// The value as an OBIS reference (`0-0:96.7.19` in the power failure log).
    pub fn obis(&self) -> Option<Obis> {
        Obis::parse(self.0)
    }

    /// The value decoded as hex text (`0-0:96.13.0`, equipment ids), if it is hex.
    pub fn hex_text(&self) -> Option<Vec<u8>> {
        decode_hex(self.0)
    }
}

/// The groups of an object, in order, across continuation lines.
#[derive(Clone, Debug)]
pub struct Groups<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Groups<'a> {
    type Item = Group<'a>;

    fn next(&mut self) -> Option<Group<'a>> {
        let (group, rest) = split_group(self.rest)?;
        self.rest = rest;
        Some(group)
    }
}

/// True for the spaces tolerated around groups.
const fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t')
}

/// Splits the first group off `text` (leading blanks and line breaks skipped). Byte scans only:
/// the delimiters are ASCII, so every cut is on a char boundary.
fn split_group(text: &str) -> Option<(Group<'_>, &str)> {
    let bytes = text.as_bytes();
    let open = bytes
        .iter()
        .position(|&b| !(is_blank(b) || b == b'\r' || b == b'\n'))?;
    if bytes.get(open) != Some(&b'(') {
        return None;
    }
    let start = open.checked_add(1)?;
    let len = bytes
        .get(start..)?
        .iter()
        .position(|&b| b == b')' || b == b'(')?;
    let close = start.checked_add(len)?;
    if bytes.get(close) != Some(&b')') {
        return None;
    }
    Some((
        Group(text.get(start..close)?),
        text.get(close.checked_add(1)?..)?,
    ))
}

/// Scans a line from `pos` (where its groups start) to its end in one pass. Returns whether
/// the rest of the line is one or more well-formed groups with only blanks between them, the
/// end of the line's text (before CR LF) and the start of the next line.
fn scan_groups(bytes: &[u8], pos: usize) -> (bool, usize, usize) {
    let mut i = pos;
    let mut inside = false;
    let mut well_formed = true;
    let mut any = false;
    let (text_end, next) = loop {
        match bytes.get(i) {
            None => break (i, i),
            Some(b'\n') => break (i, i.saturating_add(1)),
            Some(_) if inside => {
                // Jump to the end of the group (or the line break that cuts it).
                let rest = bytes.get(i..).unwrap_or_default();
                match find_any(rest, [b')', b'(', b'\n']) {
                    Some(j) => {
                        i = i.saturating_add(j);
                        match bytes.get(i) {
                            Some(b')') => inside = false,
                            Some(b'(') => well_formed = false,
                            _ => continue,
                        }
                    }
                    None => {
                        i = bytes.len();
                        continue;
                    }
                }
            }
            Some(b'(') => {
                inside = true;
                any = true;
            }
            Some(&b) if is_blank(b) || b == b'\r' => {}
            Some(_) => well_formed = false,
        }
        i = i.saturating_add(1);
    };
    let text_end = match text_end.checked_sub(1) {
        Some(before) if bytes.get(before) == Some(&b'\r') => before,
        _ => text_end,
    };
    (well_formed && any && !inside, text_end.max(pos), next)
}

/// Trims blanks (not line breaks) on both sides. Byte scans: blanks are ASCII, so both cuts
/// are on char boundaries.
fn trim_blanks(text: &str) -> &str {
    let bytes = text.as_bytes();
    let Some(start) = bytes.iter().position(|&b| !is_blank(b)) else {
        return "";
    };
    let end = bytes
        .iter()
        .rposition(|&b| !is_blank(b))
        .map_or(start, |i| i.saturating_add(1));
    text.get(start..end).unwrap_or_default()
}

/// A data object: an id and its value groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Object<'a> {
    id: &'a str,
    obis: Option<Obis>,
    groups: &'a str,
    raw: &'a str,
}

impl<'a> Object<'a> {
    /// The id as sent (`1-0:1.8.1`), without surrounding spaces.
    pub const fn id(&self) -> &'a str {
        self.id
    }

    /// The id as an OBIS code; `None` when it is some other text.
    pub const fn obis(&self) -> Option<Obis> {
        self.obis
    }

    /// The whole object as sent, continuation lines included (without the final line break).
    pub const fn raw(&self) -> &'a str {
        self.raw
    }

    /// The value groups in order.
    pub fn groups(&self) -> Groups<'a> {
        Groups { rest: self.groups }
    }

    /// The last group: the value of single-value objects and, by convention, of multi-value
    /// lines (the reading of `(timestamp)(value)` M-Bus lines, the gas value on the DSMR 2.2/3
    /// continuation line, the last entry of logs).
    pub fn value(&self) -> Option<Group<'a>> {
        self.groups().last()
    }

    /// The number of groups.
    pub fn group_count(&self) -> usize {
        self.groups().count()
    }

    /// For `(timestamp)(value)` objects (M-Bus channel readings `0-n:24.2.1`, maximum demand
    /// `1-0:1.6.0`): the capture time and the value group.
    pub fn captured(&self) -> Option<(Timestamp, Group<'a>)> {
        let mut groups = self.groups();
        let (time, value) = (groups.next()?, groups.next()?);
        if groups.next().is_some() {
            return None;
        }
        Some((time.timestamp()?, value))
    }

    /// The DSMR 2.2/3 M-Bus reading `0-n:24.3.0(TST)(ss)(pp)(n)(0-n:24.2.1)(unit)` followed by
    /// `(value)` on the next line: capture time (when it parses), value and unit.
    pub fn legacy_mbus(&self) -> Option<(Option<Timestamp>, Number, &'a str)> {
        let mut groups = self.groups();
        let time = groups.next()?.timestamp();
        let _status = groups.next()?;
        let _period = groups.next()?;
        let _count = groups.next()?;
        let _obis = groups.next()?.obis()?;
        let unit = groups.next()?.raw();
        let value = groups.next()?.number()?;
        if groups.next().is_some() {
            return None;
        }
        Some((time, value, unit))
    }

    /// For the power failure event log `1-0:99.97.0(n)(0-0:96.7.19)(end)(duration*s)…`: the
    /// entries. `None` for other objects.
    pub fn power_failures(&self) -> Option<PowerFailures<'a>> {
        if self.obis != Some(Obis::POWER_FAILURE_LOG) {
            return None;
        }
        let mut groups = self.groups();
        let count = groups.next()?.number();
        let _event = groups.next()?;
        Some(PowerFailures { count, groups })
    }
}

/// The entries of a power failure event log.
#[derive(Clone, Debug)]
pub struct PowerFailures<'a> {
    count: Option<Number>,
    groups: Groups<'a>,
}

impl PowerFailures<'_> {
    /// The number of entries the meter announces (the first group).
    pub fn announced(&self) -> Option<Number> {
        self.count
    }
}

/// One power failure: when it ended and how long it lasted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PowerFailure<'a> {
    /// The end of the failure (`None` when the group is not a valid timestamp).
    pub end: Option<Timestamp>,
    /// The duration group as sent (`0000002014*s`).
    pub duration: Group<'a>,
}

impl<'a> Iterator for PowerFailures<'a> {
    type Item = PowerFailure<'a>;

    fn next(&mut self) -> Option<PowerFailure<'a>> {
        let end = self.groups.next()?;
        let duration = self.groups.next()?;
        Some(PowerFailure {
            end: end.timestamp(),
            duration,
        })
    }
}

/// One logical line of a telegram body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// `id(group)…`, with continuation lines merged.
    Object(Object<'a>),
    /// Anything else, kept as sent (never an error).
    Unknown(&'a str),
}

/// The logical lines of a telegram body; empty lines are skipped.
#[derive(Clone, Debug)]
pub struct Lines<'a> {
    body: &'a str,
    pos: usize,
}

impl<'a> Lines<'a> {
    /// The lines of `body` (the text between the header line and `!`).
    pub const fn new(body: &'a str) -> Self {
        Lines { body, pos: 0 }
    }

    /// Continuation lines after an object: lines holding only groups. Returns the end of the
    /// last one's text, or `end` when there is none; advances past them.
    fn continuations(&mut self, mut end: usize) -> usize {
        let bytes = self.body.as_bytes();
        loop {
            let rest = bytes.get(self.pos..).unwrap_or_default();
            if rest.iter().find(|&&b| !is_blank(b)) != Some(&b'(') {
                return end;
            }
            let (well_formed, text_end, next) = scan_groups(bytes, self.pos);
            if !well_formed {
                return end;
            }
            end = text_end;
            self.pos = next;
        }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = Line<'a>;

    fn next(&mut self) -> Option<Line<'a>> {
        let bytes = self.body.as_bytes();
        loop {
            let start = self.pos;
            let rest = bytes.get(start..)?;
            if rest.is_empty() {
                return None;
            }
            let stop = find_any(rest, [b'(', b'\n']);
            let open = match stop.map(|i| (i, rest.get(i))) {
                Some((i, Some(b'('))) => start.checked_add(i)?,
                other => {
                    // A line without groups: blank, or unknown text.
                    let len = other.map_or(rest.len(), |(i, _)| i);
                    self.pos = start.checked_add(len)?.checked_add(1)?.min(bytes.len());
                    let text = self.body.get(start..start.checked_add(len)?)?;
                    let text = text.strip_suffix('\r').unwrap_or(text);
                    if text.bytes().all(is_blank) {
                        continue;
                    }
                    return Some(Line::Unknown(text));
                }
            };
            let (well_formed, text_end, next) = scan_groups(bytes, open);
            self.pos = next;
            let text = self.body.get(start..text_end)?;
            let id = trim_blanks(self.body.get(start..open)?);
            if id.is_empty() || !well_formed {
                return Some(Line::Unknown(text));
            }
            // DSMR 2.2/3 put the M-Bus value on the next line, as groups without an id.
            let end = self.continuations(text_end);
            return Some(Line::Object(Object {
                id,
                obis: Obis::parse(id),
                groups: self.body.get(open..end)?,
                raw: self.body.get(start..end)?,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn objects(body: &str) -> Vec<Object<'_>> {
        Lines::new(body)
            .filter_map(|l| match l {
                Line::Object(o) => Some(o),
                Line::Unknown(_) => None,
            })
            .collect()
    }

    #[test]
    fn splits_a_quantity_into_number_and_unit() {
        let o = objects("1-0:1.8.1(000123.456*kWh)\r\n")[0];
        assert_eq!(o.obis(), Some(Obis::new(1, 0, 1, 8, 1, 255)));
        let v = o.value().unwrap();
        assert_eq!(v.unit(), Some("kWh"));
        assert_eq!(
            v.quantity().unwrap().0,
            Number {
                mantissa: 123456,
                exponent: -3
            }
        );
    }

    #[test]
    fn reads_mbus_channel_lines_with_their_own_timestamp() {
        let o = objects("0-2:24.2.1(200426223001S)(00246.138*m3)\r\n")[0];
        assert_eq!(o.obis().unwrap().channel(), 2);
        let (time, value) = o.captured().unwrap();
        assert_eq!(time.to_string(), "2020-04-26T22:30:01+02:00");
        assert_eq!(value.raw(), "00246.138*m3");
    }

    #[test]
    fn merges_the_dsmr3_gas_value_on_the_next_line() {
        let body = "0-1:24.3.0(090212160000)(00)(60)(1)(0-1:24.2.1)(m3)\r\n(00001.001)\r\n0-1:24.4.0(1)\r\n";
        let all = objects(body);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].group_count(), 7);
        assert_eq!(all[0].value().unwrap().raw(), "00001.001");
        let (time, value, unit) = all[0].legacy_mbus().unwrap();
        assert_eq!(time.unwrap().year, 2009);
        assert_eq!((value.to_string().as_str(), unit), ("1.001", "m3"));
        assert_eq!(
            all[0].raw(),
            "0-1:24.3.0(090212160000)(00)(60)(1)(0-1:24.2.1)(m3)\r\n(00001.001)"
        );
        assert_eq!(all[1].obis(), Some(Obis::new(0, 1, 24, 4, 0, 255)));
    }

    #[test]
    fn reads_the_power_failure_log() {
        let o = objects("1-0:99.97.0(2)(0-0:96.7.19)(101208152415W)(0000000240*s)(101208151004W)(0000000301*s)\r\n")[0];
        let log = o.power_failures().unwrap();
        assert_eq!(
            log.announced(),
            Some(Number {
                mantissa: 2,
                exponent: 0
            })
        );
        let entries: Vec<_> = log.collect();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].end.unwrap().minute, 10);
        assert_eq!(entries[1].duration.quantity().unwrap().1, "s");
        let empty = objects("1-0:99.97.0(0)(0-0:96.7.19)\r\n")[0];
        assert_eq!(empty.power_failures().unwrap().count(), 0);
    }

    #[test]
    fn decodes_hex_text_messages() {
        let o = objects("0-0:96.13.0(303132333435363738)\r\n")[0];
        assert_eq!(o.value().unwrap().hex_text().unwrap(), b"012345678");
        let empty = objects("0-0:96.13.0()\r\n")[0];
        assert_eq!(empty.value().unwrap().raw(), "");
    }

    #[test]
    fn keeps_lines_outside_the_grammar_as_unknown_data() {
        let lines: Vec<_> = Lines::new("garbage\r\n1-0:1.8.1(12\r\n(orphan)\r\nX(1)\r\n").collect();
        assert_eq!(lines[0], Line::Unknown("garbage"));
        assert_eq!(lines[1], Line::Unknown("1-0:1.8.1(12"));
        assert_eq!(lines[2], Line::Unknown("(orphan)"));
        match lines[3] {
            Line::Object(o) => {
                assert_eq!((o.id(), o.obis()), ("X", None));
            }
            Line::Unknown(u) => panic!("expected an object, got {u:?}"),
        }
        assert_eq!(lines.len(), 4);
    }

    #[test]
    fn reports_unclosed_and_nested_groups_as_unknown() {
        let lines: Vec<_> =
            Lines::new("1-0:1.8.1(12\r\n1-0:1.8.2(1(2)\r\n1-0:1.8.3(5)x\r\n1-0:1.8.4(7)").collect();
        assert_eq!(
            lines[..3],
            [
                Line::Unknown("1-0:1.8.1(12"),
                Line::Unknown("1-0:1.8.2(1(2)"),
                Line::Unknown("1-0:1.8.3(5)x"),
            ]
        );
        assert!(matches!(lines[3], Line::Object(o) if o.raw() == "1-0:1.8.4(7)"));
        assert_eq!(lines.len(), 4);
        let last: Vec<_> = Lines::new("0-0:96.13.0(4142").collect();
        assert_eq!(last, [Line::Unknown("0-0:96.13.0(4142")]);
    }

    #[test]
    fn trims_only_spaces_and_tabs_around_ids() {
        for (text, trimmed) in [
            ("", ""),
            (" \t ", ""),
            ("1-0:1.8.1", "1-0:1.8.1"),
            (" \t1-0:1.8.1\t ", "1-0:1.8.1"),
            ("\u{a0}x y\r", "\u{a0}x y\r"),
            ("  é ", "é"),
        ] {
            assert_eq!(trim_blanks(text), trimmed, "{text:?}");
            assert_eq!(trim_blanks(text), text.trim_matches([' ', '\t']));
        }
    }

    #[test]
    fn tolerates_lf_only_line_ends_and_spaces_between_groups() {
        let all = objects("1-0:1.6.0 (200509134558S) (02.589*kW)\n0-0:96.14.0(0001)");
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].value().unwrap().raw(), "02.589*kW");
        assert_eq!(all[1].value().unwrap().raw(), "0001");
    }
}
