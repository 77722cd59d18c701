//! DLMS transport segmentation over wired M-Bus (IEC 62056-7-3, M-Bus transport sub-layer).
//!
//! A DLMS APDU longer than one frame is cut into segments, one per long frame. The CI field
//! says which: CI `00`–`1F`, low nibble = segment sequence number (0 for the first), bit `10`
//! = last segment. Every segment's user data starts with the transport SAPs `STSAP DTSAP`
//! (`01 67` on the Austrian push meters), which are not part of the APDU. One-frame messages
//! have CI `10`.
//!
//! Example, Netz NÖ (vector `evn-netznoe-doc-kaifa-ma309`): `68 FA FA 68 53 FF 00 01 67 DB 08 …`
//! then `68 14 14 68 53 FF 11 01 67 …`; the APDU is both data parts after `01 67` joined.

use proto_stream::Assembly;

use crate::error::Error;
use crate::frame::{Frame, MAX_FRAME_LEN};

/// Segments per message: the sequence number has 4 bits.
pub const MAX_SEGMENTS: u8 = 16;
/// The longest APDU a message can carry: 16 maximal segments.
pub const MAX_APDU_LEN: usize = 16 * (MAX_FRAME_LEN - 9);

/// The highest CI value of a DLMS transport segment.
const CI_MAX: u8 = 0x1F;
/// CI bit: last segment.
const CI_FIN: u8 = 0x10;
/// CI bits: sequence number.
const CI_SEQ: u8 = 0x0F;

/// A complete APDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Apdu<'a> {
    /// The APDU bytes (transport SAPs removed).
    pub bytes: &'a [u8],
    /// Stream offset of the message's first frame.
    pub offset: u64,
    /// Number of segments (frames) it came in.
    pub segments: u8,
    /// The transport SAPs `[STSAP, DTSAP]` of the message.
    pub saps: [u8; 2],
}

/// What the reassembler records about a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Message {
    /// Stream offset of its first frame.
    offset: u64,
    /// Segments received, which is also the sequence number of the next one.
    segments: u8,
    saps: [u8; 2],
}

/// Joins DLMS transport segments into APDUs.
#[derive(Debug, Clone, Default)]
pub struct Reassembler {
    joined: Assembly<Message>,
}

impl Reassembler {
    /// An idle reassembler.
    pub fn new() -> Self {
        Reassembler::default()
    }

    /// Adds one frame. After the call, [`complete`](Self::complete) holds the APDU if this was
    /// the last segment, also when an error is returned: a first segment that cuts short an
    /// unfinished message reports that message as [`Error::Incomplete`] and still starts
    /// (or, for CI `10`, completes) its own.
    ///
    /// # Errors
    /// [`Error::NotDlms`] (the frame is ignored), [`Error::ShortSegment`],
    /// [`Error::OutOfOrder`] and [`Error::SapMismatch`] (the message in progress and the
    /// frame are dropped), [`Error::Incomplete`] (see above).
    pub fn push(&mut self, frame: &Frame<'_>) -> Result<(), Error> {
        self.joined.next_segment();
        let offset = frame.offset();
        let ci = frame.ci();
        if ci > CI_MAX {
            return Err(Error::NotDlms { offset, ci });
        }
        let seq = ci & CI_SEQ;
        let fin = ci & CI_FIN != 0;
        let (saps, payload) = match frame.data() {
            [st, dt, rest @ ..] => ([*st, *dt], rest),
            _ => {
                self.joined.abandon();
                return Err(Error::ShortSegment { offset });
            }
        };
        let mut result = Ok(());
        let (first_offset, segments) = match self.joined.collecting() {
            Some(m) => {
                if seq == 0 {
                    result = Err(Error::Incomplete {
                        offset: m.offset,
                        segments: m.segments,
                    });
                    self.joined.clear();
                    (offset, 1)
                } else if seq != m.segments {
                    self.joined.abandon();
                    return Err(Error::OutOfOrder {
                        offset,
                        expected: m.segments,
                        got: seq,
                    });
                } else if saps != m.saps {
                    self.joined.abandon();
                    return Err(Error::SapMismatch { offset });
                } else {
                    (m.offset, m.segments.saturating_add(1))
                }
            }
            None => {
                if seq != 0 {
                    return Err(Error::OutOfOrder {
                        offset,
                        expected: 0,
                        got: seq,
                    });
                }
                (offset, 1)
            }
        };
        self.joined.extend(payload);
        if !fin && segments >= MAX_SEGMENTS {
            // A 17th segment could not be numbered; the next one is out of order anyway, but
            // say so now rather than buffer further.
            self.joined.abandon();
            return Err(Error::OutOfOrder {
                offset,
                expected: MAX_SEGMENTS,
                got: seq,
            });
        }
        let message = Message {
            offset: first_offset,
            segments,
            saps,
        };
        self.joined.update(message, fin);
        result
    }

    /// The APDU completed by the last [`push`](Self::push), if any.
    pub fn complete(&self) -> Option<Apdu<'_>> {
        self.joined.complete().map(|(bytes, m)| Apdu {
            bytes,
            offset: m.offset,
            segments: m.segments,
            saps: m.saps,
        })
    }

    /// True while a message has segments but no last segment yet.
    pub fn in_progress(&self) -> bool {
        self.joined.in_progress()
    }

    /// The input ended: an unfinished message is dropped and reported.
    ///
    /// # Errors
    /// [`Error::Incomplete`] when a message was in progress.
    pub fn finish(&mut self) -> Result<(), Error> {
        match self.joined.abandon() {
            Some(m) => Err(Error::Incomplete {
                offset: m.offset,
                segments: m.segments,
            }),
            None => Ok(()),
        }
    }

    /// Drops any message in progress.
    pub fn reset(&mut self) {
        self.joined.abandon();
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
    use crate::frame::emit;

    fn bytes(ci: u8, payload: &[u8]) -> Vec<u8> {
        let mut data = vec![0x01, 0x67];
        data.extend_from_slice(payload);
        let mut v = Vec::new();
        emit(0x53, 0xFF, ci, &data, &mut v).unwrap();
        v
    }

    fn push(r: &mut Reassembler, raw: &[u8]) -> Result<(), Error> {
        r.push(&Frame::parse(raw).unwrap())
    }

    #[test]
    fn joins_two_segments_and_strips_the_transport_saps() {
        let mut r = Reassembler::new();
        assert_eq!(push(&mut r, &bytes(0x00, &[1, 2, 3])), Ok(()));
        assert!(r.complete().is_none());
        assert!(r.in_progress());
        assert_eq!(push(&mut r, &bytes(0x11, &[4, 5])), Ok(()));
        let apdu = r.complete().unwrap();
        assert_eq!(apdu.bytes, &[1, 2, 3, 4, 5]);
        assert_eq!(apdu.segments, 2);
        assert_eq!(apdu.saps, [0x01, 0x67]);
    }

    #[test]
    fn a_single_segment_message_completes_at_once() {
        let mut r = Reassembler::new();
        assert_eq!(push(&mut r, &bytes(0x10, &[9])), Ok(()));
        assert_eq!(r.complete().unwrap().bytes, &[9]);
        // The next push starts afresh.
        assert_eq!(push(&mut r, &bytes(0x00, &[1])), Ok(()));
        assert!(r.complete().is_none());
    }

    #[test]
    fn rejects_a_segment_that_skips_a_sequence_number() {
        let mut r = Reassembler::new();
        push(&mut r, &bytes(0x00, &[1])).unwrap();
        push(&mut r, &bytes(0x01, &[2])).unwrap();
        assert_eq!(
            push(&mut r, &bytes(0x13, &[4])),
            Err(Error::OutOfOrder {
                offset: 0,
                expected: 2,
                got: 3
            })
        );
        assert!(r.complete().is_none());
        assert!(!r.in_progress());
    }

    #[test]
    fn rejects_a_continuation_without_a_first_segment() {
        let mut r = Reassembler::new();
        assert_eq!(
            push(&mut r, &bytes(0x11, &[4])),
            Err(Error::OutOfOrder {
                offset: 0,
                expected: 0,
                got: 1
            })
        );
    }

    #[test]
    fn a_new_first_segment_reports_the_unfinished_message_and_still_counts() {
        let mut r = Reassembler::new();
        push(&mut r, &bytes(0x00, &[1])).unwrap();
        assert_eq!(
            push(&mut r, &bytes(0x10, &[7, 7])),
            Err(Error::Incomplete {
                offset: 0,
                segments: 1
            })
        );
        assert_eq!(r.complete().unwrap().bytes, &[7, 7]);
    }

    #[test]
    fn ignores_frames_that_are_not_dlms_segments() {
        let mut r = Reassembler::new();
        push(&mut r, &bytes(0x00, &[1])).unwrap();
        assert_eq!(
            push(&mut r, &bytes(0x72, &[0])),
            Err(Error::NotDlms {
                offset: 0,
                ci: 0x72
            })
        );
        // The message in progress survives.
        push(&mut r, &bytes(0x11, &[2])).unwrap();
        assert_eq!(r.complete().unwrap().bytes, &[1, 2]);
    }

    #[test]
    fn reports_an_unfinished_message_at_the_end_of_input() {
        let mut r = Reassembler::new();
        push(&mut r, &bytes(0x00, &[1])).unwrap();
        assert_eq!(
            r.finish(),
            Err(Error::Incomplete {
                offset: 0,
                segments: 1
            })
        );
        assert_eq!(r.finish(), Ok(()));
    }

    #[test]
    fn stops_after_sixteen_segments_without_a_last_one() {
        let mut r = Reassembler::new();
        for seq in 0..15u8 {
            push(&mut r, &bytes(seq, &[seq])).unwrap();
        }
        assert!(matches!(
            push(&mut r, &bytes(0x0F, &[0])),
            Err(Error::OutOfOrder { expected: 16, .. })
        ));
        assert!(!r.in_progress());
    }
}
