//! Kamstrup Meter Protocol (KMP), sans-IO: the GetRegister request and response of Kamstrup
//! heat meters (Multical 30x/40x/60x/80x) read through their optical eye.
//!
//! # Layers
//! - [`stuffing`]: physical layer, byte stuffing of `06 0D 1B 40 80` (KMP §3.1);
//! - [`crc`]: data link layer, CRC-16/XMODEM (KMP §3.2);
//! - [`frame`]: frames, [`Request`] and [`Response`] of GetRegister (CID `10`, KMP §6.2.4);
//! - [`value`]: the base-10 floating point value format, decoded exactly (KMP §4.2), and the
//!   calendar formats;
//! - [`unit`](mod@unit): the unit byte;
//! - [`framer`]: frames out of a byte stream (skips an optical head's echo);
//! - [`session`]: the poll state machine: timeouts, retries, completed polls;
//! - [`registers`]: names of well-known registers.
//!
//! # Panics
//! Nothing in this crate panics on any input: indexing, unchecked arithmetic, `unwrap` and
//! `expect` are denied by lints outside tests. Malformed input is an [`Error`] that says what
//! was wrong and where; a register value that cannot be represented is a [`ValueError`] for
//! that register alone; unknown units are [`Unit::Unknown`] and unknown registers are
//! returned like known ones.
//!
//! # Fuzzing
//! Built with `cfg(fuzzing)`, the CRC check always passes, so fuzzers reach the decoder
//! behind it.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod crc;
pub mod error;
pub mod frame;
pub mod framer;
pub mod registers;
pub mod session;
pub mod stuffing;
pub mod unit;
pub mod value;

pub use error::{Error, Layer, ValueError};
pub use frame::{
    check, Direction, Frame, Register, Request, Response, GET_REGISTER, HEAT_METER, MAX_FRAME,
    MAX_REGISTERS,
};
pub use framer::Framer;
pub use session::{Config, Event, Failure, Poll, Reason, Session};
pub use unit::Unit;
pub use value::{Calendar, Number};
