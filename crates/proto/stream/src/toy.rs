//! A toy link layer for the tests of the generic framer and decoder.
//!
//! Frames: `AA n payload… FF` (n ≥ 1 payload bytes; the last byte is the "checksum", right
//! only when it is `FF`). `AA AA` is idle fill; `AA 00` opens no frame. Segments: the first
//! payload byte has bit 0 set on a message's first frame and bit 1 on its last; the rest of
//! the payload is the APDU's part.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::arithmetic_side_effects
)]

use crate::decoder::Reassemble;
use crate::framer::{FrameFormat, Verdict};

pub struct Toy;

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Cause {
    NoStart,
    Zero,
    Truncated,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Error {
    Skipped(u64, u64, Cause),
    Truncated(u64, u64),
    Corrupt(u64, u8),
    /// A message abandoned at the given offset.
    Incomplete(u64),
    /// A continuation without a first frame.
    Orphan(u64),
}

impl FrameFormat for Toy {
    const START: u8 = 0xAA;
    const SHARED_END: usize = 0;
    const NO_START: Cause = Cause::NoStart;
    const TRUNCATED: Cause = Cause::Truncated;
    type Meta = u8;
    type Mismatch = u8;
    type Skip = Cause;
    type Frame<'a> = (u64, &'a [u8]);
    type Error = Error;

    fn check(buf: &[u8], eof: bool) -> Verdict<u8, u8, Cause> {
        let need = if eof {
            Verdict::Invalid(Cause::Truncated)
        } else {
            Verdict::Incomplete
        };
        match buf {
            [_, 0xAA, ..] => Verdict::Idle,
            [_, 0, ..] => Verdict::Invalid(Cause::Zero),
            [_, n, ..] => {
                let len = usize::from(*n) + 3;
                match buf.get(len - 1) {
                    Some(0xFF) => Verdict::Frame { len, meta: *n },
                    Some(&c) => Verdict::Corrupt { len, mismatch: c },
                    None => need,
                }
            }
            _ => need,
        }
    }
    fn frame(bytes: &[u8], offset: u64, _: u8) -> (u64, &[u8]) {
        (offset, bytes)
    }
    fn skipped(offset: u64, len: u64, cause: Cause) -> Error {
        Error::Skipped(offset, len, cause)
    }
    fn truncated(offset: u64, len: u64) -> Error {
        Error::Truncated(offset, len)
    }
    fn corrupt(offset: u64, mismatch: u8) -> Error {
        Error::Corrupt(offset, mismatch)
    }
}

#[derive(Debug, Default, Clone)]
pub struct Joiner {
    buf: Vec<u8>,
    /// Offset of the message in progress or completed.
    offset: Option<u64>,
    complete: bool,
}

impl Reassemble for Joiner {
    type Format = Toy;
    type Apdu<'a> = (u64, &'a [u8]);
    type Error = Error;

    fn push(&mut self, &(offset, bytes): &(u64, &[u8])) -> Result<(), Error> {
        if self.complete {
            self.reset();
        }
        let flags = bytes[2];
        let part = &bytes[3..bytes.len() - 1];
        let mut result = Ok(());
        if flags & 1 != 0 {
            if let Some(first) = self.offset {
                result = Err(Error::Incomplete(first));
            }
            self.buf.clear();
            self.offset = Some(offset);
        } else if self.offset.is_none() {
            return Err(Error::Orphan(offset));
        }
        self.buf.extend_from_slice(part);
        self.complete = flags & 2 != 0;
        result
    }
    fn complete(&self) -> Option<(u64, &[u8])> {
        match (self.complete, self.offset) {
            (true, Some(offset)) => Some((offset, &self.buf)),
            _ => None,
        }
    }
    fn finish(&mut self) -> Result<(), Error> {
        let unfinished = self.offset.filter(|_| !self.complete);
        self.reset();
        unfinished.map_or(Ok(()), |at| Err(Error::Incomplete(at)))
    }
    fn reset(&mut self) {
        *self = Joiner::default();
    }
    fn parts<'a>(apdu: &(u64, &'a [u8])) -> (u64, &'a [u8])
    where
        Self: 'a,
    {
        *apdu
    }
}

/// A toy frame carrying `flags` and `part`.
pub fn frame(flags: u8, part: &[u8]) -> Vec<u8> {
    let n = u8::try_from(part.len() + 1).unwrap();
    [&[0xAA, n, flags][..], part, &[0xFF]].concat()
}
