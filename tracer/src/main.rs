//! The `tracer` command: parse arguments, run, turn errors into one line and
//! an exit status (0 ok, 1 runtime failure, 2 usage error).

use std::process::ExitCode;

use clap::Parser;
use tracer::{cli::Cli, error::exit_status, run::run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => log::LevelFilter::Warn,
        1 => log::LevelFilter::Info,
        _ => log::LevelFilter::Debug,
    };
    env_logger::Builder::new()
        .filter_level(level)
        .format_target(false)
        .format_timestamp(None)
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("tracer: error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tracer: error: {error:#}");
            ExitCode::from(exit_status(&error) as u8)
        }
    }
}
