//! Encrypted P1: DSMR telegrams inside bare DLMS general-glo-ciphering APDUs.
//!
//! The Sagemcom T210-D-r of Energienetze Steiermark and the Luxembourg Smarty meters write
//! `DB 08 <system title> 82 xx xx 30 <frame counter> <ciphertext> <12-byte tag>` straight to
//! the P1 line, no link layer (DSMR 5.0.2 P1 physical layer, DLMS UA Green Book §9.2.7.2.4
//! envelope; Smarty P1 specification). The plaintext is one DSMR telegram.
//!
//! Decryption and tag verification are [`proto_dlms::security`]'s. This module finds the
//! APDUs in the byte stream: a `DB` starts a candidate when [`check_glo`] accepts its header;
//! the candidate is a frame only when it decrypts (and, with an authentication key, its tag
//! verifies) to a telegram whose CRC is right. Because a `DB` in line noise can look like a
//! header, a failed candidate only advances the search by one byte, so a real frame behind a
//! false start is still found; failures that start inside the span of an already reported
//! failure are not reported again (they are noise inside its ciphertext).
//!
//! The frames and errors depend only on the byte stream, not on its chunking (as for
//! [`Framer`](crate::Framer)).

use core::fmt;

use proto_dlms::security::{check_glo, decrypt_glo};
pub use proto_dlms::security::{Decrypted, Keys};

use crate::scan::find_byte;
use crate::{Error, Telegram};

/// Why a candidate APDU did not yield a telegram.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncryptedError {
    /// The GCM tag does not verify. `plaintext_ok` tells whether the payload still decrypts
    /// (without the tag) to a telegram with a valid CRC: then the encryption key is right and
    /// the authentication key is wrong; else the key or the frame is bad.
    Authentication {
        /// The payload decrypts to a valid telegram all the same.
        plaintext_ok: bool,
    },
    /// The plaintext is not a DSMR telegram: the encryption key is probably wrong.
    /// `error` says what the telegram parser found.
    Decryption {
        /// The parser's complaint about the plaintext.
        error: Error,
    },
    /// The plaintext is a telegram but its CRC does not match: the frame was corrupted.
    Checksum {
        /// The CRC written in the telegram.
        given: u16,
        /// The CRC computed over the plaintext.
        computed: u16,
    },
    /// The DLMS layer rejected the APDU (unsupported security control byte).
    Dlms(proto_dlms::Error),
    /// The input ended inside an APDU: `len` bytes of `needed` were there.
    Truncated {
        /// Bytes present from `DB` on.
        len: usize,
        /// Bytes the header announces.
        needed: usize,
    },
}

impl fmt::Display for EncryptedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncryptedError::Authentication { plaintext_ok: true } => f.write_str(
                "GCM tag does not verify, but the payload decrypts to a valid telegram: \
                 the authentication key is probably wrong",
            ),
            EncryptedError::Authentication { plaintext_ok: false } => f.write_str(
                "GCM tag does not verify: wrong key or authentication key, or a corrupted frame",
            ),
            EncryptedError::Decryption { error } => write!(
                f,
                "decrypted payload is not a DSMR telegram ({error}): the key is probably wrong"
            ),
            EncryptedError::Checksum { given, computed } => write!(
                f,
                "decrypted telegram has a bad CRC-16: telegram says {given:04X}, computed {computed:04X}"
            ),
            EncryptedError::Dlms(e) => write!(f, "{e}"),
            EncryptedError::Truncated { len, needed } => write!(
                f,
                "input ended inside a general-glo-ciphering APDU: {len} of {needed} bytes"
            ),
        }
    }
}

impl core::error::Error for EncryptedError {}

/// A decrypted telegram: the DLMS envelope's data and the plaintext, which
/// [`Telegram::parse`] is known to accept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The decryption result (plaintext, system title, frame counter, whether the tag was
    /// verified).
    pub decrypted: Decrypted,
    /// Offset of the APDU's `DB` in the stream (bytes pushed before it since creation).
    pub offset: u64,
    /// Length of the APDU in bytes.
    pub len: usize,
}

impl Frame {
    /// The telegram view of the plaintext.
    ///
    /// # Errors
    /// Never in practice: the framer only yields plaintexts that parse.
    pub fn telegram(&self) -> Result<Telegram<'_>, Error> {
        Telegram::parse(&self.decrypted.plaintext)
    }
}

/// What a candidate turned out to be.
enum Outcome {
    Frame(Frame),
    Failed(EncryptedError),
    NotAStart,
    Wait,
}

/// Finds general-glo-ciphering APDUs in a byte stream and decrypts them to telegrams.
#[derive(Clone, Debug)]
pub struct EncryptedFramer {
    buf: Vec<u8>,
    max_len: usize,
    /// Stream offset of `buf[0]`.
    base: u64,
    /// Failures starting before this stream offset are not reported.
    quiet_until: u64,
    skipped: u64,
    /// Stream offset where the last returned frame or failure started.
    last: u64,
}

impl Default for EncryptedFramer {
    fn default() -> Self {
        EncryptedFramer::new()
    }
}

impl EncryptedFramer {
    /// The default limit on an APDU: 8 KiB (the vectors' APDUs are 511 and 647 bytes).
    pub const DEFAULT_MAX_LEN: usize = 8 * 1024;

    /// A framer with the default limit.
    pub fn new() -> Self {
        EncryptedFramer::with_max_len(Self::DEFAULT_MAX_LEN)
    }

    /// A framer that treats a header announcing more than `max_len` bytes (at least 64) as
    /// line noise.
    pub fn with_max_len(max_len: usize) -> Self {
        EncryptedFramer {
            buf: Vec::new(),
            max_len: max_len.max(64),
            base: 0,
            quiet_until: 0,
            skipped: 0,
            last: 0,
        }
    }

    /// Takes as many of `bytes` as fit and returns how many were taken; bytes before a `DB`
    /// are skipped unbuffered. Less than `bytes.len()` only when the buffer is full, which
    /// [`next_frame`](Self::next_frame) then frees.
    pub fn push(&mut self, bytes: &[u8]) -> usize {
        let mut input = bytes;
        let mut taken = 0;
        if self.buf.is_empty() {
            let start = find_byte(input, TAG).unwrap_or(input.len());
            self.drop_input(start);
            taken = start;
            input = input.get(start..).unwrap_or_default();
        }
        let room = self.max_len.saturating_sub(self.buf.len());
        let n = room.min(input.len());
        self.buf
            .extend_from_slice(input.get(..n).unwrap_or_default());
        taken.saturating_add(n)
    }

    /// The next decrypted telegram or failed frame; `None` when more bytes are needed.
    pub fn next_frame(&mut self, keys: &Keys<'_>) -> Option<Result<Frame, EncryptedError>> {
        self.advance(keys, false)
    }

    /// The input has ended: the remaining frames, then a truncated APDU as
    /// [`EncryptedError::Truncated`]. Call until `None`.
    pub fn finish(&mut self, keys: &Keys<'_>) -> Option<Result<Frame, EncryptedError>> {
        self.advance(keys, true)
    }

    /// Pushes all of `bytes`, handing every frame or failure to `f`, with the stream offset
    /// where it started (see [`last_offset`](Self::last_offset)).
    pub fn feed(
        &mut self,
        bytes: &[u8],
        keys: &Keys<'_>,
        mut f: impl FnMut(u64, Result<Frame, EncryptedError>),
    ) {
        let mut rest = bytes;
        loop {
            let n = self.push(rest);
            rest = rest.get(n..).unwrap_or_default();
            while let Some(frame) = self.next_frame(keys) {
                f(self.last, frame);
            }
            if rest.is_empty() {
                break;
            }
        }
    }

    /// Drops everything buffered (the link was reopened). Stream offsets keep counting.
    pub fn reset(&mut self) {
        let n = self.buf.len();
        self.drop_front(n, true);
        self.quiet_until = self.base;
    }

    /// Stream offset (bytes pushed before it since creation) of the `DB` that started the
    /// frame or failure last returned.
    pub fn last_offset(&self) -> u64 {
        self.last
    }

    /// Bytes skipped so far because they were outside any frame.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Bytes buffered for a frame not yet complete.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    fn drop_input(&mut self, n: usize) {
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        self.base = self.base.saturating_add(n);
        self.skipped = self.skipped.saturating_add(n);
    }

    fn drop_front(&mut self, n: usize, skipped: bool) {
        let n = n.min(self.buf.len());
        self.buf.drain(..n);
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        self.base = self.base.saturating_add(n);
        if skipped {
            self.skipped = self.skipped.saturating_add(n);
        }
    }

    fn advance(&mut self, keys: &Keys<'_>, at_end: bool) -> Option<Result<Frame, EncryptedError>> {
        loop {
            match find_byte(&self.buf, TAG) {
                Some(start) => self.drop_front(start, true),
                None => {
                    let n = self.buf.len();
                    self.drop_front(n, true);
                    return None;
                }
            }
            match self.candidate(keys, at_end) {
                Outcome::Wait => return None,
                Outcome::NotAStart => self.drop_front(1, true),
                Outcome::Frame(frame) => {
                    self.last = self.base;
                    self.drop_front(frame.len, false);
                    return Some(Ok(frame));
                }
                Outcome::Failed(error) => {
                    let start = self.base;
                    let claimed = match error {
                        EncryptedError::Truncated { needed, .. } => needed,
                        _ => check_glo(&self.buf).unwrap_or(1),
                    };
                    self.drop_front(1, true);
                    if start >= self.quiet_until {
                        self.last = start;
                        self.quiet_until =
                            start.saturating_add(u64::try_from(claimed).unwrap_or(u64::MAX));
                        return Some(Err(error));
                    }
                }
            }
        }
    }

    /// Judges the candidate APDU at `buf[0] == 0xDB`.
    fn candidate(&self, keys: &Keys<'_>, at_end: bool) -> Outcome {
        let len = match check_glo(&self.buf) {
            Ok(len) => len,
            Err(proto_dlms::Error::Incomplete { needed }) => {
                let total = needed.map(|n| self.buf.len().saturating_add(n));
                return match total {
                    Some(total) if total > self.max_len => Outcome::NotAStart,
                    _ if !at_end => Outcome::Wait,
                    Some(total) => Outcome::Failed(EncryptedError::Truncated {
                        len: self.buf.len(),
                        needed: total,
                    }),
                    // The header itself is cut: too short to say it was a frame.
                    None => Outcome::NotAStart,
                };
            }
            Err(_) => return Outcome::NotAStart,
        };
        if len > self.max_len {
            return Outcome::NotAStart;
        }
        let apdu = self.buf.get(..len).unwrap_or_default();
        let offset = self.base;
        match decrypt_glo(apdu, keys) {
            Ok((decrypted, _)) => match Telegram::parse(&decrypted.plaintext) {
                Ok(_) => Outcome::Frame(Frame {
                    decrypted,
                    offset,
                    len,
                }),
                Err(e) => Outcome::Failed(plaintext_error(e)),
            },
            Err(proto_dlms::Error::AuthenticationFailed) => {
                let without_tag = Keys {
                    encryption: keys.encryption,
                    authentication: None,
                };
                let plaintext_ok = decrypt_glo(apdu, &without_tag)
                    .is_ok_and(|(d, _)| Telegram::parse(&d.plaintext).is_ok());
                Outcome::Failed(EncryptedError::Authentication { plaintext_ok })
            }
            Err(e) => Outcome::Failed(EncryptedError::Dlms(e)),
        }
    }
}

/// The first byte of a general-glo-ciphering APDU.
const TAG: u8 = proto_dlms::security::TAG_GENERAL_GLO_CIPHERING;

/// A plaintext that does not parse: a bad CRC means corruption, anything else a wrong key.
fn plaintext_error(e: Error) -> EncryptedError {
    match e {
        Error::BadChecksum { given, computed } => EncryptedError::Checksum { given, computed },
        error => EncryptedError::Decryption { error },
    }
}
