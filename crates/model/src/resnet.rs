//! [`ResNet`]: the seed's scaled-down residual network. A 7×7/2 stem → BN → ReLU → 2×2/2 max
//! pool, then for each entry of `filters` a block with a 1×1-conv projection skip and a block
//! with an identity skip, then global average pooling → dense `neurons` + ReLU → dropout →
//! dense `classes`.
//!
//! The pool is 2×2 with stride 2, not the 3×3/2 of ImageNet ResNets: candle cannot
//! backpropagate a pool whose kernel differs from its stride, and the PyTorch reference in
//! `shared/bench` uses the same 2×2/2 pool.

use candle_core::{Module, ModuleT, Result, Tensor};
use candle_nn::{
    batch_norm, conv2d, conv2d_no_bias, linear, BatchNorm, Conv2d, Conv2dConfig, Linear, VarBuilder,
};

use crate::data::CHANNELS;
use crate::net::{dropout, ModelConfig, Pass};

const BN_EPS: f64 = 1e-5;

fn conv(c_in: usize, c_out: usize, kernel: usize, stride: usize, vb: VarBuilder) -> Result<Conv2d> {
    let cfg = Conv2dConfig {
        padding: kernel / 2,
        stride,
        ..Default::default()
    };
    // Batch norm follows every such conv, so a bias would only be cancelled by its mean.
    conv2d_no_bias(c_in, c_out, kernel, cfg, vb)
}

/// How a residual block's input reaches its output.
enum Skip {
    Identity,
    Projection(Conv2d),
}

/// conv3×3 → BN → ReLU → conv3×3 → BN → add the skip → ReLU.
struct ResidualBlock {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    skip: Skip,
}

impl ResidualBlock {
    fn new(c_in: usize, c_out: usize, stride: usize, vb: VarBuilder) -> Result<Self> {
        let skip = if c_in == c_out && stride == 1 {
            Skip::Identity
        } else {
            let cfg = Conv2dConfig {
                stride,
                ..Default::default()
            };
            Skip::Projection(conv2d(c_in, c_out, 1, cfg, vb.pp("skip"))?)
        };
        Ok(Self {
            conv1: conv(c_in, c_out, 3, stride, vb.pp("conv1"))?,
            bn1: batch_norm(c_out, BN_EPS, vb.pp("bn1"))?,
            conv2: conv(c_out, c_out, 3, 1, vb.pp("conv2"))?,
            bn2: batch_norm(c_out, BN_EPS, vb.pp("bn2"))?,
            skip,
        })
    }

    fn forward(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let ys = self
            .bn1
            .forward_t(&self.conv1.forward(xs)?, train)?
            .relu()?;
        let ys = self.bn2.forward_t(&self.conv2.forward(&ys)?, train)?;
        let skip = match &self.skip {
            Skip::Identity => xs.clone(),
            Skip::Projection(conv) => conv.forward(xs)?,
        };
        (ys + skip)?.relu()
    }
}

/// The residual network.
pub struct ResNet {
    stem: Conv2d,
    stem_bn: BatchNorm,
    blocks: Vec<ResidualBlock>,
    head: Linear,
    dropout: f64,
    output: Linear,
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
            stem_bn: batch_norm(stem_channels, BN_EPS, vb.pp("stem_bn"))?,
            blocks,
            head: linear(c_in, config.neurons, vb.pp("head"))?,
            dropout: config.dropout,
            output: linear(config.neurons, classes, vb.pp("output"))?,
        })
    }

    /// The logits for a batch of images.
    pub fn forward(&self, xs: &Tensor, pass: &mut Pass) -> Result<Tensor> {
        let train = pass.is_train();
        let mut xs = self
            .stem_bn
            .forward_t(&self.stem.forward(xs)?, train)?
            .relu()?;
        if xs.dim(2)? >= 2 {
            xs = xs.max_pool2d(2)?;
        }
        for block in &self.blocks {
            xs = block.forward(&xs, train)?;
        }
        let xs = xs.mean((2, 3))?;
        let xs = self.head.forward(&xs)?.relu()?;
        self.output.forward(&dropout(&xs, self.dropout, pass)?)
    }
}
