//! Framer and reassembler in one: bytes in, complete DLMS APDUs (or errors) out.

use proto_stream::Reassemble;

use crate::error::Error;
use crate::frame::Frame;
use crate::framer::LongFrames;
use crate::segment::{Apdu, Reassembler};

/// Bytes in, APDUs out: the generic [`proto_stream::Decoder`] with the M-Bus
/// [`Framer`](crate::Framer) and [`Reassembler`]. An unfinished message is reported as
/// [`Error::Incomplete`] at the end of input.
///
/// ```
/// use proto_mbus::{frame, Decoder};
/// let mut wire = Vec::new();
/// frame::emit(0x53, 0xFF, 0x00, &[0x01, 0x67, 0xDB, 0x08], &mut wire).unwrap();
/// frame::emit(0x53, 0xFF, 0x11, &[0x01, 0x67, 0x4B, 0x46], &mut wire).unwrap();
/// let mut d = Decoder::new();
/// d.push(&wire);
/// let apdu = d.pop().unwrap().unwrap();
/// assert_eq!(apdu.bytes, &[0xDB, 0x08, 0x4B, 0x46]);
/// assert!(d.pop().is_none());
/// ```
pub type Decoder = proto_stream::Decoder<Reassembler>;

impl Reassemble for Reassembler {
    type Format = LongFrames;
    type Apdu<'a> = Apdu<'a>;
    type Error = Error;

    fn push(&mut self, frame: &Frame<'_>) -> Result<(), Error> {
        Reassembler::push(self, frame)
    }

    fn complete(&self) -> Option<Apdu<'_>> {
        Reassembler::complete(self)
    }

    fn finish(&mut self) -> Result<(), Error> {
        Reassembler::finish(self)
    }

    fn reset(&mut self) {
        Reassembler::reset(self);
    }

    fn parts<'a>(apdu: &Apdu<'a>) -> (u64, &'a [u8])
    where
        Self: 'a,
    {
        (apdu.offset, apdu.bytes)
    }
}
