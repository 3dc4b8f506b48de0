//! [`fuzz`]: runs one target's property over seeded random cases. The case count and the seed
//! come from `SWEEP_FUZZ_CASES` and `SWEEP_FUZZ_SEED`; without them a run is the same every
//! time (CI's), and `just fuzz` sets them to run on with new seeds.

use std::cell::Cell;
use std::time::Instant;

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

/// The seed of a run without `SWEEP_FUZZ_SEED`.
pub const DEFAULT_SEED: u64 = 23;

fn env_number(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    Some(
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, not {text:?}")),
    )
}

/// The cases to run: `SWEEP_FUZZ_CASES` times `weight` (a slow target runs fewer), or
/// `default` without it.
fn cases(default: u32, weight: f64) -> u32 {
    match env_number("SWEEP_FUZZ_CASES") {
        Some(n) => ((n as f64 * weight).ceil() as u32).max(1),
        None => default,
    }
}

/// The 32-byte ChaCha seed of `target` under the run's seed: each target draws its own cases.
fn rng_seed(seed: u64, target: &str) -> [u8; 32] {
    // FNV-1a of the name, then splitmix64: no dependency for a fixed, well-mixed seed.
    let mut state = target.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    }) ^ seed;
    let mut out = [0u8; 32];
    for chunk in out.chunks_mut(8) {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out
}

/// What a reader made of one case. Both pass; their tally shows that the damage reaches the
/// reader's acceptance paths as well as its refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Read,
    Refused,
}

/// Runs `property` on cases drawn from `strategy`: `default_cases` of them in a plain run,
/// `SWEEP_FUZZ_CASES × weight` when it is set. A failing case is shrunk and the test panics
/// with it and the seed that finds it again.
pub fn fuzz<S: Strategy>(
    target: &str,
    default_cases: u32,
    weight: f64,
    strategy: S,
    property: impl Fn(S::Value) -> Result<Outcome, TestCaseError>,
) {
    let cases = cases(default_cases, weight);
    let seed = env_number("SWEEP_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 2048,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &rng_seed(seed, target));
    let mut runner = TestRunner::new_with_rng(config, rng);
    let start = Instant::now();
    let read = Cell::new(0u32);
    let result = runner.run(&strategy, |case| {
        let outcome = property(case)?;
        read.set(read.get() + u32::from(outcome == Outcome::Read));
        Ok(())
    });
    let seconds = start.elapsed().as_secs_f64();
    match result {
        Ok(()) => eprintln!(
            "fuzz {target}: {cases} cases ({} read, the rest refused), seed {seed}, {seconds:.1} s",
            read.get()
        ),
        Err(TestError::Fail(reason, case)) => panic!(
            "fuzz {target} (SWEEP_FUZZ_SEED={seed}, SWEEP_FUZZ_CASES={cases}): {reason}\n\
             the smallest failing case: {case:#?}"
        ),
        Err(TestError::Abort(reason)) => panic!("fuzz {target}: aborted: {reason}"),
    }
}

/// Fails the case with `message` unless `condition` holds.
pub fn check(condition: bool, message: impl FnOnce() -> String) -> Result<(), TestCaseError> {
    match condition {
        true => Ok(()),
        false => Err(TestCaseError::fail(message())),
    }
}
