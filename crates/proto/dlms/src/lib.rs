//! Sans-IO decoding of DLMS/COSEM pushes (work in progress: security layer).

#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod ber;
pub mod error;
pub mod security;

pub use error::Error;
pub use security::{check_glo, decrypt_glo, encrypt_glo, Decrypted, Keys};
