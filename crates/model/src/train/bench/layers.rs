//! The per-layer benchmark behind `sweep bench --layers`: the convolutions of the seed's
//! ResNet ([`resnet_convs`], as `nn/resnet.rs` builds them), and for each distinct shape its
//! three products (forward, input gradient, weight gradient) timed on the kernels of
//! [`sweep_kernels::conv`] at the benchmark's batch: on the kernel this CPU picks and, where
//! that is not im2col, on the im2col path beside it. The README's per-layer table is its
//! output.

use std::time::Instant;

use sweep_kernels::{conv, Cpu, Geometry, Kernel};

use crate::data::CHANNELS;
use crate::nn::resnet::block_name;
use crate::nn::ModelConfig;
use crate::rng::Rng;

/// One convolution of a ResNet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvLayer {
    /// Its variables' prefix in a checkpoint: `stem`, `stage1.project.skip`, …
    pub name: String,
    /// Its shape on a batch.
    pub geometry: Geometry,
}

/// The convolutions of the ResNet `model` on a batch of `n` images of `size × size`, in the
/// order its forward runs them, and the channels its trunk ends with (what the head reads).
/// Every convolution is padded by half its kernel, as `nn/resnet.rs` builds them (the skips and
/// the block dense layers are 1×1 without padding).
pub fn resnet_convs(model: &ModelConfig, size: usize, n: usize) -> (Vec<ConvLayer>, usize) {
    let mut layers = Vec::new();
    let mut conv = |name: String, c_in: usize, c_out: usize, k: usize, stride: usize, side| {
        let geometry = Geometry::of((n, c_in, side, side), (c_out, c_in, k, k), stride, k / 2)
            .expect("a kernel of odd side padded by half of it fits any picture");
        layers.push(ConvLayer { name, geometry });
        geometry.oh()
    };
    let stem = model.filters[0];
    let mut side = conv("stem".into(), CHANNELS, stem, 7, 2, size);
    if side >= 2 {
        side /= 2;
    }
    let mut c_in = stem;
    for (stage, &c_out) in model.filters.iter().enumerate() {
        let stride = if stage == 0 { 1 } else { 2 };
        let at = |part: &str| format!("stage{stage}.{part}");
        // The projection block: conv1 (stride), conv2, and a 1×1 skip when the shape
        // changes; then each identity block's two convolutions.
        let out = conv(at("project.conv1"), c_in, c_out, 3, stride, side);
        conv(at("project.conv2"), c_out, c_out, 3, 1, out);
        if c_in != c_out || stride != 1 {
            conv(at("project.skip"), c_in, c_out, 1, stride, side);
        }
        for block in (1..model.blocks_of(stage)).map(block_name) {
            conv(at(&format!("{block}.conv1")), c_out, c_out, 3, 1, out);
            conv(at(&format!("{block}.conv2")), c_out, c_out, 3, 1, out);
        }
        side = out;
        c_in = c_out;
        if model.block_dense {
            conv(at("dense"), c_out, model.neurons, 1, 1, side);
            c_in = model.neurons;
        }
    }
    (layers, c_in)
}

/// One product of a layer as timed: the kernel this CPU runs and its median seconds, and the
/// im2col path's where the kernel is another.
#[derive(Debug, Clone, Copy)]
pub struct ProductTime {
    pub kernel: Kernel,
    pub seconds: f64,
    pub im2col_seconds: Option<f64>,
}

/// One distinct convolution shape of the network, timed.
#[derive(Debug, Clone)]
pub struct LayerMeasurement {
    /// The first layer of this shape.
    pub layer: ConvLayer,
    /// How many layers of the network have it.
    pub count: usize,
    /// Forward, input gradient, weight gradient; no input gradient for the stem, which a
    /// training step does not compute (nothing trains the images).
    pub products: [Option<ProductTime>; 3],
}

impl LayerMeasurement {
    /// What the layers of this shape cost a training step, in seconds: their products on
    /// this CPU's kernels.
    pub fn step_seconds(&self) -> f64 {
        let one: f64 = self.products.iter().flatten().map(|p| p.seconds).sum();
        self.count as f64 * one
    }
}

/// The header of the table whose rows [`LayerMeasurement`] prints (Markdown).
pub const TABLE_HEADER: &str = "| layer | shape | layers | forward | input gradient | weight \
                                gradient | ms per step |\n| --- | --- | --- | --- | --- | --- \
                                | --- |";

impl std::fmt::Display for LayerMeasurement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = &self.layer.geometry;
        let flops = g.flops();
        let rate = |seconds: f64| flops / seconds / 1e9;
        let cell = |product: &Option<ProductTime>| match product {
            None => "—".to_string(),
            Some(p) => match p.im2col_seconds {
                Some(im2col) => format!(
                    "{:.0} {} ({:.0})",
                    rate(p.seconds),
                    p.kernel.name(),
                    rate(im2col)
                ),
                None => format!("{:.0} {}", rate(p.seconds), p.kernel.name()),
            },
        };
        let [forward, input_grad, weight_grad] = &self.products;
        write!(
            f,
            "| {} | {}→{} {k}×{k}/{} on {}×{} | {} | {} | {} | {} | {:.1} |",
            self.layer.name,
            g.c,
            g.o,
            g.stride,
            g.h,
            g.w,
            self.count,
            cell(forward),
            cell(input_grad),
            cell(weight_grad),
            self.step_seconds() * 1e3,
            k = g.k,
        )
    }
}

/// Times each distinct convolution of the ResNet `model` on batches of `batch` images of
/// `size × size`: each product's median of `steps` runs after `warmup` untimed ones, on
/// `threads` threads. In the network's order, a shape where it first appears.
pub fn measure(
    model: &ModelConfig,
    (size, batch): (usize, usize),
    (warmup, steps): (usize, usize),
    threads: usize,
) -> Vec<LayerMeasurement> {
    let (layers, _) = resnet_convs(model, size, batch);
    let mut distinct: Vec<(ConvLayer, usize)> = Vec::new();
    for layer in layers {
        match distinct
            .iter_mut()
            .find(|(d, _)| d.geometry == layer.geometry)
        {
            Some((_, count)) => *count += 1,
            None => distinct.push((layer, 1)),
        }
    }
    let cpu = Cpu::detect(threads);
    distinct
        .into_iter()
        .enumerate()
        .map(|(index, (layer, count))| {
            let products = time_products(&layer.geometry, index > 0, (warmup, steps), cpu);
            LayerMeasurement {
                layer,
                count,
                products,
            }
        })
        .collect()
}

/// The three products of `g` on random operands, each on the kernel `cpu` picks and on
/// im2col where that is another; the input gradient only `with_input_grad`.
fn time_products(
    g: &Geometry,
    with_input_grad: bool,
    rounds: (usize, usize),
    cpu: Cpu,
) -> [Option<ProductTime>; 3] {
    let mut rng = Rng::new(5);
    let mut values = |len: usize| -> Vec<f32> { (0..len).map(|_| rng.normal() as f32).collect() };
    let x = values(g.n * g.c * g.h * g.w);
    let w = values(g.o * g.ckk());
    let dy = values(g.n * g.o * g.pixels());
    let time = |kernel: Kernel, run: &dyn Fn(Cpu) -> Vec<f32>| {
        let seconds = median_seconds(rounds, || run(cpu));
        let im2col_seconds =
            (kernel != Kernel::Im2col).then(|| median_seconds(rounds, || run(cpu.portable())));
        ProductTime {
            kernel,
            seconds,
            im2col_seconds,
        }
    };
    [
        Some(time(Kernel::forward(g, cpu), &|cpu| {
            conv::forward(&x, &w, g, None, cpu)
        })),
        with_input_grad.then(|| {
            time(Kernel::input_grad(g, cpu), &|cpu| {
                conv::input_grad(&dy, &w, g, cpu)
            })
        }),
        Some(time(Kernel::weight_grad(g, cpu), &|cpu| {
            conv::weight_grad(&x, &dy, g, cpu)
        })),
    ]
}

/// The median seconds of `steps` calls of `run` after `warmup` untimed ones.
fn median_seconds((warmup, steps): (usize, usize), run: impl Fn() -> Vec<f32>) -> f64 {
    let mut times = Vec::with_capacity(steps);
    for i in 0..warmup + steps.max(1) {
        let started = Instant::now();
        std::hint::black_box(run());
        if i >= warmup {
            times.push(started.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_resnet_has_eight_convolution_shapes_in_fifteen_layers() {
        let (layers, channels) = resnet_convs(&ModelConfig::default(), 64, 2);
        assert_eq!(layers.len(), 15);
        assert_eq!(channels, 256);
        let stem = &layers[0].geometry;
        assert_eq!(
            (stem.c, stem.o, stem.k, stem.stride, stem.oh()),
            (3, 64, 7, 2, 32)
        );
        let skip = layers
            .iter()
            .find(|l| l.name == "stage2.project.skip")
            .unwrap();
        assert_eq!(
            (skip.geometry.h, skip.geometry.o, skip.geometry.k),
            (8, 256, 1)
        );
        let measured = measure(&ModelConfig::default(), (64, 1), (0, 1), 1);
        assert_eq!(measured.len(), 8);
        assert_eq!(measured.iter().map(|m| m.count).sum::<usize>(), 15);
        assert!(
            measured[0].products[1].is_none(),
            "no input gradient for the stem"
        );
        assert!(measured[1..]
            .iter()
            .all(|m| m.products.iter().all(Option::is_some)));
        let row = measured[0].to_string();
        assert!(
            row.starts_with("| stem | 3→64 7×7/2 on 64×64 | 1 |"),
            "{row}"
        );
    }
}
