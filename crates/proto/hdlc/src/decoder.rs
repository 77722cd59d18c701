//! Framer and reassembler in one: bytes in, complete APDUs (or errors) out.

use crate::error::Error;
use crate::framer::Framer;
use crate::segment::{Apdu, Reassembler};

/// Bytes in, APDUs out.
///
/// ```
/// use proto_hdlc::{frame, Address, Decoder};
/// let client = Address::from_bytes(&[0xCF]).unwrap();
/// let meter = Address::from_bytes(&[0x02, 0x23]).unwrap();
/// let mut wire = Vec::new();
/// frame::emit(true, client, meter, 0x03, &[0xE6, 0xE7, 0x00, 0x0F, 0x00], &mut wire).unwrap();
/// frame::emit(false, client, meter, 0x13, &[0x00, 0x04], &mut wire).unwrap();
/// let mut d = Decoder::new();
/// d.push(&wire);
/// let apdu = d.pop().unwrap().unwrap();
/// assert_eq!(apdu.bytes, &[0x0F, 0x00, 0x00, 0x04]);
/// assert!(d.pop().is_none());
/// ```
#[derive(Debug, Default, Clone)]
pub struct Decoder {
    framer: Framer,
    reassembler: Reassembler,
    /// The reassembler completed a message in the same push that reported an error.
    complete_pending: bool,
}

impl Decoder {
    /// A decoder at stream offset 0.
    pub fn new() -> Self {
        Decoder::default()
    }

    /// Appends received bytes; then call [`pop`](Self::pop) until `None`.
    pub fn push(&mut self, bytes: &[u8]) {
        self.framer.push(bytes);
    }

    /// Marks the end of input (see [`Framer::finish`]); an unfinished message is reported as
    /// [`Error::Incomplete`] by the following pops.
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
    pub fn pop(&mut self) -> Option<Result<Apdu<'_>, Error>> {
        if self.complete_pending {
            self.complete_pending = false;
            return self.reassembler.complete().map(Ok);
        }
        loop {
            let result = match self.framer.pop() {
                None => {
                    // At the end of input the framer is drained: report an unfinished
                    // message.
                    return match self.framer_at_end() {
                        true => self.reassembler.finish().err().map(Err),
                        false => None,
                    };
                }
                Some(Err(e)) => return Some(Err(e)),
                Some(Ok(frame)) => self.reassembler.push(&frame),
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

    fn framer_at_end(&self) -> bool {
        self.framer.at_end()
    }
}
