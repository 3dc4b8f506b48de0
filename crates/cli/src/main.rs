//! `sweep`: a hyperparameter grid-search orchestrator for image classifiers. This binary only
//! turns arguments into calls to the library crates and picks the exit code.

mod args;
mod commands;
mod errors;
mod progress;
mod results;
mod run;
mod serve;

use clap::Parser;

// glibc's allocator hands every large tensor buffer back to the OS after each training step
// and pays for it in page faults on the next one; mimalloc keeps them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its `mimalloc.h`; the Rust bindings have no name for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() {
    // Never hand freed pages back to the OS: a training step frees and reallocates the same
    // large buffers, and re-faulting zeroed pages cost ~10% of a CPU step. The memory goes
    // back when the trial process ends.
    // SAFETY: sets a global option before any thread is started.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    // candle runs its own element-wise ops (the dense head's, the loss's) on a pool of
    // spinning workers, one per core by default, beside rayon's, which runs our kernels; on
    // 2 cores the two pools spun in each other's way. Without candle's workers (its ops then
    // run on the calling thread) the MLP step ran 7.6% faster and the ResNet step 3.6%
    // (paired, 2 threads). A user's own `CANDLE_NUM_THREADS` is kept.
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // Edition 2021: a safe call; no thread has started yet, so nothing reads the
        // environment concurrently.
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    let cli = args::Cli::parse();
    if !matches!(cli.command, args::Command::Trial(_)) {
        // Rust ignores SIGPIPE, so `println!` to a closed pipe (`sweep query … | head`)
        // panics; a command-line tool should end quietly, as with the default action. A
        // trial process keeps it ignored: its checkpoint matters more than its stdout.
        // SAFETY: restores a signal's default action before any thread is started.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let code = match commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            err.exit_code()
        }
    };
    std::process::exit(code);
}
