//! `sweep`: a hyperparameter grid-search orchestrator for image classifiers. This binary only
//! turns arguments into calls to the library crates and picks the exit code.

mod args;
mod commands;
mod progress;
mod results;
mod run;

use clap::Parser;

// glibc's allocator hands every large tensor buffer back to the OS after each training step
// and pays for it in page faults on the next one; mimalloc keeps them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = args::Cli::parse();
    let code = match commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            commands::exit_code_of(&err)
        }
    };
    std::process::exit(code);
}
