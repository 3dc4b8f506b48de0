//! The training-step benchmark behind `sweep bench`: the seed's ResNet and MLP on random
//! 64×64 batches, forward + backward + optimizer (and inference), timed after a warm-up.

use std::time::Instant;

use candle_core::{Device, Result, Tensor};
use candle_nn::VarMap;

use crate::nn::{Arch, ModelConfig, Net, Pass};
use crate::rng::Rng;
use crate::train::optim::{Optimizer, OptimizerKind};

/// What to time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Train,
    Infer,
}

/// One benchmark case.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub model: ModelConfig,
    pub size: usize,
    pub classes: usize,
    pub step: Step,
}

impl Case {
    /// `name step`, e.g. `resnet train`: what `sweep bench --case` matches.
    pub fn label(&self) -> String {
        let step = match self.step {
            Step::Train => "train",
            Step::Infer => "infer",
        };
        format!("{} {step}", self.name)
    }
}

/// One timed case: the median step and the images per second it gives.
#[derive(Debug, Clone)]
pub struct Measurement {
    pub case: Case,
    pub batch: usize,
    pub median_ms: f64,
    pub images_per_second: f64,
}

impl std::fmt::Display for Measurement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let step = match self.case.step {
            Step::Train => "train",
            Step::Infer => "infer",
        };
        write!(
            f,
            "{:<10} {}x{} {step}  {:>9.1} img/s  (median {:.2} ms per batch of {})",
            self.case.name,
            self.case.size,
            self.case.size,
            self.images_per_second,
            self.median_ms,
            self.batch
        )
    }
}

/// The number of threads candle's CPU kernels (and ours) use: `RAYON_NUM_THREADS`, else the
/// machine's cores.
pub fn threads() -> usize {
    candle_core::utils::get_num_threads()
}

/// The seed's models at 64×64 with 100 classes: ResNet [64, 128, 256] + dense 32 and the MLP
/// 24 → 48, trained, and the ResNet in inference.
pub fn seed_cases(size: usize) -> Vec<Case> {
    let resnet = ModelConfig::default();
    let mlp = ModelConfig {
        arch: Arch::Mlp,
        neurons: 24,
        hidden: vec![48],
        ..ModelConfig::default()
    };
    let case = |name: &str, model: &ModelConfig, step| Case {
        name: name.to_string(),
        model: model.clone(),
        size,
        classes: 100,
        step,
    };
    vec![
        case("resnet", &resnet, Step::Train),
        case("mlp-24-48", &mlp, Step::Train),
        case("resnet", &resnet, Step::Infer),
    ]
}

/// Times `steps` steps of `case` after `warmup` untimed ones.
pub fn measure(
    case: &Case,
    batch: usize,
    warmup: usize,
    steps: usize,
    device: &Device,
) -> Result<Measurement> {
    let vars = VarMap::new();
    let net = Net::new(&case.model, case.size, case.classes, 1, &vars, device)?;
    let mut optimizer = Optimizer::new(OptimizerKind::Adam, 1e-3, 0.0, &vars)?;
    let mut rng = Rng::new(2);
    let pixels: Vec<f32> = (0..batch * 3 * case.size * case.size)
        .map(|_| rng.normal() as f32)
        .collect();
    let xs = Tensor::from_vec(pixels, (batch, 3, case.size, case.size), device)?;
    let labels: Vec<u32> = (0..batch)
        .map(|i| ((i * 37 + 11) % case.classes) as u32)
        .collect();
    let ys = Tensor::from_vec(labels, batch, device)?;
    let mut times = Vec::with_capacity(steps);
    for i in 0..warmup + steps {
        let started = Instant::now();
        match case.step {
            Step::Train => {
                let logits = net.forward(&xs, &mut Pass::Train(&mut rng))?;
                let loss = candle_nn::loss::cross_entropy(&logits, &ys)?;
                optimizer.step(&loss.backward()?)?;
                loss.to_scalar::<f32>()?;
            }
            Step::Infer => {
                net.forward(&xs, &mut Pass::Eval)?.to_vec2::<f32>()?;
            }
        }
        device.synchronize()?;
        if i >= warmup {
            times.push(started.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    Ok(Measurement {
        case: case.clone(),
        batch,
        median_ms: median * 1e3,
        images_per_second: batch as f64 / median,
    })
}
