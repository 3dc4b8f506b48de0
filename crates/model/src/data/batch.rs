//! Turning images of a [`Split`] into tensors: a batch of normalised (and, in training,
//! augmented) images, and its labels.

use candle_core::{Device, Result, Tensor};
use rayon::prelude::*;

use crate::data::augment::{write_normalized, Augment, Transform};
use crate::data::{Normalization, Split, CHANNELS};
use crate::rng::Rng;

/// The images `indices` of `split` as a `len × 3 × size × size` tensor, augmented when
/// `augment` is given (each image's transform drawn in order from its generator).
pub fn images(
    split: &Split,
    indices: &[usize],
    size: usize,
    norm: &Normalization,
    augment: Option<(&Augment, &mut Rng)>,
    device: &Device,
) -> Result<Tensor> {
    let transforms: Vec<Transform> = match augment {
        Some((augment, rng)) if augment.is_active() => {
            indices.iter().map(|_| augment.draw(rng)).collect()
        }
        _ => vec![Transform::IDENTITY; indices.len()],
    };
    let per_image = CHANNELS * size * size;
    let mut data = vec![0f32; indices.len() * per_image];
    data.par_chunks_mut(per_image)
        .zip(indices.par_iter().zip(&transforms))
        .for_each(|(out, (&i, transform))| {
            write_normalized(split.image(i, size), size, norm, transform, out);
        });
    Tensor::from_vec(data, (indices.len(), CHANNELS, size, size), device)
}

/// The labels of images `indices` as a u32 tensor.
pub fn labels(labels: &[u32], indices: &[usize], device: &Device) -> Result<Tensor> {
    let picked: Vec<u32> = indices.iter().map(|&i| labels[i]).collect();
    Tensor::from_vec(picked, indices.len(), device)
}
