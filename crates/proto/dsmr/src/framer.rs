//! The P1 framer: bytes in any chunking in, complete telegrams out.
//!
//! A telegram runs from `/` through the line break after `!CRC` (DSMR 5.0.2 P1 §6.2). The
//! framer resynchronises on `/`: bytes before it are skipped (a reader that starts mid-stream,
//! line noise), and a telegram that meets a new `/` before its `!` is reported as
//! [`Error::Truncated`] and dropped. The buffer is bounded by `max_len`; a telegram that does
//! not end within it is reported as [`Error::TooLong`].
//!
//! Invariant: the frames and errors produced depend only on the byte stream, not on how it is
//! split into [`push`](Framer::push) calls, as long as [`next_frame`](Framer::next_frame) is
//! drained after every push ([`feed`](Framer::feed) does that). The fuzz target
//! `dsmr_framer_chunks` checks it.

use core::ops::Range;

use crate::scan::find_byte;
use crate::telegram::{find_bang, tail};
use crate::Error;

/// Splits a byte stream into telegrams. Frames are handed out as borrowed slices of the
/// framer's buffer and checked by [`Telegram::parse`](crate::Telegram::parse).
#[derive(Clone, Debug)]
pub struct Framer {
    buf: Vec<u8>,
    max_len: usize,
    /// Bytes at the front of `buf` handed out last time, dropped on the next call.
    consumed: usize,
    /// When `buf` starts with `/`: `buf[1..scanned]` holds neither `!` nor `/`.
    scanned: usize,
    skipped: u64,
    /// Stream offset of `buf[0]`: bytes pushed before it since creation.
    base: u64,
    /// Stream offset where the last returned frame or error started.
    last: u64,
}

impl Default for Framer {
    fn default() -> Self {
        Framer::new()
    }
}

impl Framer {
    /// The default buffer limit: 16 KiB, ten times the longest telegram in the vectors.
    pub const DEFAULT_MAX_LEN: usize = 16 * 1024;

    /// A framer with the default limit.
    pub fn new() -> Self {
        Framer::with_max_len(Self::DEFAULT_MAX_LEN)
    }

    /// A framer that gives up on a telegram longer than `max_len` bytes (at least 64).
    pub fn with_max_len(max_len: usize) -> Self {
        Framer {
            buf: Vec::new(),
            max_len: max_len.max(64),
            consumed: 0,
            scanned: 0,
            skipped: 0,
            base: 0,
            last: 0,
        }
    }

    /// Takes as many of `bytes` as fit and returns how many were taken. Bytes before a `/` are
    /// skipped without being buffered. Returns less than `bytes.len()` only when the buffer is
    /// full; [`next_frame`](Self::next_frame) then frees it.
    pub fn push(&mut self, bytes: &[u8]) -> usize {
        self.compact();
        let mut input = bytes;
        let mut taken = 0;
        if self.buf.is_empty() {
            let start = find_byte(input, b'/').unwrap_or(input.len());
            self.skip(start);
            self.advance_base(start);
            taken = start;
            input = input.get(start..).unwrap_or_default();
        }
        let room = self.max_len.saturating_sub(self.buf.len());
        let n = room.min(input.len());
        self.buf
            .extend_from_slice(input.get(..n).unwrap_or_default());
        taken.saturating_add(n)
    }

    /// The next complete telegram (`/` through the checksum line break) or framing error;
    /// `None` when more bytes are needed.
    pub fn next_frame(&mut self) -> Option<Result<&[u8], Error>> {
        let range = self.advance(false)?;
        Some(range.map(|r| self.buf.get(r).unwrap_or_default()))
    }

    /// The input has ended: returns the remaining complete telegrams, then a telegram that only
    /// lacks its final line break, or [`Error::Truncated`] for a partial one. Call until `None`.
    pub fn finish(&mut self) -> Option<Result<&[u8], Error>> {
        let range = self.advance(true)?;
        Some(range.map(|r| self.buf.get(r).unwrap_or_default()))
    }

    /// Pushes all of `bytes`, handing every frame or error to `f` as soon as it is complete,
    /// with the stream offset where it started (see [`last_offset`](Self::last_offset)).
    pub fn feed(&mut self, bytes: &[u8], mut f: impl FnMut(u64, Result<&[u8], Error>)) {
        let mut rest = bytes;
        loop {
            let n = self.push(rest);
            rest = rest.get(n..).unwrap_or_default();
            while let Some(range) = self.advance(false) {
                f(
                    self.last,
                    range.map(|r| self.buf.get(r).unwrap_or_default()),
                );
            }
            if rest.is_empty() {
                break;
            }
        }
    }

    /// Drops everything buffered (the link was reopened). Stream offsets keep counting.
    pub fn reset(&mut self) {
        self.advance_base(self.buf.len());
        self.buf.clear();
        self.consumed = 0;
        self.scanned = 0;
    }

    /// Stream offset (bytes pushed before it since creation) of the `/` that started the frame
    /// or error last returned by [`next_frame`](Self::next_frame) or [`finish`](Self::finish).
    pub fn last_offset(&self) -> u64 {
        self.last
    }

    fn advance_base(&mut self, n: usize) {
        self.base = self
            .base
            .saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
    }

    /// Bytes buffered for a telegram not yet complete.
    pub fn buffered(&self) -> usize {
        self.buf.len().saturating_sub(self.consumed)
    }

    /// Bytes skipped so far because they were outside any telegram.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    fn skip(&mut self, n: usize) {
        self.skipped = self
            .skipped
            .saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
    }

    fn compact(&mut self) {
        if self.consumed > 0 {
            self.drop_front(self.consumed);
            self.consumed = 0;
        }
    }

    fn drop_front(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        self.buf.drain(..n);
        self.advance_base(n);
        self.scanned = 0;
    }

    /// The state machine behind `next_frame` and `finish`: the range of the next frame.
    fn advance(&mut self, at_end: bool) -> Option<Result<Range<usize>, Error>> {
        self.compact();
        match find_byte(&self.buf, b'/') {
            Some(0) => {}
            Some(garbage) => {
                self.skip(garbage);
                self.drop_front(garbage);
            }
            None => {
                self.skip(self.buf.len());
                self.reset();
                return None;
            }
        }
        self.last = self.base;
        let bang = match find_bang(&self.buf, self.scanned.max(1)) {
            Err(Error::Truncated { len }) => {
                self.drop_front(len);
                return Some(Err(Error::Truncated { len }));
            }
            Err(e) => return Some(Err(e)),
            Ok(None) => {
                self.scanned = self.buf.len();
                return self.incomplete(at_end);
            }
            Ok(Some(bang)) => {
                self.scanned = bang;
                bang
            }
        };
        match tail(&self.buf, bang, at_end) {
            Ok(t) => {
                self.consumed = t.end;
                Some(Ok(0..t.end))
            }
            Err(Error::Incomplete) => self.incomplete(at_end),
            Err(e) => {
                // Not a checksum line: give up on this `/` and look for the next one.
                self.drop_front(1);
                Some(Err(e))
            }
        }
    }

    fn incomplete(&mut self, at_end: bool) -> Option<Result<Range<usize>, Error>> {
        if at_end {
            let len = self.buf.len();
            self.reset();
            return Some(Err(Error::Truncated { len }));
        }
        if self.buf.len() >= self.max_len {
            self.reset();
            return Some(Err(Error::TooLong { max: self.max_len }));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::arithmetic_side_effects
    )]
    use super::*;
    use crate::crc::crc16;

    fn telegram(body: &str) -> Vec<u8> {
        let mut t = format!("/TST5\\2TEST\r\n\r\n{body}\r\n!").into_bytes();
        let crc = crc16(&t);
        t.extend_from_slice(format!("{crc:04X}\r\n").as_bytes());
        t
    }

    fn collect(framer: &mut Framer, chunks: &[&[u8]]) -> Vec<Result<Vec<u8>, Error>> {
        let mut out = Vec::new();
        for c in chunks {
            framer.feed(c, |_, f| out.push(f.map(<[u8]>::to_vec)));
        }
        while let Some(f) = framer.finish() {
            out.push(f.map(<[u8]>::to_vec));
        }
        out
    }

    #[test]
    fn finds_telegrams_between_garbage() {
        let (a, b) = (telegram("1-0:1.8.1(1*kWh)"), telegram("1-0:1.8.1(2*kWh)"));
        let mut stream = b"\x00\xFFnoise!12\r\n".to_vec();
        stream.extend_from_slice(&a);
        stream.extend_from_slice(b"garbage");
        stream.extend_from_slice(&b);
        let mut f = Framer::new();
        assert_eq!(collect(&mut f, &[&stream]), vec![Ok(a), Ok(b)]);
        assert_eq!(f.skipped(), 12 + 7);
    }

    #[test]
    fn resyncs_on_a_telegram_that_starts_mid_stream() {
        let a = telegram("1-0:1.8.1(1*kWh)");
        let mut stream = b"1-0:1.8.2(000123.456*kWh)\r\n!ABCD\r\n".to_vec();
        stream.extend_from_slice(&a);
        assert_eq!(collect(&mut Framer::new(), &[&stream]), vec![Ok(a)]);
    }

    #[test]
    fn yields_the_same_frames_whatever_the_chunking() {
        let mut stream = b"xx".to_vec();
        for i in 0..5 {
            stream.extend_from_slice(&telegram(&format!("1-0:1.8.1({i}*kWh)")));
            stream.extend_from_slice(b"/cut\r\n1-0:1.8.1(");
        }
        let whole = collect(&mut Framer::new(), &[&stream]);
        assert_eq!(whole.iter().filter(|f| f.is_ok()).count(), 5);
        for size in 1..40 {
            let chunks: Vec<&[u8]> = stream.chunks(size).collect();
            assert_eq!(
                collect(&mut Framer::new(), &chunks),
                whole,
                "chunk size {size}"
            );
        }
    }

    #[test]
    fn reports_a_cut_telegram_and_keeps_the_next_one() {
        let a = telegram("1-0:1.8.1(1*kWh)");
        let mut stream = b"/CUT5\r\n\r\n1-0:1.8".to_vec();
        stream.extend_from_slice(&a);
        assert_eq!(
            collect(&mut Framer::new(), &[&stream]),
            vec![Err(Error::Truncated { len: 16 }), Ok(a)]
        );
    }

    #[test]
    fn gives_up_on_a_telegram_longer_than_the_limit() {
        let a = telegram("1-0:1.8.1(1*kWh)");
        let mut stream = b"/".to_vec();
        stream.extend_from_slice(&[b'x'; 200]);
        stream.extend_from_slice(&a);
        let mut f = Framer::with_max_len(100);
        assert_eq!(
            collect(&mut f, &[&stream]),
            vec![Err(Error::TooLong { max: 100 }), Ok(a)]
        );
        assert!(f.buffered() == 0);
    }

    #[test]
    fn finish_accepts_a_telegram_without_its_final_line_break() {
        let a = telegram("1-0:1.8.1(1*kWh)");
        let cut = &a[..a.len() - 2];
        assert_eq!(collect(&mut Framer::new(), &[cut]), vec![Ok(cut.to_vec())]);
    }

    #[test]
    fn finish_reports_a_partial_telegram_as_truncated() {
        assert_eq!(
            collect(&mut Framer::new(), &[b"junk/ABC5\r\n\r\n1-0"]),
            vec![Err(Error::Truncated { len: 12 })]
        );
    }

    #[test]
    fn drops_a_start_whose_checksum_line_is_invalid() {
        let a = telegram("1-0:1.8.1(1*kWh)");
        let mut stream = b"/X\r\n!zz\r\n".to_vec();
        stream.extend_from_slice(&a);
        assert_eq!(
            collect(&mut Framer::new(), &[&stream]),
            vec![Err(Error::BadCrcLine { offset: 5 }), Ok(a)]
        );
    }

    #[test]
    fn reports_the_stream_offset_of_each_frame_and_error() {
        let a = telegram("1-0:1.8.1(1*kWh)");
        let mut stream = b"noise".to_vec();
        stream.extend_from_slice(&a);
        stream.extend_from_slice(b"xx/cut");
        stream.extend_from_slice(&a);
        let mut seen = Vec::new();
        let mut f = Framer::new();
        let mut rest = &stream[..];
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(rest.len().min(5));
            let n = f.push(chunk);
            assert_eq!(n, chunk.len());
            while let Some(r) = f.next_frame() {
                let ok = r.is_ok();
                seen.push((ok, f.last_offset()));
            }
            rest = tail;
        }
        let second = 5 + a.len() as u64;
        assert_eq!(
            seen,
            vec![(true, 5), (false, second + 2), (true, second + 6)]
        );
    }

    #[test]
    fn reset_drops_a_partial_telegram() {
        let a = telegram("1-0:1.8.1(1*kWh)");
        let mut f = Framer::new();
        assert_eq!(f.push(&a[..10]), 10);
        assert!(f.next_frame().is_none());
        f.reset();
        assert_eq!(collect(&mut f, &[&a[10..], &a]), vec![Ok(a.clone())]);
    }
}
