//! The data a trial learns from: [`Dataset`] and its splits ([`dataset`]), the Kaggle folder
//! layout ([`kaggle`]), the decoded-data cache ([`cache`]), the built-in synthetic set
//! ([`synthetic`]), random augmentation ([`augment`]) and batches as tensors ([`batch`]).
//! Nothing here imports [`nn`](crate::nn) or [`train`](crate::train).

pub mod augment;
pub mod batch;
pub mod cache;
pub mod dataset;
pub mod kaggle;
pub mod synthetic;

pub use dataset::{
    Columns, DataError, Dataset, Normalization, Pixels, Split, SplitName, CHANNELS, MAX_CLASSES,
    MAX_DATA_BYTES, MAX_IMAGE_SIDE,
};
