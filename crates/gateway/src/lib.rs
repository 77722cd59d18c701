//! The smart-meter gateway: configuration, wiring, lifecycle and the command line.
//!
//! # Layout
//! - [`config`]: profiles, secrets and environment overrides; validation with key paths.
//! - [`run`]: subscribes the sinks, starts the sources, shuts down in order.
//! - [`decode`]: the offline `decode` command.
//! - [`cli`]: argument parsing and exit codes.
//! - [`status`]: the `/health` and `/metrics` endpoint.
//! - [`systemd`]: readiness and watchdog notifications.

pub mod cli;
pub mod config;
pub mod decode;
pub mod logging;
pub mod run;
pub mod status;
pub mod systemd;
