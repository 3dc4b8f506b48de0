//! [`ResNet`]: the seed's scaled-down residual network. A 7×7/2 stem → BN → ReLU → 2×2/2 max
//! pool, then for each entry of `filters` a stage of `blocks` residual blocks (2 unless
//! told: the seed's network): a block with a 1×1-conv projection skip, then blocks with an
//! identity skip; then global average pooling → dense `neurons` + ReLU → dropout → dense
//! `classes`. A stage's blocks are named `project`, `identity`, then `identity2`,
//! `identity3`, …, so the seed's two-block stages keep their parameter names. With `block_dense`, each stage ends in a dense layer of `neurons` units on
//! every pixel (a 1×1 convolution with bias, then ReLU), whose width the next stage and the
//! head take as input.
//!
//! The pool is 2×2 with stride 2, not the 3×3/2 of ImageNet ResNets: candle cannot
//! backpropagate a pool whose kernel differs from its stride, and the PyTorch reference in
//! `shared/bench` uses the same 2×2/2 pool.

use candle_core::backprop::GradStore;
use candle_core::{Module, ModuleT, Result, Tensor};
use candle_nn::VarBuilder;

use crate::data::CHANNELS;
use crate::nn::batch_norm::{batch_norm, BatchNorm2d, BatchNormConfig};
use crate::nn::config::{ModelConfig, WeightInit};
use crate::nn::conv::{conv2d, Conv2d, Conv2dConfig};
use crate::nn::dense::{dense, Dense};
use crate::nn::pass::{dropout, Pass};
use crate::nn::tape::{not_from_this_forward, Kept, Tape};
use crate::nn::trunk::{self, Layer};
use crate::ops::activation::add_relu;
use crate::ops::pool::max_pool2x2;
use crate::rng::Rng;

/// How every layer of one network is built: the initialisation and batch norm settings of
/// its [`ModelConfig`].
#[derive(Clone, Copy)]
struct Layers {
    init: WeightInit,
    bn: BatchNormConfig,
}

impl Layers {
    fn of(config: &ModelConfig) -> Self {
        Layers {
            init: config.init,
            bn: BatchNormConfig {
                eps: config.bn_eps,
                momentum: config.bn_momentum,
            },
        }
    }

    /// A `kernel × kernel` convolution padded to keep the size (at stride 1), without bias:
    /// batch norm follows every such conv, so a bias would only be cancelled by its mean.
    fn conv(
        self,
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        vb: VarBuilder,
    ) -> Result<Conv2d> {
        let config = Conv2dConfig {
            stride,
            padding: kernel / 2,
            bias: false,
            init: self.init,
        };
        conv2d(c_in, c_out, kernel, config, vb)
    }

    /// A convolution with bias and no padding: the projection skip (stride 2) and the block
    /// dense layer (1×1, stride 1).
    fn biased_conv(
        self,
        c_in: usize,
        c_out: usize,
        stride: usize,
        vb: VarBuilder,
    ) -> Result<Conv2d> {
        let config = Conv2dConfig {
            stride,
            init: self.init,
            ..Conv2dConfig::default()
        };
        conv2d(c_in, c_out, 1, config, vb)
    }

    fn batch_norm(self, channels: usize, vb: VarBuilder) -> Result<BatchNorm2d> {
        batch_norm(channels, self.bn, vb)
    }

    fn dense(self, inputs: usize, outputs: usize, vb: VarBuilder) -> Result<Dense> {
        dense(inputs, outputs, self.init, vb)
    }
}

/// How a residual block's input reaches its output.
enum Skip {
    Identity,
    Projection(Conv2d),
}

/// conv3×3 → BN → ReLU → conv3×3 → BN → add the skip → ReLU.
struct ResidualBlock {
    conv1: Conv2d,
    bn1: BatchNorm2d,
    conv2: Conv2d,
    bn2: BatchNorm2d,
    skip: Skip,
}

impl ResidualBlock {
    fn new(
        layers: Layers,
        c_in: usize,
        c_out: usize,
        stride: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let skip = if c_in == c_out && stride == 1 {
            Skip::Identity
        } else {
            Skip::Projection(layers.biased_conv(c_in, c_out, stride, vb.pp("skip"))?)
        };
        Ok(Self {
            conv1: layers.conv(c_in, c_out, 3, stride, vb.pp("conv1"))?,
            bn1: layers.batch_norm(c_out, vb.pp("bn1"))?,
            conv2: layers.conv(c_out, c_out, 3, 1, vb.pp("conv2"))?,
            bn2: layers.batch_norm(c_out, vb.pp("bn2"))?,
            skip,
        })
    }

    fn forward(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let ys = self.conv1.forward_bn(xs, &self.bn1, true, train)?;
        let ys = self.conv2.forward_bn(&ys, &self.bn2, false, train)?;
        let skip = match &self.skip {
            Skip::Identity => xs.clone(),
            Skip::Projection(conv) => conv.forward_t(xs, train)?,
        };
        add_relu(&ys, &skip)
    }
}

/// One entry of `filters`: a block with a projection skip, the blocks with an identity skip
/// after it and, with `block_dense`, the dense layer on every pixel after them.
struct Stage {
    project: ResidualBlock,
    identities: Vec<ResidualBlock>,
    dense: Option<Conv2d>,
}

/// The name of block `index` (from 0) of a stage: `project`, `identity`, `identity2`, …
pub(crate) fn block_name(index: usize) -> String {
    match index {
        0 => "project".into(),
        1 => "identity".into(),
        _ => format!("identity{index}"),
    }
}

impl Stage {
    fn blocks(&self) -> impl Iterator<Item = &ResidualBlock> {
        std::iter::once(&self.project).chain(&self.identities)
    }

    fn forward(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let mut xs = xs.clone();
        for block in self.blocks() {
            xs = block.forward(&xs, train)?;
        }
        match &self.dense {
            Some(dense) => dense.forward_relu(&xs, train),
            None => Ok(xs),
        }
    }
}

/// The seed's "fully connected layer after each resnet block": a Keras `Dense` on a feature
/// map acts on each pixel's channels, which is a 1×1 convolution with bias. It is followed by
/// a ReLU because the seed's `Dense` layers use `activation="relu"`.
fn block_dense(layers: Layers, c_in: usize, neurons: usize, vb: VarBuilder) -> Result<Conv2d> {
    layers.biased_conv(c_in, neurons, 1, vb)
}

/// The residual network.
pub struct ResNet {
    stem: Conv2d,
    stem_bn: BatchNorm2d,
    stages: Vec<Stage>,
    head: Dense,
    dropout: f64,
    output: Dense,
}

impl ResNet {
    /// Builds the network; it takes any input size of at least 4 pixels per stage.
    pub fn new(config: &ModelConfig, classes: usize, vb: VarBuilder) -> Result<Self> {
        let layers = Layers::of(config);
        let stem_channels = config.filters[0];
        let mut stages = Vec::with_capacity(config.filters.len());
        let mut c_in = stem_channels;
        for (stage, &c_out) in config.filters.iter().enumerate() {
            let stride = if stage == 0 { 1 } else { 2 };
            let vb = vb.pp(format!("stage{stage}"));
            let dense = config
                .block_dense
                .then(|| block_dense(layers, c_out, config.neurons, vb.pp("dense")))
                .transpose()?;
            let identities = (1..config.blocks_of(stage))
                .map(|i| ResidualBlock::new(layers, c_out, c_out, 1, vb.pp(block_name(i))))
                .collect::<Result<_>>()?;
            stages.push(Stage {
                project: ResidualBlock::new(layers, c_in, c_out, stride, vb.pp(block_name(0)))?,
                identities,
                dense,
            });
            c_in = if config.block_dense {
                config.neurons
            } else {
                c_out
            };
        }
        Ok(Self {
            stem: layers.conv(CHANNELS, stem_channels, 7, 2, vb.pp("stem"))?,
            stem_bn: layers.batch_norm(stem_channels, vb.pp("stem_bn"))?,
            stages,
            head: layers.dense(c_in, config.neurons, vb.pp("head"))?,
            dropout: config.dropout,
            output: layers.dense(config.neurons, classes, vb.pp("output"))?,
        })
    }

    /// The trunk's layers in order, for [`trunk`]'s own forward and backward.
    fn trunk_layers(&self) -> Vec<Layer<'_>> {
        let mut layers = vec![Layer::Stem(&self.stem, &self.stem_bn)];
        for stage in &self.stages {
            for block in stage.blocks() {
                layers.push(Layer::Block {
                    conv1: &block.conv1,
                    bn1: &block.bn1,
                    conv2: &block.conv2,
                    bn2: &block.bn2,
                    skip: match &block.skip {
                        Skip::Identity => None,
                        Skip::Projection(conv) => Some(conv),
                    },
                });
            }
            if let Some(dense) = &stage.dense {
                layers.push(Layer::Dense(dense));
            }
        }
        layers
    }

    /// The logits for a batch of images, in evaluation (running statistics, no dropout).
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let xs = self.trunk_graph(xs, false)?;
        self.head(&xs, &mut Pass::Eval)
    }

    /// The logits for a batch of images in training (batch statistics, dropout drawn from
    /// `rng`), and the tape [`ResNet::backward`] takes.
    pub fn forward_train(&self, xs: &Tensor, rng: &mut Rng) -> Result<(Tensor, Tape)> {
        self.forward_train_with(xs, rng, trunk::applies(xs))
    }

    /// [`ResNet::forward_train`], the trunk run on [`trunk`]'s own forward when `own_trunk`,
    /// else through candle's graph.
    fn forward_train_with(
        &self,
        xs: &Tensor,
        rng: &mut Rng,
        own_trunk: bool,
    ) -> Result<(Tensor, Tape)> {
        let (xs, tape) = if own_trunk {
            let (xs, trunk) = trunk::forward(&self.trunk_layers(), xs)?;
            (xs, Tape(Kept::Trunk(trunk)))
        } else {
            (self.trunk_graph(xs, true)?, Tape(Kept::Graph))
        };
        Ok((self.head(&xs, &mut Pass::Train(rng))?, tape))
    }

    /// The head on the trunk's maps: global average pooling → dense + ReLU → dropout → dense.
    fn head(&self, xs: &Tensor, pass: &mut Pass) -> Result<Tensor> {
        let xs = xs.mean((2, 3))?;
        let xs = self.head.forward(&xs)?.relu()?;
        self.output.forward(&dropout(&xs, self.dropout, pass)?)
    }

    /// The gradients of `loss`, computed from the logits of the training forward that
    /// returned `tape`, for every variable: candle's backward, plus the trunk's own when
    /// that forward ran it outside candle's graph ([`trunk`]).
    pub fn backward(&self, loss: &Tensor, tape: Tape) -> Result<GradStore> {
        let mut grads = loss.backward()?;
        match tape.0 {
            Kept::Graph => {}
            Kept::Trunk(trunk) => {
                // A loss that does not depend on the trunk's output came from another forward.
                let d_output = grads
                    .remove(trunk.output())
                    .ok_or_else(|| not_from_this_forward("resnet"))?;
                trunk.backward(&d_output, &mut grads)?
            }
            Kept::FirstLayer(_) => {
                candle_core::bail!("resnet: the backward was given the tape of an MLP")
            }
        }
        Ok(grads)
    }

    /// The trunk through candle's graph: evaluation, and training on other devices.
    fn trunk_graph(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let mut xs = if train {
            let ys = self.stem.forward_t(xs, true)?;
            if ys.dim(2)? >= 2 {
                // The normalisation, ReLU and pool as one op: the stem's maps are the step's
                // largest.
                self.stem_bn.forward_relu_pool(&ys, true)?
            } else {
                self.stem_bn.forward_relu(&ys, true)?
            }
        } else {
            let ys = self.stem.forward_bn(xs, &self.stem_bn, true, false)?;
            if ys.dim(2)? >= 2 {
                max_pool2x2(&ys)?
            } else {
                ys
            }
        };
        for stage in &self.stages {
            xs = stage.forward(&xs, train)?;
        }
        Ok(xs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Net;
    use crate::ops::conv::conv2d;
    use crate::rng::Rng;
    use crate::testing::{assert_same_gradients, max_rel_err};
    use crate::train::checkpoint;
    use crate::train::optim::{Optimizer, OptimizerKind};
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    /// A small ResNet with a dense layer after each of its three stages.
    fn block_dense_config() -> ModelConfig {
        ModelConfig {
            filters: vec![4, 8, 8],
            neurons: 6,
            dropout: 0.5,
            block_dense: true,
            ..ModelConfig::default()
        }
    }

    /// `batch` images of `size × size` pixels drawn from `seed`, and their labels.
    fn batch(batch: usize, size: usize, classes: usize, seed: u64) -> (Tensor, Tensor) {
        let mut rng = Rng::new(seed);
        let pixels: Vec<f32> = (0..batch * 3 * size * size)
            .map(|_| rng.normal() as f32)
            .collect();
        let xs = Tensor::from_vec(pixels, (batch, 3, size, size), &Device::Cpu).unwrap();
        let labels: Vec<u32> = (0..batch).map(|i| ((i * 3 + 1) % classes) as u32).collect();
        (xs, Tensor::new(labels, &Device::Cpu).unwrap())
    }

    /// Every variable's checkpoint name and shape, with its initial values, for `config`.
    fn variables(config: &ModelConfig) -> Vec<(String, Vec<usize>, Vec<f32>)> {
        let vars = VarMap::new();
        Net::new(config, 16, 5, 1, &vars, &Device::Cpu).unwrap();
        checkpoint::model_tensors(&vars)
            .into_iter()
            .map(|(name, t)| {
                let values = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                (name, t.dims().to_vec(), values)
            })
            .collect()
    }

    #[test]
    fn deeper_stages_add_identity_blocks_and_the_seeds_depth_keeps_its_names_and_weights() {
        let seed = ModelConfig {
            filters: vec![4, 8, 8],
            ..ModelConfig::default()
        };
        let two = ModelConfig {
            blocks: vec![2, 2, 2],
            ..seed.clone()
        };
        assert_eq!(
            variables(&seed),
            variables(&two),
            "[2, 2, 2] is the seed's network"
        );
        let names = |config: &ModelConfig| -> Vec<String> {
            let mut stages: Vec<String> = variables(config)
                .into_iter()
                .filter_map(|(name, _, _)| {
                    let block = name.strip_prefix("model.stage")?.split('.').take(2);
                    Some(block.collect::<Vec<_>>().join("."))
                })
                .collect();
            stages.dedup();
            stages
        };
        assert_eq!(
            names(&seed),
            [
                "0.identity",
                "0.project",
                "1.identity",
                "1.project",
                "2.identity",
                "2.project"
            ]
        );
        let deep = ModelConfig {
            filters: vec![4, 4, 8, 8],
            blocks: vec![3, 4, 6, 3],
            ..seed.clone()
        };
        let deep_names = names(&deep);
        assert_eq!(deep_names.len(), 3 + 4 + 6 + 3);
        for name in ["0.identity2", "1.identity3", "2.identity5", "3.project"] {
            assert!(
                deep_names.contains(&name.to_string()),
                "{name}: {deep_names:?}"
            );
        }
        let one = ModelConfig {
            blocks: vec![1, 1, 1],
            ..seed.clone()
        };
        assert_eq!(names(&one), ["0.project", "1.project", "2.project"]);
        // Deeper stages still train through the trunk's own backward, as candle's graph does.
        let (xs, ys) = batch(4, 16, 5, 3);
        let vars = VarMap::new();
        let net = Net::new(&deep, 16, 5, 1, &vars, &Device::Cpu).unwrap();
        let (logits, tape) = net.forward_train(&xs, &mut Rng::new(1)).unwrap();
        assert_eq!(logits.dims(), [4, 5]);
        let loss = candle_nn::loss::cross_entropy(&logits, &ys).unwrap();
        let grads = net.backward(&loss, tape).unwrap();
        let data = vars.data().lock().unwrap();
        let grad = grads.get(data["stage2.identity5.conv2.weight"].as_tensor());
        assert!(grad.is_some(), "the sixth block of stage 2 has a gradient");
    }

    #[test]
    fn block_dense_adds_a_one_by_one_layer_per_stage_that_the_next_stage_reads() {
        let vars = VarMap::new();
        let config = block_dense_config();
        Net::new(&config, 20, 5, 1, &vars, &Device::Cpu).unwrap();
        let shapes: std::collections::HashMap<String, Vec<usize>> =
            checkpoint::model_tensors(&vars)
                .into_iter()
                .map(|(name, t)| (name, t.dims().to_vec()))
                .collect();
        for stage in 0..3 {
            let c = config.filters[stage];
            assert_eq!(
                shapes[&format!("model.stage{stage}.dense.weight")],
                [6, c, 1, 1]
            );
            assert_eq!(shapes[&format!("model.stage{stage}.dense.bias")], [6]);
        }
        assert_eq!(shapes["model.stage1.project.conv1.weight"], [8, 6, 3, 3]);
        assert_eq!(shapes["model.stage1.project.skip.weight"], [8, 6, 1, 1]);
        assert_eq!(shapes["model.head.weight"], [6, 6]);
        let plain = VarMap::new();
        let config = ModelConfig {
            block_dense: false,
            ..config
        };
        Net::new(&config, 20, 5, 1, &plain, &Device::Cpu).unwrap();
        let names: Vec<String> = checkpoint::model_tensors(&plain)
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert!(!names.iter().any(|n| n.contains("dense")), "{names:?}");
    }

    /// The trunk's own backward ([`trunk`]) against candle's graph of the same layers: the
    /// logits and every parameter's gradient, with and without the dense layers, on sizes
    /// whose maps go through the direct kernel (32: 8×8 after the stem), the im2col path
    /// only (20) and a stem too small to pool (2).
    #[test]
    fn the_trunks_own_backward_equals_candles_graph() {
        let plain = ModelConfig {
            block_dense: false,
            ..block_dense_config()
        };
        for (config, size) in [
            (block_dense_config(), 32),
            (plain.clone(), 32),
            (plain.clone(), 20),
            (block_dense_config(), 2),
        ] {
            // No dropout, so both passes see the same head.
            let config = ModelConfig {
                dropout: 0.0,
                ..config
            };
            let vars = VarMap::new();
            let Net::ResNet(net) = Net::new(&config, size, 5, 7, &vars, &Device::Cpu).unwrap()
            else {
                unreachable!("a resnet config builds a ResNet")
            };
            let (xs, ys) = batch(3, size, 5, 11);
            let step = |own: bool| {
                let (logits, tape) = net.forward_train_with(&xs, &mut Rng::new(1), own).unwrap();
                let loss = candle_nn::loss::cross_entropy(&logits, &ys).unwrap();
                (logits, net.backward(&loss, tape).unwrap())
            };
            let (graph_logits, graph) = step(false);
            let (own_logits, own) = step(true);
            let what = format!("size {size}, block_dense {}", config.block_dense);
            assert!(
                max_rel_err(&own_logits, &graph_logits) < 1e-5,
                "logits, {what}"
            );
            let checked = assert_same_gradients(&vars, &own, &graph, 1e-5, &what);
            assert!(checked > 20, "{checked} parameters, {what}");
        }
    }

    #[test]
    fn a_block_dense_resnet_trains_its_dense_layers_and_its_loss_falls() {
        let vars = VarMap::new();
        // No dropout: the loss of one repeated batch then falls steadily.
        let config = ModelConfig {
            neurons: 16,
            dropout: 0.0,
            ..block_dense_config()
        };
        let net = Net::new(&config, 16, 4, 3, &vars, &Device::Cpu).unwrap();
        let mut optimizer = Optimizer::new(OptimizerKind::Adam, 0.003, 0.0, &vars).unwrap();
        let (xs, ys) = batch(8, 16, 4, 9);
        let dense = |vars: &VarMap| {
            let data = vars.data().lock().unwrap();
            data["stage1.dense.weight"]
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        let before = dense(&vars);
        let mut rng = Rng::new(4);
        let mut losses = Vec::new();
        for _ in 0..30 {
            let (logits, tape) = net.forward_train(&xs, &mut rng).unwrap();
            let loss = candle_nn::loss::cross_entropy(&logits, &ys).unwrap();
            let grads = net.backward(&loss, tape).unwrap();
            {
                let data = vars.data().lock().unwrap();
                for name in ["stage0.dense.weight", "stage2.dense.bias"] {
                    assert!(
                        grads.get(data[name].as_tensor()).is_some(),
                        "{name} has a gradient"
                    );
                }
            }
            optimizer.step(&grads).unwrap();
            losses.push(loss.to_scalar::<f32>().unwrap());
        }
        assert_ne!(dense(&vars), before, "the dense layer learned");
        let (first, last) = (losses[0], losses[losses.len() - 1]);
        assert!(last < 0.5 * first, "the loss falls: {losses:?}");
    }

    /// Logits computed by PyTorch (`scripts/block_dense_reference.py`) from the weights,
    /// running statistics and images of [`block_dense_reference`].
    const TORCH_LOGITS: [[f32; 5]; 4] = [
        [-0.07734892, 0.09361044, -0.2389975, -0.5686545, 0.04055485],
        [-0.09251207, -0.1001158, -0.2260269, -0.2065726, -0.1391328],
        [-0.1104474, -0.3292592, -0.2106851, 0.2217056, -0.351671],
        [-0.09793144, -0.1693542, -0.2213912, -0.07716319, -0.2033537],
    ];

    /// The network of this test, in evaluation, after two training passes have moved the batch
    /// norms' running statistics; with `SWEEP_BLOCK_DENSE_REFERENCE=FILE`, the checkpoint
    /// (weights, images, labels and these logits) for the PyTorch script is written to FILE.
    fn block_dense_reference() -> (VarMap, Tensor, Tensor, Tensor) {
        let vars = VarMap::new();
        let net = Net::new(&block_dense_config(), 20, 5, 7, &vars, &Device::Cpu).unwrap();
        let (xs, ys) = batch(4, 20, 5, 11);
        let mut rng = Rng::new(1);
        for _ in 0..2 {
            // Only the running statistics are wanted: no backward.
            let _ = net.forward_train(&xs, &mut rng).unwrap();
        }
        let logits = net.forward(&xs).unwrap();
        (vars, xs, ys, logits)
    }

    #[test]
    fn block_dense_logits_match_pytorch_on_the_same_weights() {
        let (vars, xs, ys, logits) = block_dense_reference();
        if let Some(path) = std::env::var_os("SWEEP_BLOCK_DENSE_REFERENCE") {
            let mut tensors = checkpoint::model_tensors(&vars);
            tensors.extend([
                ("input".to_string(), xs),
                ("labels".to_string(), ys),
                ("logits".to_string(), logits.clone()),
            ]);
            let meta =
                serde_json::json!({ "model": block_dense_config(), "size": 20, "classes": 5 });
            checkpoint::save(std::path::Path::new(&path), &tensors, &meta).unwrap();
        }
        let expected = Tensor::new(&TORCH_LOGITS, &Device::Cpu).unwrap();
        let diff = (logits - expected)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff <= 1e-4, "max |rust - torch| = {diff}");
    }

    /// In evaluation, batch norm (and the projection's bias) folded into the convolution's
    /// epilogue gives what the separate layers give, with running statistics away from 0/1.
    #[test]
    fn the_fused_evaluation_matches_the_separate_layers() {
        let dev = Device::Cpu;
        let vars = VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, DType::F32, &dev);
        let block =
            ResidualBlock::new(Layers::of(&ModelConfig::default()), 4, 6, 2, vb.pp("block"))
                .unwrap();
        let x = Tensor::randn(0f32, 1.0, (5, 4, 9, 9), &dev).unwrap();
        // A few training passes move the running statistics.
        for _ in 0..3 {
            block.forward(&x, true).unwrap();
        }
        let fused = block.forward(&x, false).unwrap();
        let ys = block
            .bn1
            .forward_relu(&conv2d(&x, block.conv1.weight(), 2, 1).unwrap(), false);
        let ys = conv2d(&ys.unwrap(), block.conv2.weight(), 1, 1).unwrap();
        let ys = block.bn2.forward_t(&ys, false).unwrap();
        let Skip::Projection(skip) = &block.skip else {
            panic!("a 4 → 6 block projects")
        };
        let bias = skip.bias().unwrap().reshape((1, 6, 1, 1)).unwrap();
        let skip = conv2d(&x, skip.weight(), 2, 0)
            .unwrap()
            .broadcast_add(&bias)
            .unwrap();
        let separate = (ys + skip).unwrap().relu().unwrap();
        assert!(max_rel_err(&fused, &separate) <= 1e-5);
    }
}
