//! The command line of SPEC.md and its exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use smart_meter_core::MeterId;
use smart_meter_sources::ProtocolConfig;

use crate::config::{self, ConfigError};

/// Exit code: done.
pub const EXIT_OK: u8 = 0;
/// Exit code: runtime failure.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code: usage error (also clap's).
pub const EXIT_USAGE: u8 = 2;
/// Exit code: `decode` met input it could not decode (sysexits EX_DATAERR).
pub const EXIT_DATAERR: u8 = 65;
/// Exit code: the configuration is invalid (sysexits EX_CONFIG).
pub const EXIT_CONFIG: u8 = 78;

/// Reads smart meters and publishes every reading.
#[derive(Debug, Parser)]
#[command(name = "smart-meter", version, about)]
pub struct Cli {
    /// Folder holding settings.toml and, optionally, .secrets.toml.
    #[arg(
        long,
        global = true,
        env = "SMART_METER_CONFIG",
        default_value = "config"
    )]
    pub config: PathBuf,
    /// The profile (a table of settings.toml).
    #[arg(long, global = true, env = "SMART_METER_ENV", default_value = "demo")]
    pub env: String,
    /// What to do (default: run).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (the default).
    Run,
    /// Validate the profile; print every problem with its key path.
    Check,
    /// List the profile names, one per line.
    Profiles,
    /// Decode captured bytes (hex text or raw) offline.
    Decode {
        /// Protocol of the capture (default: the source's, else mbus-dlms).
        #[arg(long)]
        protocol: Option<String>,
        /// Encryption key, 32 hex digits.
        #[arg(long)]
        key: Option<String>,
        /// Authentication key, 32 hex digits.
        #[arg(long = "auth-key")]
        auth_key: Option<String>,
        /// Take protocol and keys from this source of the profile.
        #[arg(long)]
        source: Option<String>,
        /// Input file, or - for stdin.
        #[arg(default_value = "-")]
        input: String,
    },
}

fn print_config_errors(errors: &[ConfigError]) {
    for e in errors {
        eprintln!("error: {e}");
    }
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    ExitCode::from(dispatch(cli))
}

fn dispatch(cli: Cli) -> u8 {
    match cli.command.unwrap_or(Command::Run) {
        Command::Profiles => match config::profiles(&cli.config) {
            Ok(names) => {
                for n in names {
                    println!("{n}");
                }
                EXIT_OK
            }
            Err(e) => {
                print_config_errors(&[e]);
                EXIT_CONFIG
            }
        },
        Command::Check => match config::load(&cli.config, &cli.env) {
            Ok(s) => {
                println!(
                    "profile {}: ok ({} sources, {} sinks)",
                    s.profile,
                    s.sources.len(),
                    s.sinks.len()
                );
                EXIT_OK
            }
            Err(errors) => {
                print_config_errors(&errors);
                eprintln!(
                    "{} problem{} in profile {}",
                    errors.len(),
                    if errors.len() == 1 { "" } else { "s" },
                    cli.env
                );
                EXIT_CONFIG
            }
        },
        Command::Run => run_gateway(&cli.config, &cli.env),
        Command::Decode {
            protocol,
            key,
            auth_key,
            source,
            input,
        } => decode_command(
            &cli.config,
            &cli.env,
            protocol,
            key,
            auth_key,
            source,
            &input,
        ),
    }
}

fn run_gateway(dir: &std::path::Path, env: &str) -> u8 {
    let settings = match config::load(dir, env) {
        Ok(s) => s,
        Err(errors) => {
            crate::logging::init("info");
            print_config_errors(&errors);
            return EXIT_CONFIG;
        }
    };
    crate::logging::init(settings.log.as_deref().unwrap_or("info"));
    tracing::info!(profile = %settings.profile, config = %dir.display(),
        version = env!("CARGO_PKG_VERSION"), "Starting smart-meter.");
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return EXIT_FAILURE;
        }
    };
    let result = rt.block_on(crate::run::run(
        settings,
        shutdown_signal(),
        crate::systemd::Systemd::from_env(),
    ));
    match result {
        Ok(()) => {
            tracing::info!("Stopped.");
            EXIT_OK
        }
        Err(e) => {
            tracing::error!(error = %e, "Stopped with an error.");
            EXIT_FAILURE
        }
    }
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

fn decode_command(
    dir: &std::path::Path,
    env: &str,
    protocol: Option<String>,
    key: Option<String>,
    auth_key: Option<String>,
    source: Option<String>,
    input: &str,
) -> u8 {
    let mut meter = MeterId::new("decode").ok();
    let mut from_source: Option<ProtocolConfig> = None;
    if let Some(name) = &source {
        let settings = match config::load(dir, env) {
            Ok(s) => s,
            Err(errors) => {
                print_config_errors(&errors);
                return EXIT_CONFIG;
            }
        };
        match config::find_source(&settings, name) {
            Some(s) => {
                meter = Some(s.meter.clone());
                from_source = Some(s.protocol);
            }
            None => {
                let names: Vec<_> = settings.sources.iter().map(|s| s.name.clone()).collect();
                eprintln!(
                    "error: no source {name:?} in profile {env}; its sources are: {}",
                    names.join(", ")
                );
                return EXIT_USAGE;
            }
        }
    }
    let protocol_config = match (&from_source, protocol, key, auth_key) {
        (Some(p), None, None, None) => p.clone(),
        (from, protocol, key, auth_key) => {
            let name = protocol
                .or_else(|| from.as_ref().map(|p| p.name().to_string()))
                .unwrap_or_else(|| "mbus-dlms".to_string());
            let mut rest = serde_json::Map::new();
            if let Some(k) = key {
                rest.insert("key".into(), serde_json::Value::String(k));
            }
            if let Some(k) = auth_key {
                rest.insert("auth_key".into(), serde_json::Value::String(k));
            }
            match ProtocolConfig::parse(&name, rest) {
                Ok(p) => {
                    let problems = p.validate();
                    if !problems.is_empty() {
                        for (k, m) in problems {
                            eprintln!("error: --{}: {m}", k.replace('_', "-"));
                        }
                        return EXIT_USAGE;
                    }
                    p
                }
                Err(problems) => {
                    for (k, m) in problems {
                        let k = if k == "protocol" {
                            "protocol".to_string()
                        } else {
                            k.replace('_', "-")
                        };
                        eprintln!("error: --{k}: {m}");
                    }
                    return EXIT_USAGE;
                }
            }
        }
    };
    let raw = match crate::decode::read_input(input) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: cannot read {input}: {e}");
            return EXIT_FAILURE;
        }
    };
    let Some(meter) = meter else {
        return EXIT_FAILURE;
    };
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let summary = crate::decode::decode(
        &protocol_config,
        meter,
        &raw,
        &mut stdout.lock(),
        &mut stderr.lock(),
    );
    match summary {
        Ok(s) if s.errors == 0 && s.readings > 0 => EXIT_OK,
        Ok(s) => {
            if s.readings == 0 && s.errors == 0 {
                eprintln!("error: framing: no complete frame in the input");
            }
            EXIT_DATAERR
        }
        Err(_) => EXIT_FAILURE,
    }
}
