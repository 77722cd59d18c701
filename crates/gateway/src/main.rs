//! The `smart-meter` binary: see the crate docs and README.

fn main() -> std::process::ExitCode {
    smart_meter::cli::main()
}
