//! [`predict`]: labels a split with a saved model; and [`evaluate`], the one evaluation pass
//! that validation and prediction share.

use std::path::{Path, PathBuf};

use candle_core::{Device, D};
use candle_nn::VarMap;

use crate::data::{batch, Dataset, Normalization, Split};
use crate::nn::Net;
use crate::train::checkpoint::{self, load_model_tensors, CheckpointError, ModelCard};
use crate::train::metrics::Confusion;

/// Images per evaluation batch; one size for validation and prediction, so that both compute
/// exactly the same logits.
const EVAL_BATCH: usize = 256;

/// The mean cross-entropy (when the split has labels) and the predicted labels of a split.
pub(crate) fn evaluate(
    net: &Net,
    split: &Split,
    size: usize,
    norm: &Normalization,
    device: &Device,
) -> candle_core::Result<(Option<f64>, Vec<u32>)> {
    let mut predicted = Vec::with_capacity(split.len());
    let mut loss_sum = 0.0;
    let all: Vec<usize> = (0..split.len()).collect();
    for indices in all.chunks(EVAL_BATCH) {
        let xs = batch::images(split, indices, size, norm, None, device)?;
        let logits = net.forward(&xs)?;
        if let Some(labels) = &split.labels {
            let ys = batch::labels(labels, indices, device)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &ys)?.to_scalar::<f32>()?;
            loss_sum += loss as f64 * indices.len() as f64;
        }
        predicted.extend(logits.argmax(D::Minus1)?.to_vec1::<u32>()?);
    }
    let loss = split
        .labels
        .as_ref()
        .map(|_| loss_sum / split.len().max(1) as f64);
    Ok((loss, predicted))
}

/// Why a saved model could not label a split.
#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    #[error("{path}: the model was trained on {model_size}×{model_size} images in {model_classes} classes, the data set has {size}×{size} in {classes}")]
    Mismatch {
        path: PathBuf,
        model_size: usize,
        model_classes: usize,
        size: usize,
        classes: usize,
    },
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl PredictError {
    /// Whether the user's input is at fault (the cli exits 2 for it, 1 for any other failure).
    /// A match with no catch-all: a new variant must be decided here.
    pub fn is_bad_input(&self) -> bool {
        match self {
            PredictError::Checkpoint(e) => e.is_bad_input(),
            PredictError::Mismatch { .. } | PredictError::Candle(_) => false,
        }
    }
}

/// What [`predict`] returns: a label per image, and the macro F1 when the split has labels.
#[derive(Debug, Clone)]
pub struct Prediction {
    pub labels: Vec<u32>,
    pub card: ModelCard,
    pub confusion: Option<Confusion>,
}

/// Labels every image of `split` (in order) with the model saved at `path` (a best or last
/// checkpoint of [`train`]).
pub fn predict(
    path: &Path,
    dataset: &Dataset,
    split: &Split,
    device: &Device,
) -> Result<Prediction, PredictError> {
    let (tensors, card): (_, ModelCard) = checkpoint::load(path, device)?;
    if card.size != dataset.size || card.classes != dataset.classes {
        return Err(PredictError::Mismatch {
            path: path.to_path_buf(),
            model_size: card.size,
            model_classes: card.classes,
            size: dataset.size,
            classes: dataset.classes,
        });
    }
    let vars = VarMap::new();
    let net = Net::new(&card.model, card.size, card.classes, 0, &vars, device)?;
    load_model_tensors(&vars, &tensors)?;
    let (_, labels) = evaluate(&net, split, card.size, &card.norm, device)?;
    let confusion = split
        .labels
        .as_ref()
        .map(|truth| Confusion::from_labels(card.classes, truth, &labels));
    Ok(Prediction {
        labels,
        card,
        confusion,
    })
}
