//! [`Net`]: the classifier a trial trains (an [`Mlp`] or a [`ResNet`]), its [`ModelConfig`],
//! the [`Pass`] that tells layers whether they train, and the seeded weight initialisation.

use candle_core::{DType, Device, Result, Shape, Tensor, Var};
use candle_nn::{Init, VarBuilder, VarMap};

use crate::nn::mlp::Mlp;
use crate::nn::resnet::ResNet;
use crate::rng::{stream, Rng};

/// The network family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    Mlp,
    Resnet,
}

/// The shape of a classifier; everything but the data set's size and class count.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    pub arch: Arch,
    /// ResNet: the channels of each stage; the stem has as many as the first stage.
    pub filters: Vec<usize>,
    /// ResNet: the width of the dense head. MLP: the width of the first hidden layer.
    pub neurons: usize,
    /// MLP: the widths of the hidden layers after the first (the seed's network is 24 → 48:
    /// `neurons = 24`, `hidden = [48]`).
    pub hidden: Vec<usize>,
    /// The fraction of the last hidden layer's units dropped in training.
    pub dropout: f64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            arch: Arch::Resnet,
            filters: vec![64, 128, 256],
            neurons: 32,
            hidden: vec![48],
            dropout: 0.5,
        }
    }
}

impl ModelConfig {
    /// Why the configuration cannot be built, naming the key, if it cannot.
    pub fn problem(&self) -> Option<String> {
        if self.neurons == 0 {
            return Some("model.neurons must be at least 1".into());
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Some(format!(
                "model.dropout must be in [0, 1), not {}",
                self.dropout
            ));
        }
        if self.arch == Arch::Resnet && (self.filters.is_empty() || self.filters.contains(&0)) {
            return Some("model.filters must list at least one positive channel count".into());
        }
        if self.arch == Arch::Mlp && self.hidden.contains(&0) {
            return Some("model.hidden widths must be positive".into());
        }
        None
    }
}

/// Whether a forward pass trains (with the random stream dropout draws from) or evaluates.
pub enum Pass<'a> {
    Train(&'a mut Rng),
    Eval,
}

impl Pass<'_> {
    /// Whether layers behave as in training (batch statistics, dropout on).
    pub fn is_train(&self) -> bool {
        matches!(self, Pass::Train(_))
    }
}

/// Zeroes a fraction `p` of `xs` in training (scaling the rest by `1 / (1 - p)`); the mask
/// comes from the trial's own stream so that a seed gives the same run every time.
pub fn dropout(xs: &Tensor, p: f64, pass: &mut Pass) -> Result<Tensor> {
    let Pass::Train(rng) = pass else {
        return Ok(xs.clone());
    };
    if p == 0.0 {
        return Ok(xs.clone());
    }
    let keep = 1.0 / (1.0 - p as f32);
    let mask: Vec<f32> = (0..xs.elem_count())
        .map(|_| if rng.unit_f64() < p { 0.0 } else { keep })
        .collect();
    xs * Tensor::from_vec(mask, xs.shape(), xs.device())?
}

/// A classifier of square RGB images into `classes` labels.
pub enum Net {
    Mlp(Mlp),
    ResNet(ResNet),
}

impl Net {
    /// Builds the network for `size × size` images, its weights drawn from `seed` (the same
    /// seed gives the same weights on every run) and registered in `vars`.
    pub fn new(
        config: &ModelConfig,
        size: usize,
        classes: usize,
        seed: u64,
        vars: &VarMap,
        device: &Device,
    ) -> Result<Self> {
        let backend = SeededVars {
            vars: vars.clone(),
            seed,
        };
        let vb = VarBuilder::from_backend(Box::new(backend), DType::F32, device.clone());
        Ok(match config.arch {
            Arch::Mlp => Net::Mlp(Mlp::new(config, size, classes, vb)?),
            Arch::Resnet => Net::ResNet(ResNet::new(config, classes, vb)?),
        })
    }

    /// The logits (batch × classes) for a batch of normalised images (batch × 3 × size × size).
    pub fn forward(&self, xs: &Tensor, pass: &mut Pass) -> Result<Tensor> {
        match self {
            Net::Mlp(m) => m.forward(xs, pass),
            Net::ResNet(r) => r.forward(xs, pass),
        }
    }
}

/// A variable store whose new variables are drawn from the trial's seed and the variable's
/// name, instead of candle's CPU generator, which cannot be seeded.
struct SeededVars {
    vars: VarMap,
    seed: u64,
}

/// FNV-1a: a stable 64-bit hash of a variable's name, so its initial values do not depend on
/// the order in which layers are built.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

impl SeededVars {
    fn draw(&self, shape: &Shape, name: &str, init: Init) -> Vec<f32> {
        let mut rng = Rng::derive(self.seed, &[stream::INIT, name_hash(name)]);
        let n = shape.elem_count();
        let uniform = |rng: &mut Rng, lo: f64, hi: f64| -> Vec<f32> {
            (0..n).map(|_| rng.uniform(lo, hi) as f32).collect()
        };
        let normal = |rng: &mut Rng, mean: f64, std: f64| -> Vec<f32> {
            (0..n).map(|_| (mean + std * rng.normal()) as f32).collect()
        };
        match init {
            Init::Const(v) => vec![v as f32; n],
            Init::Uniform { lo, up } => uniform(&mut rng, lo, up),
            Init::Randn { mean, stdev } => normal(&mut rng, mean, stdev),
            Init::Kaiming {
                dist,
                fan,
                non_linearity,
            } => {
                let std = non_linearity.gain() / (fan.for_shape(shape) as f64).sqrt();
                match dist {
                    candle_nn::init::NormalOrUniform::Uniform => {
                        let bound = 3f64.sqrt() * std;
                        uniform(&mut rng, -bound, bound)
                    }
                    candle_nn::init::NormalOrUniform::Normal => normal(&mut rng, 0.0, std),
                }
            }
        }
    }
}

impl candle_nn::var_builder::SimpleBackend for SeededVars {
    fn get(&self, s: Shape, name: &str, h: Init, dtype: DType, dev: &Device) -> Result<Tensor> {
        let mut vars = self
            .vars
            .data()
            .lock()
            .expect("the variable map is never poisoned");
        if let Some(var) = vars.get(name) {
            if var.shape() != &s {
                candle_core::bail!("shape mismatch on {name}: {s:?} <> {:?}", var.shape())
            }
            return Ok(var.as_tensor().clone());
        }
        let values = self.draw(&s, name, h);
        let var = Var::from_tensor(&Tensor::from_vec(values, s, dev)?.to_dtype(dtype)?)?;
        let tensor = var.as_tensor().clone();
        vars.insert(name.to_string(), var);
        Ok(tensor)
    }

    fn get_unchecked(&self, name: &str, _dtype: DType, _dev: &Device) -> Result<Tensor> {
        candle_core::bail!("{name}: a seeded variable store needs the shape")
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.vars
            .data()
            .lock()
            .expect("the variable map is never poisoned")
            .contains_key(name)
    }
}
