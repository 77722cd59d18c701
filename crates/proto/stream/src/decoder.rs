//! Framer and reassembler in one: bytes in, complete APDUs (or errors) out.

use core::fmt;

use crate::framer::{FrameFormat, Framer};

/// A link layer's segment reassembly, as the [`Decoder`] drives it: frames in, at most one
/// complete APDU after each.
pub trait Reassemble: Default {
    /// The frames it joins.
    type Format: FrameFormat<Error = Self::Error>;
    /// A complete APDU, borrowed from the reassembler.
    type Apdu<'a>
    where
        Self: 'a;
    /// The link layer's error.
    type Error;

    /// Adds one frame. Afterwards [`complete`](Self::complete) holds the APDU if the frame
    /// ended a message, also when an error is returned (a frame that cuts short an unfinished
    /// message reports that one and still counts).
    ///
    /// # Errors
    /// What the link layer's segment rules reject.
    fn push(&mut self, frame: &<Self::Format as FrameFormat>::Frame<'_>)
        -> Result<(), Self::Error>;
    /// The APDU completed by the last [`push`](Self::push), if any.
    fn complete(&self) -> Option<Self::Apdu<'_>>;
    /// The input ended: an unfinished message is dropped.
    ///
    /// # Errors
    /// The unfinished message, if there was one.
    fn finish(&mut self) -> Result<(), Self::Error>;
    /// Drops any message in progress.
    fn reset(&mut self);
    /// The stream offset and the bytes of an APDU.
    fn parts<'a>(apdu: &Self::Apdu<'a>) -> (u64, &'a [u8])
    where
        Self: 'a;
}

/// Bytes in, APDUs out: a [`Framer`] feeding a [`Reassemble`]r.
pub struct Decoder<R: Reassemble> {
    framer: Framer<R::Format>,
    reassembler: R,
    /// The reassembler completed a message in the same push that reported an error.
    complete_pending: bool,
}

impl<R: Reassemble> Default for Decoder<R> {
    fn default() -> Self {
        Decoder {
            framer: Framer::default(),
            reassembler: R::default(),
            complete_pending: false,
        }
    }
}

impl<R: Reassemble + Clone> Clone for Decoder<R> {
    fn clone(&self) -> Self {
        Decoder {
            framer: self.framer.clone(),
            reassembler: self.reassembler.clone(),
            complete_pending: self.complete_pending,
        }
    }
}

impl<R: Reassemble + fmt::Debug> fmt::Debug for Decoder<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoder")
            .field("framer", &self.framer)
            .field("reassembler", &self.reassembler)
            .field("complete_pending", &self.complete_pending)
            .finish()
    }
}

impl<R: Reassemble> Decoder<R> {
    /// A decoder at stream offset 0.
    pub fn new() -> Self {
        Decoder::default()
    }

    /// Appends received bytes; then call [`pop`](Self::pop) until `None`.
    pub fn push(&mut self, bytes: &[u8]) {
        self.framer.push(bytes);
    }

    /// Marks the end of input (see [`Framer::finish`]); an unfinished message is reported by
    /// the following pops (see [`Reassemble::finish`]).
    pub fn finish(&mut self) {
        self.framer.finish();
    }

    /// Drops all state (the link was reopened).
    pub fn reset(&mut self) {
        self.framer.reset();
        self.reassembler.reset();
        self.complete_pending = false;
    }

    /// The next APDU or error; `None` when more bytes are needed.
    pub fn pop(&mut self) -> Option<Result<R::Apdu<'_>, R::Error>> {
        if self.complete_pending {
            self.complete_pending = false;
            return self.reassembler.complete().map(Ok);
        }
        loop {
            let Some(popped) = self.framer.pop() else {
                // At the end of input the framer is drained: report an unfinished message.
                return match self.framer.at_end() {
                    true => self.reassembler.finish().err().map(Err),
                    false => None,
                };
            };
            let result = match popped {
                Err(e) => return Some(Err(e)),
                Ok(frame) => self.reassembler.push(&frame),
            };
            let done = self.reassembler.complete().is_some();
            match result {
                Err(e) => {
                    self.complete_pending = done;
                    return Some(Err(e));
                }
                Ok(()) if done => return self.reassembler.complete().map(Ok),
                Ok(()) => {}
            }
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;
    use crate::toy::{frame, Error, Joiner};

    #[derive(Debug, PartialEq)]
    enum Out {
        Apdu(u64, Vec<u8>),
        Err(Error),
    }

    fn run(chunks: &[&[u8]]) -> Vec<Out> {
        let mut d = Decoder::<Joiner>::new();
        let mut out = Vec::new();
        let drain = |d: &mut Decoder<Joiner>, out: &mut Vec<Out>| {
            while let Some(r) = d.pop() {
                out.push(match r {
                    Ok((offset, bytes)) => Out::Apdu(offset, bytes.to_vec()),
                    Err(e) => Out::Err(e),
                });
            }
        };
        for c in chunks {
            d.push(c);
            drain(&mut d, &mut out);
        }
        d.finish();
        drain(&mut d, &mut out);
        out
    }

    #[test]
    fn joins_messages_and_reports_framing_and_segment_errors_in_stream_order() {
        let input = [
            frame(1, &[1, 2]), // 0: first of two
            frame(2, &[3]),    // 6: last
            vec![0x55],        // 11: garbage
            frame(0, &[4]),    // 12: a continuation without a first frame
            frame(1, &[5]),    // 17: first, never finished
            frame(3, &[6]),    // 22: a single-frame message that cuts it short
            frame(1, &[7]),    // 27: first, cut short by the end of input
        ]
        .concat();
        let want = vec![
            Out::Apdu(0, vec![1, 2, 3]),
            Out::Err(Error::Skipped(11, 1, crate::toy::Cause::NoStart)),
            Out::Err(Error::Orphan(12)),
            Out::Err(Error::Incomplete(17)),
            Out::Apdu(22, vec![6]),
            Out::Err(Error::Incomplete(27)),
        ];
        assert_eq!(run(&[&input]), want);
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(run(&bytes), want, "byte by byte");
    }

    #[test]
    fn reset_drops_the_message_in_progress() {
        let mut d = Decoder::<Joiner>::new();
        d.push(&frame(1, &[1]));
        assert!(d.pop().is_none());
        d.reset();
        d.push(&frame(2, &[2]));
        assert_eq!(d.pop(), Some(Err(Error::Orphan(0))));
        d.finish();
        assert_eq!(d.pop(), None);
    }
}
