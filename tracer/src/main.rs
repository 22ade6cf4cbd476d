//! The `tracer` command: parse arguments, run, turn errors into one line and
//! an exit status (0 ok, 1 runtime failure, 2 usage error).

use std::process::ExitCode;

use clap::Parser;
use tracer::{
    cli::{Action, Cli},
    error::exit_status,
    install::generate::generate,
    recording,
    run::run,
};

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
    match &cli.action {
        Some(Action::Report(args)) => return exit(recording::report::report(args)),
        Some(Action::Generate(args)) => return exit(generate(args, &mut std::io::stdout())),
        None => {}
    }
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
    exit(runtime.block_on(run(cli)))
}

fn exit(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tracer: error: {}", one_line(&error));
            ExitCode::from(exit_status(&error) as u8)
        }
    }
}

/// The error and its causes joined by ": ", leaving out a cause that an
/// outer message already quotes (`cannot write F: {source}`).
fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}
