//! Logging: human-readable with colours on a terminal; plain, compact lines otherwise; no
//! timestamps under systemd (the journal adds its own). `RUST_LOG` overrides the profile's `log`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber writing to stderr. Safe to call more than once (later calls
/// do nothing).
pub fn init(default_filter: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(default_filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let terminal = std::io::stderr().is_terminal();
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(terminal)
        .with_target(false);
    let _ = if journald {
        builder.without_time().compact().try_init()
    } else if terminal {
        builder.try_init()
    } else {
        builder.compact().try_init()
    };
}
