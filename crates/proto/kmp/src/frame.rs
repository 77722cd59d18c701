//! KMP frames: physical framing, the data-link CRC, and the GetRegister request and response.
//!
//! Kamstrup KMP §3: a frame is a start byte (`80` to the meter, `40` from the meter), then,
//! byte-stuffed, the destination address, the command id (CID), the data and a CRC-16/XMODEM
//! over address..data, then the stop byte `0D`.
//!
//! GetRegister (CID `10`, §6.2.4):
//! - request data: the number of registers `n` (1..=8), then `n` register ids, big-endian u16;
//! - response data: for each register the meter knows, `id (u16 BE) | unit | len | SIEX |
//!   mantissa[len]` (§4.2). Registers the meter does not know are left out of the response.
//!
//! Decoding is check → parse: [`check`] finds the end of a buffered frame without allocating,
//! [`Frame::parse`] un-stuffs and verifies the CRC, [`Response::parse`] and [`Request::parse`]
//! read the application data. Nothing here panics on any input.

use crate::value::{Calendar, Number};
use crate::{crc, stuffing, Error, Unit, ValueError};

/// Start byte of a frame sent to the meter.
pub const START_TO_METER: u8 = 0x80;
/// Start byte of a frame sent by the meter.
pub const START_FROM_METER: u8 = 0x40;
/// Stop byte of every frame.
pub const STOP: u8 = 0x0D;
/// The single-byte acknowledgement some commands get (not GetRegister).
pub const ACK: u8 = 0x06;
/// Destination address of a heat meter (Kamstrup "HEAT_METER"), used by every Multical.
pub const HEAT_METER: u8 = 0x3F;
/// Command id GetRegister.
pub const GET_REGISTER: u8 = 0x10;
/// Most registers one GetRegister request may ask for.
pub const MAX_REGISTERS: usize = 8;
/// Longest frame [`check`] accepts, start and stop byte included. A response with 8 registers
/// of 16-byte mantissas, fully stuffed, is 2 × (2 + 8 × 21 + 2) + 2 = 346 bytes; real ones are
/// under 100.
pub const MAX_FRAME: usize = 512;

/// Address, CID and CRC: the minimum between start and stop byte.
const MIN_BODY: usize = 4;

/// Which way a frame goes, from its start byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `80`: gateway to meter.
    ToMeter,
    /// `40`: meter to gateway.
    FromMeter,
}

impl Direction {
    /// The start byte of this direction.
    pub fn start_byte(self) -> u8 {
        match self {
            Direction::ToMeter => START_TO_METER,
            Direction::FromMeter => START_FROM_METER,
        }
    }
}

/// Finds the end of the frame at the start of `buf`, which must begin with `start`.
///
/// Returns the length of the frame including the stop byte. Cheap: no allocation, no CRC.
///
/// # Errors
/// - [`Error::Incomplete`]: no stop byte yet (wait for more bytes);
/// - [`Error::BadStart`]: `buf` does not begin with `start`;
/// - [`Error::Truncated`]: a start byte of either direction comes before the stop byte;
/// - [`Error::TooLong`]: no stop byte within [`MAX_FRAME`] bytes.
pub fn check(buf: &[u8], start: u8) -> Result<usize, Error> {
    match buf.first() {
        None => return Err(Error::Incomplete),
        Some(&b) if b != start => {
            return Err(Error::BadStart {
                expected: start,
                found: b,
            })
        }
        Some(_) => {}
    }
    for (i, &b) in buf
        .iter()
        .enumerate()
        .skip(1)
        .take(MAX_FRAME.saturating_sub(1))
    {
        match b {
            STOP => return Ok(i.saturating_add(1)),
            // Reserved bytes never appear stuffed inside a frame, so a start byte here means
            // the frame was cut off (a lost stop byte, a restarted meter, a line glitch).
            START_FROM_METER | START_TO_METER => return Err(Error::Truncated { len: i }),
            _ => {}
        }
    }
    if buf.len() >= MAX_FRAME {
        Err(Error::TooLong { max: MAX_FRAME })
    } else {
        Err(Error::Incomplete)
    }
}

/// A frame with a verified CRC: address, command id and application data, un-stuffed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Which way it goes.
    pub direction: Direction,
    /// Destination address (`3F` for heat meters).
    pub address: u8,
    /// Command id (`10` for GetRegister).
    pub cid: u8,
    /// The data after the command id, CRC removed.
    pub data: Vec<u8>,
}

impl Frame {
    /// Parses one whole frame (start byte to stop byte, as [`check`] delimits it).
    ///
    /// # Errors
    /// Framing errors ([`Error::BadStart`], a missing stop byte as [`Error::Incomplete`],
    /// stuffing errors, [`Error::TooShort`]) and [`Error::BadCrc`].
    pub fn parse(bytes: &[u8]) -> Result<Frame, Error> {
        let direction = match bytes.first() {
            Some(&START_FROM_METER) => Direction::FromMeter,
            Some(&START_TO_METER) => Direction::ToMeter,
            Some(&found) => {
                return Err(Error::BadStart {
                    expected: START_FROM_METER,
                    found,
                })
            }
            None => return Err(Error::Incomplete),
        };
        let inner = match bytes.split_last() {
            Some((&STOP, rest)) if !rest.is_empty() => rest.get(1..).unwrap_or_default(),
            _ => return Err(Error::Incomplete),
        };
        let body = stuffing::unstuff(inner, 1)?;
        let Some((rest, crc_bytes)) = body.split_last_chunk::<2>() else {
            return Err(Error::TooShort {
                len: body.len(),
                min: MIN_BODY,
            });
        };
        let (address, cid, data) = match rest {
            [address, cid, data @ ..] => (*address, *cid, data),
            _ => {
                return Err(Error::TooShort {
                    len: body.len(),
                    min: MIN_BODY,
                })
            }
        };
        crc::check(rest, u16::from_be_bytes(*crc_bytes))?;
        Ok(Frame {
            direction,
            address,
            cid,
            data: data.to_vec(),
        })
    }

    /// The frame on the wire: start byte, stuffed address, CID, data and CRC, stop byte.
    pub fn emit(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(self.data.len().saturating_add(4));
        body.push(self.address);
        body.push(self.cid);
        body.extend_from_slice(&self.data);
        let crc = crc::crc16(&body);
        body.extend_from_slice(&crc.to_be_bytes());
        let mut out = Vec::with_capacity(body.len().saturating_mul(2).saturating_add(2));
        out.push(self.direction.start_byte());
        stuffing::stuff_into(&body, &mut out);
        out.push(STOP);
        out
    }
}

/// A GetRegister request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Destination address.
    pub address: u8,
    /// Register ids, 1 to [`MAX_REGISTERS`].
    pub registers: Vec<u16>,
}

impl Request {
    /// A request for `registers` at `address`.
    ///
    /// # Errors
    /// [`Error::RegisterCount`] for no register or more than [`MAX_REGISTERS`].
    pub fn new(address: u8, registers: &[u16]) -> Result<Request, Error> {
        if registers.is_empty() || registers.len() > MAX_REGISTERS {
            return Err(Error::RegisterCount {
                count: registers.len(),
            });
        }
        Ok(Request {
            address,
            registers: registers.to_vec(),
        })
    }

    /// Reads a GetRegister request from a parsed frame (for meter simulators and sniffers).
    ///
    /// # Errors
    /// [`Error::UnexpectedCommand`], [`Error::RegisterCount`], [`Error::RequestLength`].
    pub fn parse(frame: &Frame) -> Result<Request, Error> {
        if frame.cid != GET_REGISTER {
            return Err(Error::UnexpectedCommand { found: frame.cid });
        }
        let Some((&count, ids)) = frame.data.split_first() else {
            return Err(Error::RegisterCount { count: 0 });
        };
        if count == 0 || usize::from(count) > MAX_REGISTERS {
            return Err(Error::RegisterCount {
                count: usize::from(count),
            });
        }
        if ids.len() != usize::from(count).saturating_mul(2) {
            return Err(Error::RequestLength {
                count,
                id_bytes: ids.len(),
            });
        }
        let registers = ids
            .chunks_exact(2)
            .map(|c| match c {
                [hi, lo] => u16::from_be_bytes([*hi, *lo]),
                _ => 0,
            })
            .collect();
        Ok(Request {
            address: frame.address,
            registers,
        })
    }

    /// The request as a frame.
    pub fn to_frame(&self) -> Frame {
        let mut data = Vec::with_capacity(self.registers.len().saturating_mul(2).saturating_add(1));
        data.push(u8::try_from(self.registers.len()).unwrap_or(u8::MAX));
        for r in &self.registers {
            data.extend_from_slice(&r.to_be_bytes());
        }
        Frame {
            direction: Direction::ToMeter,
            address: self.address,
            cid: GET_REGISTER,
            data,
        }
    }

    /// The request's bytes on the wire.
    pub fn emit(&self) -> Vec<u8> {
        self.to_frame().emit()
    }
}

/// One register of a GetRegister response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Register {
    /// Register id.
    pub id: u16,
    /// The unit byte.
    pub unit: Unit,
    /// The sign/exponent byte.
    pub siex: u8,
    /// The mantissa bytes as sent, big-endian.
    pub mantissa: Vec<u8>,
}

impl Register {
    /// A register holding `value`, its mantissa `len` bytes long (real meters send 4).
    /// `None` when the value does not fit (see [`Number::to_siex`]).
    pub fn new(id: u16, unit: Unit, value: Number, len: u8) -> Option<Register> {
        let (siex, mantissa) = value.to_siex(len)?;
        Some(Register {
            id,
            unit,
            siex,
            mantissa,
        })
    }

    /// The exact value.
    ///
    /// # Errors
    /// [`ValueError::MantissaTooLarge`] when the mantissa does not fit 127 bits.
    pub fn number(&self) -> Result<Number, ValueError> {
        Number::from_siex(self.siex, &self.mantissa)
    }

    /// For the date and time units (`hh:mm:ss`, `yy:mm:dd`, `yyyy:mm:dd`, `mm:dd`): the value's
    /// digits read as a date or time. `None` for other units, and for numbers that are not a
    /// valid date or time (meters send 0 for "never").
    pub fn calendar(&self) -> Option<Calendar> {
        let n = self.number().ok()?.to_u64()?;
        match self.unit {
            Unit::HhMmSs => Calendar::time_hhmmss(n),
            Unit::YyMmDd => Calendar::date_yymmdd(n),
            Unit::YyyyMmDd => Calendar::date_yyyymmdd(n),
            Unit::MmDd => Calendar::month_day(n),
            _ => None,
        }
    }

    fn emit_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.to_be_bytes());
        out.push(self.unit.code());
        out.push(u8::try_from(self.mantissa.len()).unwrap_or(u8::MAX));
        out.push(self.siex);
        let len = self.mantissa.len().min(usize::from(u8::MAX));
        out.extend(self.mantissa.iter().take(len));
    }
}

/// A GetRegister response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The address the meter answered for.
    pub address: u8,
    /// The registers, in the order sent.
    pub registers: Vec<Register>,
}

/// Bytes of a register record before the mantissa: id, unit, length, SIEX.
const RECORD_HEAD: usize = 5;

impl Response {
    /// Reads a GetRegister response from a parsed frame.
    ///
    /// # Errors
    /// [`Error::UnexpectedCommand`] when the CID is not GetRegister, [`Error::RecordTruncated`]
    /// when a register record runs past the end of the data.
    pub fn parse(frame: &Frame) -> Result<Response, Error> {
        if frame.cid != GET_REGISTER {
            return Err(Error::UnexpectedCommand { found: frame.cid });
        }
        let mut registers = Vec::new();
        let mut rest = frame.data.as_slice();
        let mut offset = 0usize;
        while !rest.is_empty() {
            let Some((head, after)) = rest.split_first_chunk::<RECORD_HEAD>() else {
                return Err(Error::RecordTruncated {
                    offset,
                    needed: RECORD_HEAD,
                    available: rest.len(),
                });
            };
            let [hi, lo, unit, len, siex] = *head;
            let len = usize::from(len);
            let Some((mantissa, next)) = after.split_at_checked(len) else {
                return Err(Error::RecordTruncated {
                    offset,
                    needed: RECORD_HEAD.saturating_add(len),
                    available: rest.len(),
                });
            };
            registers.push(Register {
                id: u16::from_be_bytes([hi, lo]),
                unit: Unit::from_code(unit),
                siex,
                mantissa: mantissa.to_vec(),
            });
            offset = offset.saturating_add(RECORD_HEAD).saturating_add(len);
            rest = next;
        }
        Ok(Response {
            address: frame.address,
            registers,
        })
    }

    /// Parses a whole response frame: [`Frame::parse`], a check that it comes from the meter,
    /// then [`Response::parse`].
    ///
    /// # Errors
    /// As [`Frame::parse`] and [`Response::parse`]; [`Error::BadStart`] for a request frame.
    pub fn parse_bytes(bytes: &[u8]) -> Result<Response, Error> {
        let frame = Frame::parse(bytes)?;
        if frame.direction != Direction::FromMeter {
            return Err(Error::BadStart {
                expected: START_FROM_METER,
                found: START_TO_METER,
            });
        }
        Response::parse(&frame)
    }

    /// The response as a frame.
    pub fn to_frame(&self) -> Frame {
        let mut data = Vec::new();
        for r in &self.registers {
            r.emit_into(&mut data);
        }
        Frame {
            direction: Direction::FromMeter,
            address: self.address,
            cid: GET_REGISTER,
            data,
        }
    }

    /// The response's bytes on the wire.
    pub fn emit(&self) -> Vec<u8> {
        self.to_frame().emit()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    #[test]
    fn builds_the_register_60_request_of_the_predecessors() {
        let req = Request::new(HEAT_METER, &[60]).unwrap();
        assert_eq!(req.emit(), unhex("80 3F 10 01 00 3C B2 5F 0D"));
        assert_eq!(
            Request::new(HEAT_METER, &[1004]).unwrap().emit(),
            unhex("80 3F 10 01 03 EC 2C 71 0D")
        );
    }

    #[test]
    fn builds_a_multi_register_request() {
        let req = Request::new(HEAT_METER, &[60, 80, 86, 87, 89, 74, 68, 1004]).unwrap();
        let bytes = req.emit();
        let frame = Frame::parse(&bytes).unwrap();
        assert_eq!(frame.direction, Direction::ToMeter);
        assert_eq!(frame.data[0], 8);
        assert_eq!(Request::parse(&frame).unwrap(), req);
    }

    #[test]
    fn refuses_requests_for_no_or_too_many_registers() {
        assert_eq!(
            Request::new(HEAT_METER, &[]),
            Err(Error::RegisterCount { count: 0 })
        );
        assert_eq!(
            Request::new(HEAT_METER, &[1; 9]),
            Err(Error::RegisterCount { count: 9 })
        );
    }

    #[test]
    fn stuffs_a_crc_byte_that_is_reserved() {
        // Register 0x0040 puts a reserved byte into the data.
        let bytes = Request::new(HEAT_METER, &[0x40]).unwrap().emit();
        assert!(bytes[1..bytes.len() - 1]
            .iter()
            .all(|&b| b == stuffing::ESCAPE || !stuffing::is_reserved(b)));
        let frame = Frame::parse(&bytes).unwrap();
        assert_eq!(Request::parse(&frame).unwrap().registers, [0x40]);
    }

    #[test]
    fn decodes_a_real_heat_energy_response() {
        let r =
            Response::parse_bytes(&unhex("40 3F 10 00 3C 03 04 43 00 00 D6 DE 03 22 0D")).unwrap();
        assert_eq!(r.address, HEAT_METER);
        assert_eq!(r.registers.len(), 1);
        let reg = &r.registers[0];
        assert_eq!(reg.id, 60);
        assert_eq!(reg.unit, Unit::MWh);
        assert_eq!(reg.number().unwrap().to_string(), "55.006");
    }

    #[test]
    fn rejects_a_response_with_a_bad_crc() {
        let mut bytes = unhex("40 3F 10 00 3C 03 04 43 00 00 D6 DE 03 22 0D");
        bytes[10] ^= 0x01;
        assert!(matches!(
            Response::parse_bytes(&bytes),
            Err(Error::BadCrc {
                received: 0x0322,
                ..
            })
        ));
    }

    #[test]
    fn rejects_a_truncated_register_record() {
        // A record that claims 4 mantissa bytes but has 2, with a correct CRC.
        let frame = Frame {
            direction: Direction::FromMeter,
            address: HEAT_METER,
            cid: GET_REGISTER,
            data: vec![0x00, 0x3C, 0x03, 0x04, 0x43, 0x00, 0x00],
        };
        assert_eq!(
            Response::parse(&Frame::parse(&frame.emit()).unwrap()),
            Err(Error::RecordTruncated {
                offset: 0,
                needed: 9,
                available: 7
            })
        );
        let frame = Frame {
            data: vec![0x00, 0x3C, 0x03],
            ..frame
        };
        assert_eq!(
            Response::parse(&frame),
            Err(Error::RecordTruncated {
                offset: 0,
                needed: 5,
                available: 3
            })
        );
    }

    #[test]
    fn rejects_other_commands_and_short_frames() {
        let frame = Frame {
            direction: Direction::FromMeter,
            address: HEAT_METER,
            cid: 0x01,
            data: vec![1, 2, 3, 4],
        };
        assert_eq!(
            Response::parse(&Frame::parse(&frame.emit()).unwrap()),
            Err(Error::UnexpectedCommand { found: 0x01 })
        );
        assert_eq!(
            Frame::parse(&unhex("40 3F 10 00 0D")),
            Err(Error::TooShort { len: 3, min: 4 })
        );
        assert_eq!(Frame::parse(&unhex("40 3F 10 00")), Err(Error::Incomplete));
        assert_eq!(
            Frame::parse(&unhex("0D")),
            Err(Error::BadStart {
                expected: 0x40,
                found: 0x0D
            })
        );
        assert_eq!(Frame::parse(&[]), Err(Error::Incomplete));
    }

    #[test]
    fn an_empty_response_means_no_register_was_known() {
        let r = Response {
            address: HEAT_METER,
            registers: vec![],
        };
        let bytes = r.emit();
        assert_eq!(Response::parse_bytes(&bytes).unwrap(), r);
    }

    #[test]
    fn check_finds_the_stop_byte_or_says_why_not() {
        let bytes = unhex("40 3F 10 00 3C 03 04 43 00 00 D6 DE 03 22 0D 80");
        assert_eq!(check(&bytes, START_FROM_METER), Ok(15));
        assert_eq!(
            check(&bytes[..10], START_FROM_METER),
            Err(Error::Incomplete)
        );
        assert_eq!(
            check(&unhex("40 3F 10 40 3F"), START_FROM_METER),
            Err(Error::Truncated { len: 3 })
        );
        assert_eq!(
            check(&bytes, START_TO_METER),
            Err(Error::BadStart {
                expected: 0x80,
                found: 0x40
            })
        );
        let long = vec![0x40; 1]
            .into_iter()
            .chain(vec![0x11; MAX_FRAME])
            .collect::<Vec<_>>();
        assert_eq!(
            check(&long, START_FROM_METER),
            Err(Error::TooLong { max: MAX_FRAME })
        );
    }

    #[test]
    fn response_round_trips_through_emit_and_parse() {
        let r = Response {
            address: HEAT_METER,
            registers: vec![
                Register::new(
                    86,
                    Unit::DegC,
                    Number {
                        mantissa: 5365,
                        exponent: -2,
                    },
                    4,
                )
                .unwrap(),
                Register::new(
                    1003,
                    Unit::YyMmDd,
                    Number {
                        mantissa: 240315,
                        exponent: 0,
                    },
                    4,
                )
                .unwrap(),
            ],
        };
        let parsed = Response::parse_bytes(&r.emit()).unwrap();
        assert_eq!(parsed, r);
        assert_eq!(
            parsed.registers[1].calendar().unwrap().to_string(),
            "2024-03-15"
        );
        assert_eq!(parsed.registers[0].calendar(), None);
    }
}
