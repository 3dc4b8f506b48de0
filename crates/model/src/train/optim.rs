//! [`Optimizer`]: SGD (with optional momentum, optionally Nesterov's), Adam, AdamW and
//! RMSprop, with PyTorch's semantics and defaults, and their state as named tensors for the
//! checkpoint.
//!
//! - `sgd`: `v ← momentum·v + g; p ← p − lr·v`, or with Nesterov `p ← p − lr·(g +
//!   momentum·v)` (`torch.optim.SGD`, dampening 0).
//! - `adam`: β₁ 0.9, β₂ 0.999, ε 1e-8, bias-corrected (`torch.optim.Adam`, not AMSGrad).
//! - `adamw`: Adam after the decoupled decay `p ← p·(1 − lr·λ)` (`torch.optim.AdamW`,
//!   Loshchilov & Hutter).
//! - `rmsprop`: α 0.99, ε 1e-8, no momentum, not centred (`torch.optim.RMSprop`).
//!
//! Weight decay λ is PyTorch's: for `sgd`, `adam` and `rmsprop` the coupled L2 `g ← g + λ·p`
//! before the update, for `adamw` the decoupled decay above. It is 0 unless set
//! ([`Optimizer::with_weight_decay`]), for `adamw` too (torch's AdamW defaults to 0.01).
//!
//! ε is added to the root of the (bias-corrected) second moment, as PyTorch and Keras do; it
//! may be set ([`Optimizer::with_eps`]): Keras's default is 1e-7.

use std::collections::HashMap;

use std::cell::RefCell;

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, InplaceOp2, Layout, Result, Tensor, Var};
use candle_nn::VarMap;
use rayon::prelude::*;

use crate::ops::storage::f32_slice;
use crate::unknown_name::{parse_name, UnknownName};

/// Parameters per parallel task of an update: large enough that scheduling costs nothing
/// beside the work, so small tensors stay one task.
const UPDATE_CHUNK: usize = 1 << 15;

/// Which update rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    Sgd,
    Adam,
    Rmsprop,
    Adamw,
}

impl OptimizerKind {
    /// Every optimizer, in the order of its list of names (the seed's grid order, then
    /// `adamw`).
    pub const ALL: [OptimizerKind; 4] = [
        OptimizerKind::Adam,
        OptimizerKind::Sgd,
        OptimizerKind::Rmsprop,
        OptimizerKind::Adamw,
    ];

    /// The name used in sweep files, on the command line and in the database.
    pub fn name(&self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adam => "adam",
            OptimizerKind::Rmsprop => "rmsprop",
            OptimizerKind::Adamw => "adamw",
        }
    }
}

impl std::str::FromStr for OptimizerKind {
    type Err = UnknownName;

    fn from_str(text: &str) -> std::result::Result<Self, UnknownName> {
        parse_name("optimizer", text, &Self::ALL, Self::name)
    }
}

impl OptimizerKind {
    fn slots(self, momentum: f64) -> &'static [&'static str] {
        match self {
            OptimizerKind::Sgd if momentum == 0.0 => &[],
            OptimizerKind::Sgd => &["momentum"],
            OptimizerKind::Adam | OptimizerKind::Adamw => &["m", "v"],
            OptimizerKind::Rmsprop => &["square_avg"],
        }
    }
}

const ADAM_BETA1: f64 = 0.9;
const ADAM_BETA2: f64 = 0.999;
/// Adam's and RMSprop's ε unless told otherwise: PyTorch's.
pub const OPTIMIZER_EPS: f64 = 1e-8;
const RMSPROP_ALPHA: f64 = 0.99;

/// Whether a variable is trained; batch norm's running statistics are variables too, but the
/// layer updates them itself.
fn is_trainable(name: &str) -> bool {
    !(name.ends_with("running_mean") || name.ends_with("running_var"))
}

/// A parameter and its optimizer state: host vectors on the CPU (updated in one fused pass),
/// tensors elsewhere.
struct Param {
    name: String,
    var: Var,
    slots: Slots,
}

enum Slots {
    Host(Vec<Vec<f32>>),
    Device(Vec<Tensor>),
}

/// One fused, in-place update of a CPU parameter from its gradient: a single pass over the
/// weights instead of a dozen tensor operations with their temporaries.
struct FusedStep<'a> {
    kind: OptimizerKind,
    lr: f32,
    momentum: f32,
    nesterov: bool,
    /// λ: coupled (added to the gradient) or, for AdamW, decoupled.
    weight_decay: f32,
    /// AdamW's `1 − lr·λ`, rounded from f64.
    decay: f32,
    eps: f32,
    step: i32,
    slots: RefCell<&'a mut Vec<Vec<f32>>>,
}

impl InplaceOp2 for FusedStep<'_> {
    fn name(&self) -> &'static str {
        "sweep-optimizer-step"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let g = f32_slice(s2, l2, "the optimizer", "the gradient")?;
        let (CpuStorage::F32(data), Some((start, end))) = (s1, l1.contiguous_offsets()) else {
            candle_core::bail!("the fused optimizer needs contiguous f32 tensors")
        };
        let p = &mut data[start..end];
        let mut slots = self.slots.borrow_mut();
        let lr = self.lr;
        // Elementwise, so parallel chunks give the same result on any thread count.
        let c = UPDATE_CHUNK;
        // The coupled decay: the gradient the rules below see (AdamW's λ is 0 here).
        let wd = coupled_decay(self.kind, self.weight_decay);
        match self.kind {
            OptimizerKind::Sgd if self.momentum == 0.0 => {
                p.par_chunks_mut(c).zip(g.par_chunks(c)).for_each(|(p, g)| {
                    p.iter_mut()
                        .zip(g)
                        .for_each(|(p, g)| *p -= lr * (g + wd * *p));
                });
            }
            OptimizerKind::Sgd => {
                let (momentum, nesterov) = (self.momentum, self.nesterov);
                let v = &mut slots[0];
                p.par_chunks_mut(c)
                    .zip(g.par_chunks(c))
                    .zip(v.par_chunks_mut(c))
                    .for_each(|((p, g), v)| {
                        for ((p, g), v) in p.iter_mut().zip(g).zip(v.iter_mut()) {
                            let g = g + wd * *p;
                            *v = momentum * *v + g;
                            *p -= lr * if nesterov { g + momentum * *v } else { *v };
                        }
                    });
            }
            OptimizerKind::Adam | OptimizerKind::Adamw => {
                let (b1, b2, eps) = (ADAM_BETA1 as f32, ADAM_BETA2 as f32, self.eps);
                // 1 − β in f64, then rounded: from the rounded β₂ it would be 1.3e-5 off.
                let (one_b1, one_b2) = ((1.0 - ADAM_BETA1) as f32, (1.0 - ADAM_BETA2) as f32);
                let c1 = 1.0 / (1.0 - ADAM_BETA1.powi(self.step)) as f32;
                let c2 = 1.0 / (1.0 - ADAM_BETA2.powi(self.step)) as f32;
                let decay = self.decay;
                let [m, v] = &mut slots[..] else {
                    candle_core::bail!("adam keeps two slots")
                };
                p.par_chunks_mut(c)
                    .zip(g.par_chunks(c))
                    .zip(m.par_chunks_mut(c))
                    .zip(v.par_chunks_mut(c))
                    .for_each(|(((p, g), m), v)| {
                        for (((p, g), m), v) in
                            p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut())
                        {
                            let g = g + wd * *p;
                            *p *= decay;
                            *m = b1 * *m + one_b1 * g;
                            *v = b2 * *v + one_b2 * g * g;
                            *p -= lr * (*m * c1) / ((*v * c2).sqrt() + eps);
                        }
                    });
            }
            OptimizerKind::Rmsprop => {
                let (alpha, eps) = (RMSPROP_ALPHA as f32, self.eps);
                let one_alpha = (1.0 - RMSPROP_ALPHA) as f32;
                let sq = &mut slots[0];
                p.par_chunks_mut(c)
                    .zip(g.par_chunks(c))
                    .zip(sq.par_chunks_mut(c))
                    .for_each(|((p, g), sq)| {
                        for ((p, g), s) in p.iter_mut().zip(g).zip(sq.iter_mut()) {
                            let g = g + wd * *p;
                            *s = alpha * *s + one_alpha * g * g;
                            *p -= lr * g / (s.sqrt() + eps);
                        }
                    });
            }
        }
        Ok(())
    }
}

/// An optimizer over every trainable variable of a [`VarMap`].
pub struct Optimizer {
    kind: OptimizerKind,
    lr: f64,
    momentum: f64,
    nesterov: bool,
    weight_decay: f64,
    eps: f64,
    step: u64,
    params: Vec<Param>,
}

impl Optimizer {
    /// An optimizer at step 0 with zeroed state.
    pub fn new(kind: OptimizerKind, lr: f64, momentum: f64, vars: &VarMap) -> Result<Self> {
        let data = vars
            .data()
            .lock()
            .expect("the variable map is never poisoned");
        let mut names: Vec<&String> = data.keys().filter(|n| is_trainable(n)).collect();
        names.sort();
        let params = names
            .into_iter()
            .map(|name| {
                let var = data[name].clone();
                let count = kind.slots(momentum).len();
                let slots = if var.device().is_cpu() {
                    Slots::Host(vec![vec![0f32; var.elem_count()]; count])
                } else {
                    Slots::Device(
                        (0..count)
                            .map(|_| var.as_tensor().zeros_like())
                            .collect::<Result<_>>()?,
                    )
                };
                Ok(Param {
                    name: name.clone(),
                    var,
                    slots,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            kind,
            lr,
            momentum,
            nesterov: false,
            weight_decay: 0.0,
            eps: OPTIMIZER_EPS,
            step: 0,
            params,
        })
    }

    /// The optimizer with Adam's and RMSprop's ε set to `eps` (SGD has none).
    pub fn with_eps(self, eps: f64) -> Self {
        Self { eps, ..self }
    }

    /// The optimizer with weight decay λ: coupled L2 for `sgd`, `adam` and `rmsprop`,
    /// decoupled for `adamw`.
    pub fn with_weight_decay(self, weight_decay: f64) -> Self {
        Self {
            weight_decay,
            ..self
        }
    }

    /// The optimizer with SGD's momentum Nesterov's (the others have none).
    pub fn with_nesterov(self, nesterov: bool) -> Self {
        Self { nesterov, ..self }
    }

    /// The learning rate.
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// Sets the learning rate of the updates from now on: the schedule's.
    pub fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// How many updates were applied.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// AdamW's factor `1 − lr·λ` (1 for the others, whose decay is coupled: [`coupled_decay`]).
    fn decoupled_decay(&self) -> f64 {
        match self.kind {
            OptimizerKind::Adamw => 1.0 - self.lr * self.weight_decay,
            OptimizerKind::Sgd | OptimizerKind::Adam | OptimizerKind::Rmsprop => 1.0,
        }
    }

    /// Applies one update from the gradients of a backward pass.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step += 1;
        let t = self.step as i32;
        let decay = self.decoupled_decay();
        for param in &mut self.params {
            let Some(g) = grads.get(param.var.as_tensor()) else {
                continue;
            };
            let p = param.var.as_tensor();
            let slots = match &mut param.slots {
                Slots::Host(host) => {
                    let op = FusedStep {
                        kind: self.kind,
                        lr: self.lr as f32,
                        momentum: self.momentum as f32,
                        nesterov: self.nesterov,
                        weight_decay: self.weight_decay as f32,
                        decay: decay as f32,
                        eps: self.eps as f32,
                        step: t,
                        slots: RefCell::new(host),
                    };
                    p.inplace_op2(&g.contiguous()?, &op)?;
                    continue;
                }
                Slots::Device(slots) => slots,
            };
            let wd = coupled_decay(self.kind, self.weight_decay);
            let coupled;
            let g = if wd == 0.0 {
                g
            } else {
                coupled = (g + (p * wd)?)?;
                &coupled
            };
            let decayed;
            let p = if self.kind == OptimizerKind::Adamw && self.weight_decay != 0.0 {
                decayed = (p * decay)?;
                &decayed
            } else {
                p
            };
            let update = match self.kind {
                OptimizerKind::Sgd if self.momentum == 0.0 => (g * self.lr)?,
                OptimizerKind::Sgd => {
                    let v = ((&slots[0] * self.momentum)? + g)?;
                    let update = if self.nesterov {
                        ((g + (&v * self.momentum)?)? * self.lr)?
                    } else {
                        (&v * self.lr)?
                    };
                    slots[0] = v;
                    update
                }
                OptimizerKind::Adam | OptimizerKind::Adamw => {
                    let m = ((&slots[0] * ADAM_BETA1)? + (g * (1.0 - ADAM_BETA1))?)?;
                    let v = ((&slots[1] * ADAM_BETA2)? + (g.sqr()? * (1.0 - ADAM_BETA2))?)?;
                    let m_hat = (&m / (1.0 - ADAM_BETA1.powi(t)))?;
                    let v_hat = (&v / (1.0 - ADAM_BETA2.powi(t)))?;
                    let update = ((m_hat * self.lr)? / (v_hat.sqrt()? + self.eps)?)?;
                    *slots = vec![m, v];
                    update
                }
                OptimizerKind::Rmsprop => {
                    let sq = ((&slots[0] * RMSPROP_ALPHA)? + (g.sqr()? * (1.0 - RMSPROP_ALPHA))?)?;
                    let update = ((g * self.lr)? / (sq.sqrt()? + self.eps)?)?;
                    slots[0] = sq;
                    update
                }
            };
            param.var.set(&(p - update)?)?;
        }
        Ok(())
    }

    /// The state as named tensors (`optim.<slot>.<variable>`), for a checkpoint.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let names = self.kind.slots(self.momentum);
        let mut out = Vec::new();
        for p in &self.params {
            for (i, slot) in names.iter().enumerate() {
                let tensor = match &p.slots {
                    Slots::Host(host) => {
                        Tensor::from_slice(&host[i], p.var.shape(), p.var.device())
                    }
                    Slots::Device(tensors) => Ok(tensors[i].clone()),
                };
                // A host vector of the parameter's own size always makes a tensor of its shape.
                out.push((
                    format!("optim.{slot}.{}", p.name),
                    tensor.expect("slots match their parameter"),
                ));
            }
        }
        out
    }

    /// Restores the state written by [`Optimizer::state`] after `step` updates.
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>, step: u64) -> Result<()> {
        let names = self.kind.slots(self.momentum);
        for param in &mut self.params {
            for (i, slot) in names.iter().enumerate() {
                let key = format!("optim.{slot}.{}", param.name);
                let saved = tensors.get(&key).ok_or_else(|| {
                    candle_core::Error::Msg(format!("the checkpoint has no `{key}`"))
                })?;
                match &mut param.slots {
                    Slots::Host(host) => host[i] = saved.flatten_all()?.to_vec1::<f32>()?,
                    Slots::Device(tensors) => tensors[i] = saved.to_device(param.var.device())?,
                }
            }
        }
        self.step = step;
        Ok(())
    }
}

/// The coupled decay λ that the rules add to the gradient (`g + λ·p`, PyTorch's L2): the
/// optimizer's `weight_decay`, but 0 for AdamW, whose decay is decoupled.
/// (`T` is the fused CPU step's f32 or the device path's f64; its default is 0.)
fn coupled_decay<T: Default>(kind: OptimizerKind, weight_decay: T) -> T {
    match kind {
        OptimizerKind::Adamw => T::default(),
        OptimizerKind::Sgd | OptimizerKind::Adam | OptimizerKind::Rmsprop => weight_decay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_optimizerkind_name_reads_back_as_itself() {
        crate::unknown_name::assert_names_round_trip(&OptimizerKind::ALL, OptimizerKind::name);
    }
    use candle_core::{DType, Device};

    /// One parameter p = [1.0, -2.0] with loss = 3·p₀ + 0.5·p₁², so g = [3, -2]. Returns p
    /// after `steps` updates.
    fn run(kind: OptimizerKind, lr: f64, momentum: f64, steps: usize) -> Vec<f32> {
        run_with(kind, lr, momentum, steps, |o| o)
    }

    /// [`run`] with the optimizer changed by `with` (weight decay, Nesterov).
    fn run_with(
        kind: OptimizerKind,
        lr: f64,
        momentum: f64,
        steps: usize,
        with: impl Fn(Optimizer) -> Optimizer,
    ) -> Vec<f32> {
        let vars = VarMap::new();
        let p = vars
            .get(
                2,
                "w",
                candle_nn::Init::Const(0.0),
                DType::F32,
                &Device::Cpu,
            )
            .unwrap();
        vars.data().lock().unwrap()["w"]
            .set(&Tensor::new(&[1.0f32, -2.0], &Device::Cpu).unwrap())
            .unwrap();
        let mut opt = with(Optimizer::new(kind, lr, momentum, &vars).unwrap());
        for _ in 0..steps {
            let coef = Tensor::new(&[3.0f32, 0.0], &Device::Cpu).unwrap();
            let half = Tensor::new(&[0.0f32, 0.5], &Device::Cpu).unwrap();
            let loss = ((&p * coef).unwrap() + (p.sqr().unwrap() * half).unwrap())
                .unwrap()
                .sum_all()
                .unwrap();
            opt.step(&loss.backward().unwrap()).unwrap();
        }
        p.to_vec1().unwrap()
    }

    fn assert_close(got: &[f32], want: &[f64]) {
        for (g, w) in got.iter().zip(want) {
            assert!((*g as f64 - w).abs() < 1e-6, "got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn sgd_one_step() {
        assert_close(
            &run(OptimizerKind::Sgd, 0.1, 0.0, 1),
            &[1.0 - 0.3, -2.0 + 0.2],
        );
    }

    #[test]
    fn sgd_momentum_two_steps() {
        // step 1: v = g = [3, -2], p = [0.7, -1.8]; step 2: g = [3, -1.8],
        // v = 0.9·[3, -2] + [3, -1.8] = [5.7, -3.6], p = [0.7 - 0.57, -1.8 + 0.36].
        assert_close(&run(OptimizerKind::Sgd, 0.1, 0.9, 2), &[0.13, -1.44]);
    }

    #[test]
    fn sgd_weight_decay_is_added_to_the_gradient() {
        // g + λ·p = [3 + 0.1, -2 - 0.2].
        let got = run_with(OptimizerKind::Sgd, 0.1, 0.0, 1, |o| {
            o.with_weight_decay(0.1)
        });
        assert_close(&got, &[1.0 - 0.31, -2.0 + 0.22]);
    }

    #[test]
    fn nesterov_steps_along_the_gradient_plus_the_momentum() {
        // v = g = [3, -2]; the step is lr·(g + 0.9·v) = 0.1·[5.7, -3.8].
        let got = run_with(OptimizerKind::Sgd, 0.1, 0.9, 1, |o| o.with_nesterov(true));
        assert_close(&got, &[1.0 - 0.57, -2.0 + 0.38]);
        // With momentum 0 Nesterov's formula is plain SGD's.
        let plain = run(OptimizerKind::Sgd, 0.1, 0.0, 2);
        let nesterov = run_with(OptimizerKind::Sgd, 0.1, 0.0, 2, |o| o.with_nesterov(true));
        assert_eq!(plain, nesterov);
    }

    #[test]
    fn adamw_decays_the_weights_apart_from_the_gradient() {
        // p·(1 − lr·λ), then Adam's first step of lr·sign(g).
        let (lr, wd, eps) = (0.01, 0.1, 1e-8);
        let decay = 1.0 - lr * wd;
        let want = [
            decay - lr * 3.0 / (3.0 + eps),
            -2.0 * decay + lr * 2.0 / (2.0 + eps),
        ];
        let got = run_with(OptimizerKind::Adamw, lr, 0.0, 1, |o| {
            o.with_weight_decay(wd)
        });
        assert_close(&got, &want);
        // Without decay AdamW is Adam.
        let adam = run(OptimizerKind::Adam, lr, 0.0, 3);
        assert_eq!(run(OptimizerKind::Adamw, lr, 0.0, 3), adam);
    }

    #[test]
    fn adam_one_step_moves_each_weight_by_lr() {
        // Bias-corrected m̂ = g and v̂ = g², so the step is lr·g/(|g| + ε).
        let eps = 1e-8;
        let want = [
            1.0 - 0.01 * 3.0 / (3.0 + eps),
            -2.0 + 0.01 * 2.0 / (2.0 + eps),
        ];
        assert_close(&run(OptimizerKind::Adam, 0.01, 0.0, 1), &want);
    }

    #[test]
    fn rmsprop_one_step() {
        // square_avg = 0.01·g², so the step is lr·g/(0.1·|g| + ε) = 10·lr·sign(g).
        let want = [
            1.0 - 0.001 * 3.0 / (0.3 + 1e-8),
            -2.0 + 0.001 * 2.0 / (0.2 + 1e-8),
        ];
        assert_close(&run(OptimizerKind::Rmsprop, 0.001, 0.0, 1), &want);
    }

    /// The second moments after one step on g = [3, −2] are `(1 − β)·g²` to float32's
    /// precision, as torch.optim's: `1 − β` computed from the float32-rounded β₂ = 0.999
    /// was 1.3e-5 too small (the fidelity tests' Adam weights were 25 times further from
    /// PyTorch's).
    #[test]
    fn second_moments_are_exact_to_float32() {
        for (kind, slot, one_minus) in [
            (OptimizerKind::Adam, "optim.v.w", 1.0 - ADAM_BETA2),
            (
                OptimizerKind::Rmsprop,
                "optim.square_avg.w",
                1.0 - RMSPROP_ALPHA,
            ),
        ] {
            let vars = VarMap::new();
            let p = vars
                .get(
                    2,
                    "w",
                    candle_nn::Init::Const(0.0),
                    DType::F32,
                    &Device::Cpu,
                )
                .unwrap();
            let mut opt = Optimizer::new(kind, 0.01, 0.0, &vars).unwrap();
            let coef = Tensor::new(&[3.0f32, -2.0], &Device::Cpu).unwrap();
            let loss = (&p * coef).unwrap().sum_all().unwrap();
            opt.step(&loss.backward().unwrap()).unwrap();
            let state: HashMap<String, Tensor> = opt.state().into_iter().collect();
            let got = state[slot].to_vec1::<f32>().unwrap();
            for (g, want) in got.iter().zip([9.0 * one_minus, 4.0 * one_minus]) {
                let err = (*g as f64 - want).abs() / want;
                assert!(err < 2e-7, "{kind:?}: {got:?}, want {want} ({err:.1e})");
            }
        }
    }

    #[test]
    fn state_round_trips() {
        let vars = VarMap::new();
        vars.get(
            3,
            "w",
            candle_nn::Init::Const(1.0),
            DType::F32,
            &Device::Cpu,
        )
        .unwrap();
        let opt = Optimizer::new(OptimizerKind::Adam, 0.1, 0.0, &vars).unwrap();
        let state: HashMap<String, Tensor> = opt.state().into_iter().collect();
        assert_eq!(state.len(), 2);
        assert!(state.contains_key("optim.m.w") && state.contains_key("optim.v.w"));
        let mut other = Optimizer::new(OptimizerKind::Adam, 0.1, 0.0, &vars).unwrap();
        other.load_state(&state, 7).unwrap();
        assert_eq!(other.steps(), 7);
    }
}
