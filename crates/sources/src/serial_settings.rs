//! Serial line settings shared by the serial transport and protocol defaults.

use serde::Deserialize;

/// Parity of a serial line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Parity {
    /// No parity bit.
    None,
    /// Even parity.
    Even,
    /// Odd parity.
    Odd,
}

/// Line settings: baud rate and character format. Protocols give defaults
/// ([`LineDefaults`]); the `serial` table in config overrides single fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineDefaults {
    /// Baud rate.
    pub baud: u32,
    /// Parity.
    pub parity: Parity,
    /// Data bits (5..=8).
    pub data_bits: u8,
    /// Stop bits (1 or 2).
    pub stop_bits: u8,
}

impl LineDefaults {
    /// `baud` 8N1.
    pub const fn n81(baud: u32) -> Self {
        LineDefaults {
            baud,
            parity: Parity::None,
            data_bits: 8,
            stop_bits: 1,
        }
    }

    /// `baud` 8E1.
    pub const fn e81(baud: u32) -> Self {
        LineDefaults {
            baud,
            parity: Parity::Even,
            data_bits: 8,
            stop_bits: 1,
        }
    }

    /// Bytes per second on the line (start + data + parity + stop bits per byte).
    pub fn bytes_per_second(&self) -> f64 {
        let bits = 1
            + u32::from(self.data_bits)
            + u32::from(self.parity != Parity::None)
            + u32::from(self.stop_bits);
        f64::from(self.baud) / f64::from(bits)
    }
}
