//! `tracer generate man DIR|completions SHELL`: the man pages and shell
//! completions, rendered from the real CLI so that they never drift from it.
//! Hidden: packages run it at build time, users never need it.

use std::{io::Write, path::PathBuf};

use anyhow::Context;
use clap::{Args, CommandFactory, Subcommand};
use clap_complete::Shell;

use crate::cli::Cli;

#[derive(Args, Debug)]
pub struct GenerateArgs {
    #[command(subcommand)]
    pub what: Generated,
}

#[derive(Subcommand, Debug)]
pub enum Generated {
    /// The man pages (roff) of tracer and its subcommands, into DIR:
    /// tracer.1, tracer-report.1, tracer-top.1.
    Man {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// The completion script of SHELL.
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
}

/// Writes what `args` asks for: man pages into their directory, a
/// completion script to `out`.
pub fn generate(args: &GenerateArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let mut command = Cli::command();
    match &args.what {
        Generated::Man { dir } => clap_mangen::generate_to(command, dir)
            .with_context(|| format!("cannot write the man pages into {}", dir.display()))?,
        &Generated::Completions { shell } => {
            clap_complete::generate(shell, &mut command, "tracer", out);
        }
    }
    out.flush().context("cannot write to stdout")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generated(what: Generated) -> String {
        let mut out = Vec::new();
        generate(&GenerateArgs { what }, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn man_pages_of_tracer_report_and_top_but_not_generate() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path().to_path_buf();
        assert!(generated(Generated::Man { dir: dir.clone() }).is_empty());
        let mut pages: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        pages.sort();
        assert_eq!(pages, ["tracer-report.1", "tracer-top.1", "tracer.1"]);
        let man = std::fs::read_to_string(dir.join("tracer.1")).unwrap();
        assert!(man.contains(".TH tracer 1"), "{man}");
        assert!(man.contains("\\-\\-threshold"), "{man}");
        assert!(man.contains("tracer\\-report(1)"), "{man}");
        assert!(!man.contains("generate"), "{man}");
        let report = std::fs::read_to_string(dir.join("tracer-report.1")).unwrap();
        assert!(report.contains(".TH tracer-report 1"), "{report}");
        let top = std::fs::read_to_string(dir.join("tracer-top.1")).unwrap();
        assert!(top.contains(".TH tracer-top 1"), "{top}");
        assert!(top.contains("\\-\\-children"), "{top}");
    }

    #[test]
    fn completions_offer_the_flags() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let script = generated(Generated::Completions { shell });
            assert!(script.contains("all-syscalls"), "{shell}: {script}");
        }
    }
}
