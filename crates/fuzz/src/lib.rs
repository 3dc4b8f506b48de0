//! `sweep-fuzz`: fuzz targets that run on stable Rust, as seeded property tests (proptest's
//! runner with a fixed ChaCha seed): the sweep-file reader, the data CSV reader, the
//! `events.jsonl` ingest and the checkpoint loader, each fed valid seeds damaged by
//! mutations (truncations, bit flips, insertions and deletions, huge numbers, NaN and
//! infinities, invalid UTF-8, giant lines) plus deep-nesting cases run directly. The property
//! is the same everywhere: no panic, no abort, and every refusal names its file.
//!
//! `cargo test --release -p sweep-fuzz` runs a fixed, small number of cases (CI's);
//! `SWEEP_FUZZ_CASES` and `SWEEP_FUZZ_SEED` change them, and `just fuzz` runs on with new
//! seeds until stopped (see the README).
#![cfg(test)]

mod checkpoint;
mod data_csv;
mod event_log;
mod mutation;
mod runner;
mod sweep_file;
