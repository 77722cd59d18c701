//! A stream framer: bytes in any chunking go in, complete frames of one direction come out.
//!
//! Everything before a start byte of the wanted direction is skipped. Because reserved bytes
//! are always stuffed inside frames (Kamstrup KMP §3.1), this skips exactly the bytes that
//! cannot belong to a wanted frame: an optical head's echo of the request (`80 … 0D`, see
//! bsdphk/PyKamstrup#6 and #8), a lone ACK `06`, line noise. The buffer is bounded by
//! [`MAX_FRAME`](crate::MAX_FRAME).

use crate::frame::{check, Direction, Frame};
use crate::Error;

/// Splits a byte stream into frames of one direction.
#[derive(Clone, Debug)]
pub struct Framer {
    start: u8,
    buf: Vec<u8>,
    skipped: u64,
}

impl Framer {
    /// A framer for frames going `direction` (responses: [`Direction::FromMeter`]).
    pub fn new(direction: Direction) -> Framer {
        Framer {
            start: direction.start_byte(),
            buf: Vec::new(),
            skipped: 0,
        }
    }

    /// Adds received bytes. Bytes before a start byte are dropped at once; call
    /// [`next_frame`](Self::next_frame) until it returns `None` after each push, and the buffer
    /// holds at most one partial frame between pushes.
    pub fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.buf.is_empty() && b != self.start {
                self.skipped = self.skipped.saturating_add(1);
            } else {
                self.buf.push(b);
            }
        }
    }

    /// The next complete frame: `None` when more bytes are needed, else the parsed frame or
    /// why the bytes between a start and a stop byte are not one.
    pub fn next_frame(&mut self) -> Option<Result<Frame, Error>> {
        loop {
            if self.buf.is_empty() {
                return None;
            }
            if self.buf.first() != Some(&self.start) {
                let keep = self
                    .buf
                    .iter()
                    .position(|&b| b == self.start)
                    .unwrap_or(self.buf.len());
                self.skipped = self.skipped.saturating_add(keep as u64);
                self.buf.drain(..keep);
                continue;
            }
            return match check(&self.buf, self.start) {
                Err(Error::Incomplete) => None,
                Ok(len) => {
                    let result = Frame::parse(self.buf.get(..len).unwrap_or_default());
                    self.buf.drain(..len);
                    Some(result)
                }
                Err(e @ Error::Truncated { len }) => {
                    self.buf.drain(..len);
                    Some(Err(e))
                }
                Err(e) => {
                    // Too long (or, impossibly, a bad start): drop the start byte, resync.
                    self.buf.drain(..1);
                    Some(Err(e))
                }
            };
        }
    }

    /// The input has ended: the partial frame left, if any, as [`Error::Unterminated`]. The
    /// buffer is cleared.
    pub fn finish(&mut self) -> Option<Error> {
        let len = self.buf.len();
        self.buf.clear();
        (len > 0).then_some(Error::Unterminated { len })
    }

    /// Drops buffered bytes (a new request was sent, the link was reopened).
    pub fn clear(&mut self) {
        self.skipped = self.skipped.saturating_add(self.buf.len() as u64);
        self.buf.clear();
    }

    /// Bytes skipped so far because they were outside wanted frames (echoes, noise).
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Bytes of a partial frame currently buffered.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::frame::{Response, MAX_FRAME};

    const REQUEST: &str = "803F1001003CB25F0D";
    const RESPONSE: &str = "403F10003C0304430000D6DE03220D";

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    fn frames(f: &mut Framer) -> Vec<Result<Frame, Error>> {
        std::iter::from_fn(|| f.next_frame()).collect()
    }

    #[test]
    fn skips_the_echo_of_the_request() {
        let mut f = Framer::new(Direction::FromMeter);
        f.push(&unhex(&format!("{REQUEST}{RESPONSE}")));
        let out = frames(&mut f);
        assert_eq!(out.len(), 1);
        let r = Response::parse(out[0].as_ref().unwrap()).unwrap();
        assert_eq!(r.registers[0].id, 60);
        assert_eq!(f.skipped(), 9);
    }

    #[test]
    fn yields_the_same_frame_for_any_chunking() {
        let bytes = unhex(&format!("0606{REQUEST}{RESPONSE}FF{RESPONSE}"));
        for chunk in 1..bytes.len() {
            let mut f = Framer::new(Direction::FromMeter);
            let mut out = Vec::new();
            for c in bytes.chunks(chunk) {
                f.push(c);
                out.extend(frames(&mut f));
            }
            assert_eq!(out.len(), 2, "chunk size {chunk}");
            assert!(out.iter().all(|r| r.is_ok()));
            assert_eq!(f.finish(), None);
        }
    }

    #[test]
    fn reports_a_frame_cut_by_the_next_start_byte_and_keeps_the_next_frame() {
        let mut f = Framer::new(Direction::FromMeter);
        f.push(&unhex(&format!("403F1000{RESPONSE}")));
        let out = frames(&mut f);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0], Err(Error::Truncated { len: 4 }));
        assert!(out[1].is_ok());
    }

    #[test]
    fn reports_a_partial_frame_at_the_end_of_input() {
        let mut f = Framer::new(Direction::FromMeter);
        f.push(&unhex(&RESPONSE[..20]));
        assert!(frames(&mut f).is_empty());
        assert_eq!(f.finish(), Some(Error::Unterminated { len: 10 }));
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn stays_bounded_on_a_start_byte_without_stop_byte() {
        let mut f = Framer::new(Direction::FromMeter);
        f.push(&[0x40]);
        f.push(&vec![0x11; MAX_FRAME * 3]);
        let out = frames(&mut f);
        assert_eq!(out, vec![Err(Error::TooLong { max: MAX_FRAME })]);
        assert_eq!(f.buffered(), 0);
        f.push(&unhex(RESPONSE));
        assert!(f.next_frame().unwrap().is_ok());
    }

    #[test]
    fn frames_requests_for_a_meter_simulator() {
        let mut f = Framer::new(Direction::ToMeter);
        f.push(&unhex(&format!("{RESPONSE}{REQUEST}")));
        let out = frames(&mut f);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].as_ref().unwrap().direction, Direction::ToMeter);
    }
}
