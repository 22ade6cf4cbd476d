//! Project tasks: `cargo xtask setup | build | demo | test | vm-test | dist | lint | bench | soak`.
//! Every task first runs `setup`, which makes a fresh machine able to build
//! the eBPF programs and is quick when everything is already there.

mod apt;
mod bench;
mod command;
mod debian_archive;
mod demo;
mod dist;
mod python;
mod roots;
mod setup;
mod test;
mod vm;

use std::{path::PathBuf, time::Duration};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask")]
struct Args {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what building needs: rust-src for nightly, bpf-linker built
    /// against nightly's libLLVM; mount tracefs.
    Setup,
    /// Build target/release/tracer.
    Build,
    /// Start a bundled asyncio service with known blocking calls, trace it
    /// and print the report.
    Demo,
    /// Run every test: unit tests, the integration tests (as root), then
    /// the integration tests in other kernels under qemu (vm-test).
    Test {
        /// Only tests whose name contains this.
        filter: Option<String>,
    },
    /// Run the integration tests that prove the tracer works inside Debian's
    /// cloud kernels 5.10, 6.1 and 6.12 under qemu; print a kernel × check
    /// table. Each guest's console is kept in target/vm/KERNEL.log.
    VmTest {
        /// Only this kernel (5.10, 6.1, 6.12); repeat for more.
        #[arg(long)]
        kernel: Vec<String>,
        /// Only the tests whose name contains this (boot and version always run).
        #[arg(long)]
        only: Option<String>,
    },
    /// Build what users install, in target/dist/: the static binary, a
    /// Python wheel carrying it, and a .deb (man page, shell completions).
    Dist,
    /// rustfmt and clippy, as CI runs them.
    Lint,
    /// Measure what tracing costs, beside strace and perf trace (as root):
    /// prints a table and writes target/bench/bench.{txt,json}.
    Bench {
        /// Runs of each configuration, interleaved; the median is reported.
        #[arg(long, default_value_t = 5)]
        repeats: usize,
        /// Seconds of each wrk run against the aiohttp service.
        #[arg(long, default_value_t = 5)]
        duration: u64,
        /// Measure this tracer binary instead of building target/release/tracer.
        #[arg(long)]
        tracer: Option<PathBuf>,
    },
    /// Long-running mode as a benchmark (as root): trace the demo service
    /// for N minutes with --rotate and --metrics, print the tracer's memory
    /// at the start, middle and end (target/soak/soak.txt).
    Soak {
        #[arg(long, default_value_t = 10)]
        minutes: u64,
        /// The --rotate period in seconds, compressed from the usual minutes.
        #[arg(long, default_value_t = 10)]
        rotate: u64,
    },
}

fn main() {
    let args = Args::parse();
    let result = setup::setup().and_then(|()| match args.task {
        Task::Setup => Ok(()),
        Task::Build => command::build_tracer(),
        Task::Demo => demo::demo(),
        Task::Test { filter } => test::test(filter.as_deref()),
        Task::VmTest { kernel, only } => vm::vm_test(&vm::Options {
            kernels: kernel,
            only,
        }),
        Task::Dist => dist::dist().map(drop),
        Task::Lint => test::lint(),
        Task::Bench {
            repeats,
            duration,
            tracer,
        } => bench::bench(bench::Options {
            repeats,
            duration: Duration::from_secs(duration),
            tracer,
        }),
        Task::Soak { minutes, rotate } => {
            bench::soak::soak(bench::soak::Options { minutes, rotate })
        }
    });
    if let Err(error) = result {
        eprintln!("xtask: error: {error:#}");
        std::process::exit(1);
    }
}
