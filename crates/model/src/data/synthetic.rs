//! The built-in "generated images" data set: procedurally drawn shapes, deterministic by
//! seed, of any size and class count up to 100. A class is a shape (5), a colour (5) and a
//! texture (4); each image places it at a random position and scale on a random, noisy
//! background. Position and scale vary, so a CNN learns it quickly while an MLP struggles.

use rayon::prelude::*;

use crate::data::{dataset, Columns, Dataset, Pixels, Split, CHANNELS, MAX_IMAGE_SIDE};
use crate::rng::{stream, Rng};

/// The most classes the drawing can tell apart: 5 shapes × 5 colours × 4 textures.
pub const MAX_CLASSES: usize = 100;
const _: () = assert!(MAX_CLASSES <= super::MAX_CLASSES);

/// How big a synthetic data set to draw, and from which seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyntheticSpec {
    pub classes: usize,
    pub size: usize,
    pub train: usize,
    pub val: usize,
    pub test: usize,
    pub seed: u64,
}

impl Default for SyntheticSpec {
    fn default() -> Self {
        Self {
            classes: 10,
            size: 32,
            train: 2000,
            val: 400,
            test: 400,
            seed: 7,
        }
    }
}

impl SyntheticSpec {
    /// Why the spec cannot be drawn, if it cannot.
    pub fn problem(&self) -> Option<String> {
        if self.classes < 2 || self.classes > MAX_CLASSES {
            return Some(format!(
                "classes must be between 2 and {MAX_CLASSES}, not {}",
                self.classes
            ));
        }
        if self.size < 8 || self.size > MAX_IMAGE_SIDE {
            return Some(format!(
                "size must be between 8 and {MAX_IMAGE_SIDE} pixels, not {}",
                self.size
            ));
        }
        if self.train == 0 || self.val == 0 {
            return Some("train and val need at least one image each".into());
        }
        let images = self
            .train
            .saturating_add(self.val)
            .saturating_add(self.test);
        dataset::too_large(images, self.size)
    }

    /// Draws the data set.
    pub fn generate(&self) -> Dataset {
        let split = |index: u64, count: usize, prefix: &str| {
            let images: Vec<Vec<u8>> = (0..count)
                .into_par_iter()
                .map(|i| {
                    let mut rng = Rng::derive(self.seed, &[stream::SYNTHETIC, index, i as u64]);
                    draw(i % self.classes, self.size, &mut rng)
                })
                .collect();
            Split {
                pixels: Pixels::Owned(images.concat()),
                labels: Some((0..count).map(|i| (i % self.classes) as u32).collect()),
                names: (0..count).map(|i| format!("{prefix}_{i:05}.png")).collect(),
            }
        };
        Dataset {
            size: self.size,
            classes: self.classes,
            columns: Columns::default(),
            train: split(0, self.train, "train"),
            val: split(1, self.val, "val"),
            test: split(2, self.test, "test"),
        }
    }
}

const PALETTE: [[f32; 3]; 5] = [
    [0.92, 0.16, 0.14],
    [0.15, 0.80, 0.22],
    [0.20, 0.32, 0.96],
    [0.96, 0.86, 0.12],
    [0.86, 0.22, 0.86],
];

/// Signed distance (in image units) from `(dx, dy)` to the edge of shape `shape` of radius `r`.
fn distance(shape: usize, dx: f32, dy: f32, r: f32) -> f32 {
    let (ax, ay) = (dx.abs(), dy.abs());
    match shape {
        0 => (dx * dx + dy * dy).sqrt() - r,
        1 => ax.max(ay) - r * 0.8,
        2 => (ax * 0.866 + dy * 0.5).max(-dy) - r * 0.5,
        3 => ((ax - r * 0.3).max(ay - r)).min((ax - r).max(ay - r * 0.3)),
        _ => ((dx * dx + dy * dy).sqrt() - r * 0.72).abs() - r * 0.24,
    }
}

/// One image of class `class`, `size × size × 3` bytes.
fn draw(class: usize, size: usize, rng: &mut Rng) -> Vec<u8> {
    // Neighbouring classes differ in shape and colour; 25 classes use every pair once.
    let shape = class % 5;
    let colour = PALETTE[(class % 5 + class / 5) % 5];
    let texture = (class / 25) % 4;
    let s = size as f32;
    let r = rng.uniform(0.2, 0.32) as f32;
    let cx = rng.uniform(0.26, 0.74) as f32;
    let cy = rng.uniform(0.26, 0.74) as f32;
    let brightness = rng.uniform(0.7, 1.05) as f32;
    let jitter: Vec<f32> = (0..3).map(|_| rng.uniform(-0.12, 0.12) as f32).collect();
    let background: Vec<f32> = (0..3).map(|_| rng.uniform(0.0, 0.6) as f32).collect();
    let gradient = (
        rng.uniform(-0.15, 0.15) as f32,
        rng.uniform(-0.15, 0.15) as f32,
    );
    let period = (size / 8).max(2);
    let mut out = Vec::with_capacity(size * size * CHANNELS);
    for y in 0..size {
        for x in 0..size {
            let u = (x as f32 + 0.5) / s;
            let v = (y as f32 + 0.5) / s;
            let alpha = (0.5 - distance(shape, u - cx, v - cy, r) * s).clamp(0.0, 1.0);
            let stripe = match texture {
                0 => true,
                1 => (y / period).is_multiple_of(2),
                2 => (x / period).is_multiple_of(2),
                _ => (x / period + y / period).is_multiple_of(2),
            };
            let shade = if stripe { 1.0 } else { 0.45 };
            let noise = rng.normal() as f32 * 0.05;
            for c in 0..CHANNELS {
                let bg = background[c] + gradient.0 * (u - 0.5) + gradient.1 * (v - 0.5);
                let fg = (colour[c] + jitter[c]) * shade * brightness;
                let value = bg * (1.0 - alpha) + fg * alpha + noise;
                out.push((value.clamp(0.0, 1.0) * 255.0).round() as u8);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_by_seed_and_labels_cycle_through_classes() {
        let spec = SyntheticSpec {
            classes: 7,
            size: 16,
            train: 20,
            val: 8,
            test: 5,
            seed: 3,
        };
        let a = spec.generate();
        let b = spec.generate();
        assert_eq!(&*a.train.pixels, &*b.train.pixels);
        assert_eq!(a.train.pixels.len(), 20 * 16 * 16 * 3);
        assert_eq!(
            a.train.labels.as_ref().unwrap()[..8],
            [0, 1, 2, 3, 4, 5, 6, 0]
        );
        let c = SyntheticSpec { seed: 4, ..spec }.generate();
        assert_ne!(&*a.train.pixels, &*c.train.pixels);
    }

    #[test]
    fn out_of_range_specs_are_refused() {
        let ok = SyntheticSpec::default();
        assert!(ok.problem().is_none());
        assert!(SyntheticSpec { classes: 101, ..ok }
            .problem()
            .unwrap()
            .contains("classes"));
        assert!(SyntheticSpec { size: 4, ..ok }
            .problem()
            .unwrap()
            .contains("size"));
    }
}
