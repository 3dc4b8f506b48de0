//! The search benchmark (bench/search/README.md): sweep's TPE and random search on Branin,
//! Hartmann-6 and a noisy mixed space, with 1 and 4 slots, and the time of one suggestion at
//! 1,000 and 10,000 observations.
//!
//! `cargo run --release -p sweep-search --example bench -- SEEDS > results.csv` writes one
//! row per method, function, slots and seed: the best objective after 20, 50 and 100 trials
//! (for the noisy function, the noise-free value of the trial with the best observed value).
//! `-- time` prints the suggestion timings instead.

use std::f64::consts::PI;
use std::time::Instant;

use sweep_rng::Rng;
use sweep_search::{window, Dimension, Point, Space, Tpe, Value};

/// A benchmark objective: its space, its noise-free value and its noise.
struct Objective {
    name: &'static str,
    space: Space,
    value: fn(&Point) -> f64,
    noise: f64,
}

fn float(p: &Point, d: usize) -> f64 {
    match p[d] {
        Value::Float(x) => x,
        Value::Int(k) => k as f64,
        Value::Choice(c) => c as f64,
    }
}

fn branin(p: &Point) -> f64 {
    let (x1, x2) = (float(p, 0), float(p, 1));
    let b = 5.1 / (4.0 * PI * PI);
    let c = 5.0 / PI;
    (x2 - b * x1 * x1 + c * x1 - 6.0).powi(2) + 10.0 * (1.0 - 1.0 / (8.0 * PI)) * x1.cos() + 10.0
}

fn hartmann6(p: &Point) -> f64 {
    const ALPHA: [f64; 4] = [1.0, 1.2, 3.0, 3.2];
    const A: [[f64; 6]; 4] = [
        [10.0, 3.0, 17.0, 3.5, 1.7, 8.0],
        [0.05, 10.0, 17.0, 0.1, 8.0, 14.0],
        [3.0, 3.5, 1.7, 10.0, 17.0, 8.0],
        [17.0, 8.0, 0.05, 10.0, 0.1, 14.0],
    ];
    const P: [[f64; 6]; 4] = [
        [0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886],
        [0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991],
        [0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650],
        [0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381],
    ];
    -(0..4)
        .map(|i| {
            let inner: f64 = (0..6)
                .map(|j| A[i][j] * (float(p, j) - P[i][j]).powi(2))
                .sum();
            ALPHA[i] * (-inner).exp()
        })
        .sum::<f64>()
}

/// A training-like loss over lr (log), neurons (integer, log), optimizer (choice) and dropout:
/// each optimizer has its own best learning rate; the minimum is 0.
fn mixed(p: &Point) -> f64 {
    let (lr, neurons, optimizer, dropout) =
        (float(p, 0), float(p, 1), float(p, 2) as usize, float(p, 3));
    let best_lr = [-3.0, -1.5, -3.5][optimizer];
    let offset = [0.0, 0.1, 0.05][optimizer];
    0.5 * (lr.log10() - best_lr).powi(2)
        + 0.05 * (neurons.log2() - 7.0).powi(2)
        + (dropout - 0.3).powi(2)
        + offset
}

fn objectives() -> Vec<Objective> {
    let f = |low, high| Dimension::Float {
        low,
        high,
        log: false,
    };
    let named = |dims: Vec<(&str, Dimension)>| {
        Space::new(dims.into_iter().map(|(n, d)| (n.to_string(), d)).collect())
            .expect("a valid space")
    };
    vec![
        Objective {
            name: "branin",
            space: named(vec![("x1", f(-5.0, 10.0)), ("x2", f(0.0, 15.0))]),
            value: branin,
            noise: 0.0,
        },
        Objective {
            name: "hartmann6",
            space: named(
                ["x1", "x2", "x3", "x4", "x5", "x6"]
                    .into_iter()
                    .map(|n| (n, f(0.0, 1.0)))
                    .collect(),
            ),
            value: hartmann6,
            noise: 0.0,
        },
        Objective {
            name: "noisy_mixed",
            space: named(vec![
                (
                    "lr",
                    Dimension::Float {
                        low: 1e-5,
                        high: 1.0,
                        log: true,
                    },
                ),
                (
                    "neurons",
                    Dimension::Int {
                        low: 8,
                        high: 512,
                        log: true,
                    },
                ),
                (
                    "optimizer",
                    Dimension::Choice(vec!["adam".into(), "sgd".into(), "rmsprop".into()]),
                ),
                ("dropout", f(0.0, 0.9)),
            ]),
            value: mixed,
            noise: 0.1,
        },
    ]
}

const BUDGETS: [usize; 3] = [20, 50, 100];

/// The best noise-free value after each budget, of the trial with the best observed value.
fn run(objective: &Objective, seed: u64, lag: Option<usize>) -> [f64; 3] {
    let tpe = Tpe::default();
    let mut noise = Rng::derive(seed, &[0x006e_6f69_7365]);
    let mut trials: Vec<(Point, f64, f64)> = Vec::new();
    for k in 0..BUDGETS[2] {
        let point = match lag {
            None => objective.space.random_point(seed, k),
            Some(lag) => {
                let w = window(k, lag);
                let observations: Vec<(Point, f64)> = trials[..w]
                    .iter()
                    .map(|(p, y, _)| (p.clone(), *y))
                    .collect();
                let pending: Vec<Point> = trials[w..].iter().map(|(p, ..)| p.clone()).collect();
                tpe.suggest(&objective.space, seed, k, &observations, &pending)
                    .expect("points of the space")
                    .point
            }
        };
        let truth = (objective.value)(&point);
        let observed = truth + objective.noise * noise.normal();
        trials.push((point, observed, truth));
    }
    BUDGETS.map(|budget| {
        trials[..budget]
            .iter()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .expect("at least one trial")
            .2
    })
}

fn time_suggestions() {
    let objective = &objectives()[1];
    let tpe = Tpe::default();
    for n in [1_000usize, 10_000] {
        let observations: Vec<(Point, f64)> = (0..n)
            .map(|k| {
                let p = objective.space.random_point(1, k);
                let y = (objective.value)(&p);
                (p, y)
            })
            .collect();
        let pending: Vec<Point> = (n..n + 3)
            .map(|k| objective.space.random_point(1, k))
            .collect();
        let reps = if n > 5_000 { 5 } else { 20 };
        let mut times: Vec<f64> = (0..reps)
            .map(|r| {
                let start = Instant::now();
                let s = tpe
                    .suggest(&objective.space, 1, n + 3 + r, &observations, &pending)
                    .expect("points of the space");
                std::hint::black_box(s);
                start.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        times.sort_by(f64::total_cmp);
        println!(
            "sweep TPE, hartmann6 (6 dims), {n} observations + 3 pending: median {:.2} ms, min {:.2} ms over {reps}",
            times[reps / 2],
            times[0]
        );
    }
}

fn main() {
    let arg = std::env::args().nth(1).unwrap_or_else(|| "30".into());
    if arg == "time" {
        time_suggestions();
        return;
    }
    let seeds: u64 = arg.parse().expect("the number of seeds, or `time`");
    println!("method,function,slots,seed,best20,best50,best100");
    for objective in objectives() {
        for seed in 0..seeds {
            for (method, slots, lag) in [
                ("sweep_random", 1, None),
                ("sweep_tpe", 1, Some(1)),
                ("sweep_tpe", 4, Some(4)),
                ("sweep_tpe_lag8", 4, Some(8)),
            ] {
                let best = run(&objective, seed, lag);
                println!(
                    "{method},{},{slots},{seed},{},{},{}",
                    objective.name, best[0], best[1], best[2]
                );
            }
        }
    }
}
