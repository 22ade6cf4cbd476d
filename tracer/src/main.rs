//! The `tracer` command: parse arguments, run, turn errors into one line and
//! an exit status (0 ok, 1 runtime failure, 2 usage error).

use std::process::ExitCode;

use clap::Parser;
use tracer::{
    cli::{Action, Cli},
    error::exit_status,
    install::generate::generate,
    live, recording,
    run::{run, top},
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (verbose, is_top) = match &cli.action {
        Some(Action::Top(args)) => (args.verbose, true),
        _ => (cli.trace.verbose, false),
    };
    let level = match verbose {
        0 => log::LevelFilter::Warn,
        1 => log::LevelFilter::Info,
        _ => log::LevelFilter::Debug,
    };
    let mut logger = env_logger::Builder::new();
    logger
        .filter_level(level)
        .format_target(false)
        .format_timestamp(None);
    if is_top {
        // The live view holds the terminal: log lines wait (see live::log).
        logger.target(env_logger::Target::Pipe(Box::new(
            live::log::Sink::default(),
        )));
    }
    logger.init();
    let args = match cli.action {
        Some(Action::Report(args)) => return exit(recording::report::report(&args)),
        Some(Action::Generate(args)) => return exit(generate(&args, &mut std::io::stdout())),
        Some(Action::Top(args)) => args,
        None => cli.trace,
    };
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
    let result = runtime.block_on(async {
        match is_top {
            true => top(args).await,
            false => run(args).await,
        }
    });
    live::log::replay();
    exit(result)
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
