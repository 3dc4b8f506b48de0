//! Seeded weight initialisation: a [`VarBuilder`] whose new variables are drawn from the
//! trial's seed and each variable's name.

use candle_core::{DType, Device, Result, Shape, Tensor, Var};
use candle_nn::{Init, VarBuilder, VarMap};

use crate::nn::config::WeightInit;
use crate::rng::{stream, Rng};

/// What a layer's weight and bias are drawn from under `init`, for a weight of `outputs ×
/// inputs × area` (`area` is the kernel's; 1 for a dense layer).
pub(crate) fn hints(init: WeightInit, outputs: usize, inputs: usize, area: usize) -> (Init, Init) {
    let (fan_in, fan_out) = ((inputs * area) as f64, (outputs * area) as f64);
    let uniform = |bound: f64| Init::Uniform {
        lo: -bound,
        up: bound,
    };
    let fan_in_bound = uniform(1.0 / fan_in.sqrt());
    match init {
        WeightInit::Kaiming => (candle_nn::init::DEFAULT_KAIMING_NORMAL, fan_in_bound),
        WeightInit::Pytorch => (fan_in_bound, fan_in_bound),
        WeightInit::Keras => (uniform((6.0 / (fan_in + fan_out)).sqrt()), Init::Const(0.0)),
    }
}

/// A builder that registers new variables in `vars`, their values drawn from `seed` (the
/// same seed gives the same weights on every run).
pub(crate) fn seeded_var_builder(vars: &VarMap, seed: u64, device: &Device) -> VarBuilder<'static> {
    let backend = SeededVars {
        vars: vars.clone(),
        seed,
    };
    VarBuilder::from_backend(Box::new(backend), DType::F32, device.clone())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::conv::{conv2d, Conv2dConfig};
    use crate::nn::dense::dense;

    /// The mean, standard deviation and largest magnitude of `values`.
    fn moments(values: &[f32]) -> (f64, f64, f64) {
        let n = values.len() as f64;
        let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = values
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        let max = values.iter().fold(0f64, |m, &v| m.max((v as f64).abs()));
        (mean, var.sqrt(), max)
    }

    fn values(vars: &VarMap, name: &str) -> Vec<f32> {
        let data = vars.data().lock().unwrap();
        data[name]
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    }

    /// What each scheme draws: for a 3×3 convolution from 64 to 96 channels (fan in 576, fan
    /// out 864) and a dense layer from 500 to 200 units, the weights lie within the scheme's
    /// bound (uniform) or have its spread (normal), their mean is 0 and their spread is the
    /// distribution's, and the biases are the scheme's.
    #[test]
    fn each_init_draws_its_frameworks_distribution() {
        let dev = Device::Cpu;
        for init in WeightInit::ALL {
            let vars = VarMap::new();
            let vb = seeded_var_builder(&vars, 3, &dev);
            let config = Conv2dConfig {
                init,
                ..Conv2dConfig::default()
            };
            conv2d(64, 96, 3, config, vb.pp("conv")).unwrap();
            dense(500, 200, init, vb.pp("dense")).unwrap();
            for (layer, fan_in, fan_out) in [("conv", 576.0, 864.0), ("dense", 500.0, 200.0)] {
                let weight = values(&vars, &format!("{layer}.weight"));
                let bias = values(&vars, &format!("{layer}.bias"));
                let (mean, std, max) = moments(&weight);
                let fan_in_bound = 1.0 / f64::sqrt(fan_in);
                // (the bound, if uniform; the standard deviation)
                let (bound, want_std) = match init {
                    WeightInit::Kaiming => (None, f64::sqrt(2.0 / fan_in)),
                    WeightInit::Pytorch => (Some(fan_in_bound), fan_in_bound / 3f64.sqrt()),
                    WeightInit::Keras => {
                        let bound = f64::sqrt(6.0 / (fan_in + fan_out));
                        (Some(bound), bound / 3f64.sqrt())
                    }
                };
                let case = format!("{} {layer}", init.name());
                let n = weight.len() as f64;
                assert!(
                    mean.abs() < 4.0 * want_std / n.sqrt(),
                    "{case}: mean {mean}"
                );
                assert!(
                    (std / want_std - 1.0).abs() < 0.03,
                    "{case}: std {std}, want {want_std}"
                );
                match bound {
                    Some(bound) => {
                        assert!(max <= bound * (1.0 + 1e-6), "{case}: {max} > {bound}");
                        assert!(max > 0.99 * bound, "{case}: {max} fills the bound {bound}");
                    }
                    None => assert!(max > 3.0 * want_std, "{case}: normal tails reach 3σ"),
                }
                let (_, _, bias_max) = moments(&bias);
                match init {
                    WeightInit::Keras => assert_eq!(bias_max, 0.0, "{case}: zero biases"),
                    _ => {
                        assert!(
                            bias_max <= fan_in_bound * (1.0 + 1e-6),
                            "{case}: bias bound"
                        );
                        assert!(bias_max > 0.8 * fan_in_bound, "{case}: bias spread");
                    }
                }
            }
        }
    }

    /// The initialisation of trials from before `init` existed is unchanged: the default
    /// scheme gives the weights candle-nn's `linear` hints give.
    #[test]
    fn the_default_init_draws_what_candle_nns_linear_asks_for() {
        let dev = Device::Cpu;
        let (ours, candles) = (VarMap::new(), VarMap::new());
        dense(
            30,
            7,
            WeightInit::default(),
            seeded_var_builder(&ours, 5, &dev).pp("d"),
        )
        .unwrap();
        candle_nn::linear(30, 7, seeded_var_builder(&candles, 5, &dev).pp("d")).unwrap();
        for name in ["d.weight", "d.bias"] {
            assert_eq!(values(&ours, name), values(&candles, name), "{name}");
        }
    }
}
