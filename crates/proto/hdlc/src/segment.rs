//! HDLC segmentation (IEC 62056-46 §6.4.1: the segmentation bit S of the frame format) and the
//! LLC header of IEC 62056-46 §7 / ISO/IEC 8802-2.
//!
//! A message longer than one frame is sent as frames with S = 1 followed by one with S = 0;
//! their information fields are joined. The first carries the LLC header `E6 E7 00` (response)
//! or `E6 E6 00` (command), which is not part of the APDU; the others do not (vector
//! `ch-iskra-am550-hdlc-segmented-plain`: `A8A4` ×4, then `A055`).
//!
//! UI frames carry no sequence numbers, so a lost middle segment cannot be detected; a lost
//! first or last segment is: a frame carrying an LLC header, or with other addresses, starts a
//! new message and the unfinished one is reported as [`Error::Incomplete`].
//!
//! Frames that carry no user data (supervisory frames, SNRM/UA/DISC…) are ignored.

use proto_stream::Assembly;

use crate::error::Error;
use crate::frame::{Address, Frame};

/// The longest APDU a segmented message may reach.
pub const MAX_APDU_LEN: usize = 0xFFFF;

/// LLC header of a response (meter to client): destination LSAP `E6`, source LSAP `E7`,
/// quality `00`.
pub const LLC_RESPONSE: [u8; 3] = [0xE6, 0xE7, 0x00];
/// LLC header of a command (client to meter).
pub const LLC_COMMAND: [u8; 3] = [0xE6, 0xE6, 0x00];

/// A complete APDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Apdu<'a> {
    /// The APDU bytes (LLC header removed).
    pub bytes: &'a [u8],
    /// Stream offset of the message's first frame.
    pub offset: u64,
    /// Number of frames it came in.
    pub segments: u32,
    /// Destination address of its frames.
    pub dst: Address,
    /// Source address of its frames.
    pub src: Address,
    /// True when the first frame carried an LLC header.
    pub llc: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Message {
    offset: u64,
    segments: u32,
    dst: Address,
    src: Address,
    llc: bool,
}

/// Joins segmented HDLC frames into APDUs and strips the LLC header.
#[derive(Debug, Clone, Default)]
pub struct Reassembler {
    joined: Assembly<Message>,
}

/// Splits off an LLC header.
fn strip_llc(info: &[u8]) -> (bool, &[u8]) {
    match info {
        [0xE6, 0xE7 | 0xE6, 0x00, rest @ ..] => (true, rest),
        _ => (false, info),
    }
}

impl Reassembler {
    /// An idle reassembler.
    pub fn new() -> Self {
        Reassembler::default()
    }

    /// Adds one frame. After the call, [`complete`](Self::complete) holds the APDU if the
    /// frame ended a message, also when an error is returned: a frame that starts a new message
    /// while another is unfinished reports that one as [`Error::Incomplete`] and still counts.
    ///
    /// # Errors
    /// [`Error::Incomplete`] (see above), [`Error::TooLong`] (the message is dropped).
    pub fn push(&mut self, frame: &Frame<'_>) -> Result<(), Error> {
        self.joined.next_segment();
        let info = frame.info();
        if !frame.carries_data() || info.is_empty() {
            return Ok(());
        }
        let (llc, payload) = strip_llc(info);
        let mut result = Ok(());
        let message = match self.joined.collecting() {
            Some(m) if llc || m.dst != frame.dst() || m.src != frame.src() => {
                result = Err(Error::Incomplete {
                    offset: m.offset,
                    segments: m.segments,
                });
                self.joined.clear();
                self.joined.extend(payload);
                Message {
                    offset: frame.offset(),
                    segments: 1,
                    dst: frame.dst(),
                    src: frame.src(),
                    llc,
                }
            }
            Some(m) => {
                if self.joined.len().saturating_add(info.len()) > MAX_APDU_LEN {
                    self.joined.abandon();
                    return Err(Error::TooLong { offset: m.offset });
                }
                self.joined.extend(info);
                Message {
                    segments: m.segments.saturating_add(1),
                    ..m
                }
            }
            None => {
                self.joined.extend(payload);
                Message {
                    offset: frame.offset(),
                    segments: 1,
                    dst: frame.dst(),
                    src: frame.src(),
                    llc,
                }
            }
        };
        self.joined.update(message, !frame.segmented());
        result
    }

    /// The APDU completed by the last [`push`](Self::push), if any.
    pub fn complete(&self) -> Option<Apdu<'_>> {
        self.joined.complete().map(|(bytes, m)| Apdu {
            bytes,
            offset: m.offset,
            segments: m.segments,
            dst: m.dst,
            src: m.src,
            llc: m.llc,
        })
    }

    /// True while a segmented message waits for its last segment.
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

    fn frame(segmented: bool, src: u8, info: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        let a = |b: &[u8]| Address::from_bytes(b).unwrap();
        emit(segmented, a(&[0xCF]), a(&[src]), 0x13, info, &mut v).unwrap();
        v
    }

    fn push(r: &mut Reassembler, raw: &[u8]) -> Result<(), Error> {
        r.push(&Frame::parse(raw).unwrap())
    }

    #[test]
    fn strips_the_llc_header_of_a_single_frame() {
        let mut r = Reassembler::new();
        push(&mut r, &frame(false, 0x23, &[0xE6, 0xE7, 0x00, 0x0F, 0x01])).unwrap();
        let a = r.complete().unwrap();
        assert_eq!(a.bytes, &[0x0F, 0x01]);
        assert!(a.llc);
        assert_eq!(a.segments, 1);
    }

    #[test]
    fn joins_segments_until_one_without_the_segmentation_bit() {
        let mut r = Reassembler::new();
        push(&mut r, &frame(true, 0x23, &[0xE6, 0xE7, 0x00, 1, 2])).unwrap();
        assert!(r.complete().is_none());
        push(&mut r, &frame(true, 0x23, &[3, 4])).unwrap();
        push(&mut r, &frame(false, 0x23, &[5])).unwrap();
        let a = r.complete().unwrap();
        assert_eq!(a.bytes, &[1, 2, 3, 4, 5]);
        assert_eq!(a.segments, 3);
    }

    #[test]
    fn keeps_blocks_without_llc_as_they_are() {
        // General-Block-Transfer continuation blocks come in their own frames without LLC.
        let mut r = Reassembler::new();
        push(&mut r, &frame(false, 0x03, &[0xE0, 0x40, 0, 2])).unwrap();
        assert_eq!(r.complete().unwrap().bytes, &[0xE0, 0x40, 0, 2]);
        assert!(!r.complete().unwrap().llc);
    }

    #[test]
    fn a_new_message_reports_the_unfinished_one() {
        let mut r = Reassembler::new();
        push(&mut r, &frame(true, 0x23, &[0xE6, 0xE7, 0x00, 1])).unwrap();
        assert_eq!(
            push(&mut r, &frame(false, 0x23, &[0xE6, 0xE7, 0x00, 9])),
            Err(Error::Incomplete {
                offset: 0,
                segments: 1
            })
        );
        assert_eq!(r.complete().unwrap().bytes, &[9]);
    }

    #[test]
    fn a_frame_from_another_address_starts_a_new_message() {
        let mut r = Reassembler::new();
        push(&mut r, &frame(true, 0x23, &[1])).unwrap();
        assert!(push(&mut r, &frame(false, 0x25, &[2])).is_err());
        assert_eq!(r.complete().unwrap().bytes, &[2]);
    }

    #[test]
    fn ignores_frames_without_user_data() {
        let mut r = Reassembler::new();
        let mut rr = Vec::new();
        let a = |b: &[u8]| Address::from_bytes(b).unwrap();
        emit(false, a(&[0x03]), a(&[0x21]), 0x31, &[], &mut rr).unwrap();
        push(&mut r, &rr).unwrap();
        assert!(r.complete().is_none());
        assert!(!r.in_progress());
    }

    #[test]
    fn reports_an_unfinished_message_at_the_end_of_input() {
        let mut r = Reassembler::new();
        push(&mut r, &frame(true, 0x23, &[1])).unwrap();
        assert!(matches!(
            r.finish(),
            Err(Error::Incomplete { segments: 1, .. })
        ));
        assert_eq!(r.finish(), Ok(()));
    }
}
