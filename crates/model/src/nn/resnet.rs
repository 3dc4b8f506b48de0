//! [`ResNet`]: the seed's scaled-down residual network. A 7×7/2 stem → BN → ReLU → 2×2/2 max
//! pool, then for each entry of `filters` a block with a 1×1-conv projection skip and a block
//! with an identity skip, then global average pooling → dense `neurons` + ReLU → dropout →
//! dense `classes`.
//!
//! The pool is 2×2 with stride 2, not the 3×3/2 of ImageNet ResNets: candle cannot
//! backpropagate a pool whose kernel differs from its stride, and the PyTorch reference in
//! `shared/bench` uses the same 2×2/2 pool.

use candle_core::{Module, ModuleT, Result, Tensor};
use candle_nn::VarBuilder;

use crate::data::CHANNELS;
use crate::nn::batch_norm::{batch_norm, BatchNorm2d, BatchNormConfig};
use crate::nn::config::ModelConfig;
use crate::nn::conv::{conv2d, Conv2d, Conv2dConfig};
use crate::nn::dense::{dense, Dense};
use crate::nn::pass::{dropout, Pass};
use crate::ops::activation::add_relu;
use crate::ops::pool::max_pool2x2;

const BN: BatchNormConfig = BatchNormConfig { eps: 1e-5 };

/// A `kernel × kernel` convolution padded to keep the size (at stride 1), without bias: batch
/// norm follows every such conv, so a bias would only be cancelled by its mean.
fn conv(c_in: usize, c_out: usize, kernel: usize, stride: usize, vb: VarBuilder) -> Result<Conv2d> {
    let config = Conv2dConfig {
        stride,
        padding: kernel / 2,
        bias: false,
    };
    conv2d(c_in, c_out, kernel, config, vb)
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
    fn new(c_in: usize, c_out: usize, stride: usize, vb: VarBuilder) -> Result<Self> {
        let skip = if c_in == c_out && stride == 1 {
            Skip::Identity
        } else {
            let config = Conv2dConfig {
                stride,
                ..Conv2dConfig::default()
            };
            Skip::Projection(conv2d(c_in, c_out, 1, config, vb.pp("skip"))?)
        };
        Ok(Self {
            conv1: conv(c_in, c_out, 3, stride, vb.pp("conv1"))?,
            bn1: batch_norm(c_out, BN, vb.pp("bn1"))?,
            conv2: conv(c_out, c_out, 3, 1, vb.pp("conv2"))?,
            bn2: batch_norm(c_out, BN, vb.pp("bn2"))?,
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

/// The residual network.
pub struct ResNet {
    stem: Conv2d,
    stem_bn: BatchNorm2d,
    blocks: Vec<ResidualBlock>,
    head: Dense,
    dropout: f64,
    output: Dense,
}

impl ResNet {
    /// Builds the network; it takes any input size of at least 4 pixels per stage.
    pub fn new(config: &ModelConfig, classes: usize, vb: VarBuilder) -> Result<Self> {
        let stem_channels = config.filters[0];
        let mut blocks = Vec::with_capacity(config.filters.len() * 2);
        let mut c_in = stem_channels;
        for (stage, &c_out) in config.filters.iter().enumerate() {
            let stride = if stage == 0 { 1 } else { 2 };
            let vb = vb.pp(format!("stage{stage}"));
            blocks.push(ResidualBlock::new(c_in, c_out, stride, vb.pp("project"))?);
            blocks.push(ResidualBlock::new(c_out, c_out, 1, vb.pp("identity"))?);
            c_in = c_out;
        }
        Ok(Self {
            stem: conv(CHANNELS, stem_channels, 7, 2, vb.pp("stem"))?,
            stem_bn: batch_norm(stem_channels, BN, vb.pp("stem_bn"))?,
            blocks,
            head: dense(c_in, config.neurons, vb.pp("head"))?,
            dropout: config.dropout,
            output: dense(config.neurons, classes, vb.pp("output"))?,
        })
    }

    /// The logits for a batch of images.
    pub fn forward(&self, xs: &Tensor, pass: &mut Pass) -> Result<Tensor> {
        let train = pass.is_train();
        let mut xs = self.stem.forward_bn(xs, &self.stem_bn, true, train)?;
        if xs.dim(2)? >= 2 {
            xs = max_pool2x2(&xs)?;
        }
        for block in &self.blocks {
            xs = block.forward(&xs, train)?;
        }
        let xs = xs.mean((2, 3))?;
        let xs = self.head.forward(&xs)?.relu()?;
        self.output.forward(&dropout(&xs, self.dropout, pass)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::conv::conv2d;
    use crate::testing::max_rel_err;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    /// In evaluation, batch norm (and the projection's bias) folded into the convolution's
    /// epilogue gives what the separate layers give, with running statistics away from 0/1.
    #[test]
    fn the_fused_evaluation_matches_the_separate_layers() {
        let dev = Device::Cpu;
        let vars = VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, DType::F32, &dev);
        let block = ResidualBlock::new(4, 6, 2, vb.pp("block")).unwrap();
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
