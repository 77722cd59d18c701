//! Framer and reassembler in one: bytes in, complete APDUs (or errors) out.

use proto_stream::Reassemble;

use crate::error::Error;
use crate::frame::Frame;
use crate::framer::Frames;
use crate::segment::{Apdu, Reassembler};

/// Bytes in, APDUs out: the generic [`proto_stream::Decoder`] with the HDLC
/// [`Framer`](crate::Framer) and [`Reassembler`]. An unfinished message is reported as
/// [`Error::Incomplete`] at the end of input.
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
pub type Decoder = proto_stream::Decoder<Reassembler>;

impl Reassemble for Reassembler {
    type Format = Frames;
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
