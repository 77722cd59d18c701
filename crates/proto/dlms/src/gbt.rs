//! General-block-transfer (`0xE0`) reassembly, sans-IO.
//!
//! Green Book DLMS UA 1000-2 ed. 9, "General block transfer (GBT) mechanism", and the
//! `general-block-transfer` APDU of IEC 62056-5-3:
//!
//! ```text
//! E0 | block-control (1) | block-number (2, BE) | block-number-ack (2, BE) | block-data (A-XDR length + bytes)
//! block-control: bit 7 last-block, bit 6 streaming, bits 5..0 window
//! ```
//!
//! Push meters (L+G E450/E570) split one long APDU (plain data-notification or
//! general-glo-ciphering) into streamed blocks numbered from 1; the last one has bit 7 set.
//! A passive listener cannot ask for lost blocks, so [`Reassembler`] accepts blocks strictly
//! in order and drops a message with a gap:
//!
//! * block 1 starts a message (a partial message still pending is abandoned and counted in
//!   [`Reassembler::abandoned`]);
//! * the block after the last one accepted extends it; a last block completes it;
//! * any other block number ends the pending message with [`Error::BlockOutOfOrder`]
//!   (reported once); later blocks of that message are skipped silently until the next
//!   block 1, as are blocks seen before the first block 1 (a capture may start mid-message).

use crate::ber;
use crate::error::Error;

/// APDU tag of general-block-transfer.
pub const TAG: u8 = 0xE0;
/// Block-control bit: this is the last block.
pub const LAST_BLOCK: u8 = 0x80;
/// Block-control bit: streaming (the sender does not wait for acknowledgements).
pub const STREAMING: u8 = 0x40;
/// Default limit for a reassembled APDU.
pub const DEFAULT_LIMIT: usize = 0x1_0000;

/// Offsets of the fixed header fields.
mod field {
    pub const BLOCK_CONTROL: usize = 1;
    pub const BLOCK_NUMBER: core::ops::Range<usize> = 2..4;
    pub const BLOCK_NUMBER_ACK: core::ops::Range<usize> = 4..6;
    pub const LENGTH: usize = 6;
}

/// One parsed general-block-transfer APDU, borrowing its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block<'a> {
    /// The raw block-control byte.
    pub block_control: u8,
    /// Block number (the first block is 1).
    pub number: u16,
    /// Block number acknowledged by the sender.
    pub number_ack: u16,
    /// The block's slice of the reassembled APDU.
    pub data: &'a [u8],
}

impl Block<'_> {
    /// Whether this is the last block of the message.
    pub fn is_last(&self) -> bool {
        self.block_control & LAST_BLOCK != 0
    }

    /// Whether the streaming bit is set.
    pub fn is_streaming(&self) -> bool {
        self.block_control & STREAMING != 0
    }

    /// The window size (bits 5..0 of block-control).
    pub fn window(&self) -> u8 {
        self.block_control & 0x3F
    }
}

/// Length of the complete general-block-transfer APDU at the start of `buf`.
///
/// # Errors
/// [`Error::Incomplete`] when more bytes are needed, [`Error::UnexpectedTag`] when `buf`
/// does not start with `0xE0`, [`Error::BadLengthForm`] for an unsupported length form.
pub fn check_block(buf: &[u8]) -> Result<usize, Error> {
    match buf.first() {
        None => return Err(Error::Incomplete { needed: None }),
        Some(&TAG) => {}
        Some(&actual) => {
            return Err(Error::UnexpectedTag {
                offset: 0,
                expected: TAG,
                actual,
            })
        }
    }
    let (len, len_bytes) = ber::read_length(buf, field::LENGTH)?;
    let end = field::LENGTH.saturating_add(len_bytes).saturating_add(len);
    if buf.len() < end {
        return Err(Error::Incomplete {
            needed: end.checked_sub(buf.len()),
        });
    }
    Ok(end)
}

/// Parses the general-block-transfer APDU at the start of `buf`; returns the block and the
/// bytes it occupies.
///
/// # Errors
/// As [`check_block`].
pub fn parse_block(buf: &[u8]) -> Result<(Block<'_>, usize), Error> {
    let end = check_block(buf)?;
    let u16_at = |r: core::ops::Range<usize>| {
        buf.get(r)
            .and_then(|b| <[u8; 2]>::try_from(b).ok())
            .map(u16::from_be_bytes)
    };
    let (Some(&block_control), Some(number), Some(number_ack)) = (
        buf.get(field::BLOCK_CONTROL),
        u16_at(field::BLOCK_NUMBER),
        u16_at(field::BLOCK_NUMBER_ACK),
    ) else {
        return Err(Error::Incomplete { needed: None });
    };
    let (len, len_bytes) = ber::read_length(buf, field::LENGTH)?;
    let start = field::LENGTH.saturating_add(len_bytes);
    let data = buf.get(start..start.saturating_add(len)).unwrap_or(&[]);
    Ok((
        Block {
            block_control,
            number,
            number_ack,
            data,
        },
        end,
    ))
}

/// Builds one general-block-transfer APDU (for tests and fuzzing).
///
/// # Errors
/// [`Error::BadLength`] when `data` is longer than three length bytes can say.
pub fn emit_block(
    block_control: u8,
    number: u16,
    number_ack: u16,
    data: &[u8],
) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(data.len().saturating_add(10));
    out.push(TAG);
    out.push(block_control);
    out.extend_from_slice(&number.to_be_bytes());
    out.extend_from_slice(&number_ack.to_be_bytes());
    ber::write_length(&mut out, data.len())?;
    out.extend_from_slice(data);
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for a block 1; other blocks are skipped.
    Skipping,
    /// A message is pending; `next` is the block number due.
    InProgress { next: u16 },
}

/// Reassembles general-block-transfer blocks into complete APDUs.
#[derive(Debug, Clone)]
pub struct Reassembler {
    data: Vec<u8>,
    state: State,
    limit: usize,
    abandoned: u64,
    skipped: u64,
}

impl Default for Reassembler {
    fn default() -> Self {
        Self::new()
    }
}

impl Reassembler {
    /// A reassembler with the [`DEFAULT_LIMIT`].
    pub fn new() -> Self {
        Self::with_limit(DEFAULT_LIMIT)
    }

    /// A reassembler that refuses messages longer than `limit` bytes.
    pub fn with_limit(limit: usize) -> Self {
        Reassembler {
            data: Vec::new(),
            state: State::Skipping,
            limit,
            abandoned: 0,
            skipped: 0,
        }
    }

    /// Feeds one complete general-block-transfer APDU. Returns the reassembled APDU when
    /// this block completes it.
    ///
    /// # Errors
    /// * the errors of [`parse_block`] ([`Error::Incomplete`] means `apdu` was cut short);
    /// * [`Error::TrailingBytes`] when `apdu` holds more than one block;
    /// * [`Error::BlockOutOfOrder`] when a pending message has a gap (it is dropped);
    /// * [`Error::ReassemblyOverflow`] when the message would exceed the limit (dropped).
    pub fn push(&mut self, apdu: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let (block, used) = parse_block(apdu)?;
        if used < apdu.len() {
            return Err(Error::TrailingBytes {
                offset: used,
                count: apdu.len().saturating_sub(used),
            });
        }
        self.push_block(&block)
    }

    /// Feeds one parsed block; see [`Reassembler::push`].
    ///
    /// # Errors
    /// As [`Reassembler::push`].
    pub fn push_block(&mut self, block: &Block<'_>) -> Result<Option<Vec<u8>>, Error> {
        match self.state {
            _ if block.number == 1 => {
                if matches!(self.state, State::InProgress { .. }) {
                    self.abandoned = self.abandoned.saturating_add(1);
                }
                self.data.clear();
            }
            State::InProgress { next } if block.number == next => {}
            State::InProgress { next } => {
                self.reset();
                return Err(Error::BlockOutOfOrder {
                    expected: next,
                    actual: block.number,
                });
            }
            State::Skipping => {
                self.skipped = self.skipped.saturating_add(1);
                return Ok(None);
            }
        }
        if self.data.len().saturating_add(block.data.len()) > self.limit {
            self.reset();
            return Err(Error::ReassemblyOverflow { limit: self.limit });
        }
        self.data.extend_from_slice(block.data);
        if block.is_last() {
            self.state = State::Skipping;
            return Ok(Some(core::mem::take(&mut self.data)));
        }
        self.state = match block.number.checked_add(1) {
            Some(next) => State::InProgress { next },
            None => {
                self.reset();
                return Err(Error::ReassemblyOverflow { limit: self.limit });
            }
        };
        Ok(None)
    }

    /// Drops a pending message.
    pub fn reset(&mut self) {
        self.data.clear();
        self.state = State::Skipping;
    }

    /// Whether a message is pending.
    pub fn in_progress(&self) -> bool {
        matches!(self.state, State::InProgress { .. })
    }

    /// How many pending messages were abandoned because a new block 1 arrived.
    pub fn abandoned(&self) -> u64 {
        self.abandoned
    }

    /// How many blocks were skipped while waiting for a block 1.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::panic
    )]
    use super::*;

    fn blocks(msg: &[u8], size: usize) -> Vec<Vec<u8>> {
        let chunks: Vec<&[u8]> = msg.chunks(size).collect();
        let n = chunks.len();
        chunks
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let bc = STREAMING | if i + 1 == n { LAST_BLOCK } else { 0 };
                emit_block(bc, (i + 1) as u16, 0, c).unwrap()
            })
            .collect()
    }

    #[test]
    fn parses_the_header_of_a_captured_first_block() {
        // L+G E450 (vectors/hdlc-dlms/ch-lg-e450-gbt-encrypted): E0 40 0001 0000 77 DB ...
        let mut apdu = vec![0xE0, 0x40, 0x00, 0x01, 0x00, 0x00, 0x77];
        apdu.extend_from_slice(&[0xDB; 0x77]);
        let (b, used) = parse_block(&apdu).unwrap();
        assert_eq!(used, apdu.len());
        assert_eq!(
            (
                b.number,
                b.number_ack,
                b.is_last(),
                b.is_streaming(),
                b.window()
            ),
            (1, 0, false, true, 0)
        );
        assert_eq!(b.data.len(), 0x77);
        assert_eq!(
            check_block(&apdu[..50]),
            Err(Error::Incomplete { needed: Some(76) })
        );
        assert_eq!(
            check_block(&[0xE0, 0x40]),
            Err(Error::Incomplete { needed: None })
        );
    }

    #[test]
    fn reassembles_blocks_in_order() {
        let msg: Vec<u8> = (0..=255).collect();
        let mut r = Reassembler::new();
        let bs = blocks(&msg, 100);
        assert_eq!(r.push(&bs[0]).unwrap(), None);
        assert!(r.in_progress());
        assert_eq!(r.push(&bs[1]).unwrap(), None);
        assert_eq!(r.push(&bs[2]).unwrap(), Some(msg.clone()));
        assert!(!r.in_progress());
        // And again.
        for (i, b) in bs.iter().enumerate() {
            let out = r.push(b).unwrap();
            assert_eq!(out.is_some(), i == 2);
        }
    }

    #[test]
    fn a_missing_block_is_reported_once_and_the_message_dropped() {
        let msg = vec![7u8; 400];
        let bs = blocks(&msg, 100);
        let mut r = Reassembler::new();
        r.push(&bs[0]).unwrap();
        assert_eq!(
            r.push(&bs[2]),
            Err(Error::BlockOutOfOrder {
                expected: 2,
                actual: 3
            })
        );
        assert_eq!(
            r.push(&bs[3]),
            Ok(None),
            "rest of the broken message is skipped"
        );
        assert_eq!(r.skipped(), 1);
        for b in &bs[..3] {
            assert_eq!(r.push(b), Ok(None));
        }
        assert_eq!(r.push(&bs[3]), Ok(Some(msg)));
    }

    #[test]
    fn a_repeated_block_is_out_of_order() {
        let bs = blocks(&[1u8; 300], 100);
        let mut r = Reassembler::new();
        r.push(&bs[0]).unwrap();
        r.push(&bs[1]).unwrap();
        assert_eq!(
            r.push(&bs[1]),
            Err(Error::BlockOutOfOrder {
                expected: 3,
                actual: 2
            })
        );
    }

    #[test]
    fn blocks_before_the_first_block_one_are_skipped() {
        let msg = vec![3u8; 250];
        let bs = blocks(&msg, 100);
        let mut r = Reassembler::new();
        assert_eq!(r.push(&bs[1]), Ok(None));
        assert_eq!(r.push(&bs[2]), Ok(None));
        assert_eq!(r.skipped(), 2);
        for b in &bs[..2] {
            assert_eq!(r.push(b), Ok(None));
        }
        assert_eq!(r.push(&bs[2]), Ok(Some(msg)));
    }

    #[test]
    fn a_new_first_block_abandons_the_pending_message() {
        let a = blocks(&[1u8; 300], 100);
        let b = blocks(&[2u8; 150], 100);
        let mut r = Reassembler::new();
        r.push(&a[0]).unwrap();
        r.push(&a[1]).unwrap();
        assert_eq!(r.push(&b[0]), Ok(None));
        assert_eq!(r.abandoned(), 1);
        assert_eq!(r.push(&b[1]), Ok(Some(vec![2u8; 150])));
    }

    #[test]
    fn oversized_messages_are_refused() {
        let bs = blocks(&[0u8; 300], 100);
        let mut r = Reassembler::with_limit(250);
        r.push(&bs[0]).unwrap();
        r.push(&bs[1]).unwrap();
        assert_eq!(
            r.push(&bs[2]),
            Err(Error::ReassemblyOverflow { limit: 250 })
        );
        assert!(!r.in_progress());
    }

    #[test]
    fn single_block_messages_complete_at_once() {
        let b = emit_block(LAST_BLOCK, 1, 0, &[0x0F, 1, 2]).unwrap();
        assert_eq!(Reassembler::new().push(&b), Ok(Some(vec![0x0F, 1, 2])));
    }

    #[test]
    fn malformed_blocks_are_errors() {
        let mut r = Reassembler::new();
        assert!(matches!(
            r.push(&[0x0F, 0, 0]),
            Err(Error::UnexpectedTag { .. })
        ));
        assert!(matches!(
            r.push(&[0xE0, 0x40, 0, 1, 0, 0, 0x05, 1]),
            Err(Error::Incomplete { .. })
        ));
        assert!(matches!(
            r.push(&[0xE0, 0x40, 0, 1, 0, 0, 0x01, 1, 2]),
            Err(Error::TrailingBytes { .. })
        ));
        assert!(matches!(
            r.push(&[0xE0, 0x40, 0, 1, 0, 0, 0x80]),
            Err(Error::BadLengthForm { .. })
        ));
    }
}
