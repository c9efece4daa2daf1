//! The `resilbench` binary: parse the command line, call the library, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser;

// Its arenas are committed on demand (.cargo/config.toml), so that freed memory leaves the
// resident set.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = resilbench::cli::Cli::parse();
    match resilbench::commands::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            let e = anyhow::Error::from(e);
            // Names from files (profiles, results, shards) reach the terminal escaped.
            let text = format!("{e:#}");
            eprintln!("error: {}", resilbench::table::printable_lines(&text));
            ExitCode::from(2)
        }
    }
}
