//! The training-step benchmark behind `sweep bench`: the seed's ResNet and MLP on random
//! 64×64 batches, forward + backward + optimizer (and inference), timed after a warm-up; and
//! [`layers`], the ResNet's convolutions one shape at a time (`sweep bench --layers`).

pub mod layers;

use std::time::Instant;

use candle_core::{Device, Result, Tensor};
use candle_nn::VarMap;

use crate::nn::{Arch, ModelConfig, Net};
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

    /// The floating-point operations of one image's step in the network's products (the
    /// convolutions and dense layers; batch norm, activations and pooling are a few per
    /// element, not counted). A training step is three products per layer (forward, input
    /// gradient, weight gradient), less the first layer's input gradient, which nothing needs.
    pub fn flops_per_image(&self) -> f64 {
        let layers = product_flops(&self.model, self.size, self.classes);
        match self.step {
            Step::Infer => layers.iter().sum(),
            Step::Train => {
                3.0 * layers.iter().sum::<f64>() - layers.first().copied().unwrap_or(0.0)
            }
        }
    }
}

/// The forward products' floating-point operations per image, layer by layer from the input
/// (2 per multiply-add), following `nn/resnet.rs` (through [`layers::resnet_convs`]) and
/// `nn/mlp.rs`.
fn product_flops(model: &ModelConfig, size: usize, classes: usize) -> Vec<f64> {
    let dense = |inputs: usize, outputs: usize| 2.0 * (inputs * outputs) as f64;
    let mut flops = Vec::new();
    match model.arch {
        Arch::Mlp => {
            let mut inputs = size * size * crate::data::CHANNELS;
            for &width in std::iter::once(&model.neurons).chain(&model.hidden) {
                flops.push(dense(inputs, width));
                inputs = width;
            }
            flops.push(dense(inputs, classes));
        }
        Arch::Resnet => {
            let (convs, channels) = layers::resnet_convs(model, size, 1);
            flops.extend(convs.iter().map(|conv| conv.geometry.flops()));
            flops.push(dense(channels, model.neurons));
            flops.push(dense(model.neurons, classes));
        }
    }
    flops
}

/// The f32 matrix product's best rate on this machine, in GFLOP/s: the kernels our
/// convolutions and dense layers call (`sweep_kernels::matmul`), on a `size³` product split over
/// `threads`, best of `rounds` after one warm-up. The ceiling a training step's products
/// could reach.
pub fn gemm_peak(size: usize, threads: usize, rounds: usize) -> f64 {
    let mut rng = Rng::new(3);
    let lhs: Vec<f32> = (0..size * size).map(|_| rng.normal() as f32).collect();
    let rhs: Vec<f32> = (0..size * size).map(|_| rng.normal() as f32).collect();
    let mut dst = vec![0f32; size * size];
    let mut best = f64::INFINITY;
    for round in 0..=rounds {
        let started = Instant::now();
        sweep_kernels::matmul::gemm(
            (size, size, size),
            &mut dst,
            (&lhs, (size, 1)),
            (&rhs, (size, 1)),
            threads,
        );
        if round > 0 {
            best = best.min(started.elapsed().as_secs_f64());
        }
    }
    2.0 * (size as f64).powi(3) / best / 1e9
}

/// One timed case: the median step and the images per second it gives.
#[derive(Debug, Clone)]
pub struct Measurement {
    pub case: Case,
    pub batch: usize,
    pub median_ms: f64,
    pub images_per_second: f64,
    /// The products' arithmetic rate: [`Case::flops_per_image`] × images per second.
    pub gflops: f64,
}

impl std::fmt::Display for Measurement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let step = match self.case.step {
            Step::Train => "train",
            Step::Infer => "infer",
        };
        write!(
            f,
            "{:<10} {}x{} {step}  {:>9.1} img/s  (median {:.2} ms per batch of {}; {:.3} GFLOP \
             per image, {:.1} GFLOP/s)",
            self.case.name,
            self.case.size,
            self.case.size,
            self.images_per_second,
            self.median_ms,
            self.batch,
            self.case.flops_per_image() / 1e9,
            self.gflops
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
                let (logits, tape) = net.forward_train(&xs, &mut rng)?;
                let loss = candle_nn::loss::cross_entropy(&logits, &ys)?;
                optimizer.step(&net.backward(&loss, tape)?)?;
                loss.to_scalar::<f32>()?;
            }
            Step::Infer => {
                net.forward(&xs)?.to_vec2::<f32>()?;
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
        gflops: case.flops_per_image() * batch as f64 / median / 1e9,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed's ResNet step is ≈ 0.69 GFLOP per 64×64 image (the figure issue 15 gives);
    /// counted by hand here for a small net: stem 3→4 7×7/2 on 8×8 → 4×4 (2·3·4·49·16),
    /// pool → 2×2, stage 0 (4→4, identity skip): four 3×3 convs at 2×2 (2·4·4·9·4 each),
    /// head 4→5, output 5→3.
    #[test]
    fn flops_count_every_product_of_the_network() {
        let model = ModelConfig {
            filters: vec![4],
            neurons: 5,
            ..ModelConfig::default()
        };
        let want = [
            2.0 * (3 * 4 * 49 * 16) as f64,
            2.0 * (4 * 4 * 9 * 4) as f64,
            2.0 * (4 * 4 * 9 * 4) as f64,
            2.0 * (4 * 4 * 9 * 4) as f64,
            2.0 * (4 * 4 * 9 * 4) as f64,
            2.0 * 20.0,
            2.0 * 15.0,
        ];
        assert_eq!(product_flops(&model, 8, 3), want);
        let seed = &seed_cases(64)[0];
        let gflop = seed.flops_per_image() / 1e9;
        assert!((0.6..0.8).contains(&gflop), "{gflop}");
    }
}
