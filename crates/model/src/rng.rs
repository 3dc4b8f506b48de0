//! [`Rng`], the seeded random generator (from `sweep-rng`, re-exported so that every caller
//! keeps `sweep_model::rng::Rng`), and [`stream`]: the labels of a trial's streams.

pub use sweep_rng::Rng;

/// Labels for [`Rng::derive`], so that the streams of one trial never overlap.
pub mod stream {
    /// Weight initialisation (with a hash of the parameter's name).
    pub const INIT: u64 = 1;
    /// The order of the training images in an epoch.
    pub const SHUFFLE: u64 = 2;
    /// Augmentation of the training images in an epoch.
    pub const AUGMENT: u64 = 3;
    /// Dropout masks in an epoch.
    pub const DROPOUT: u64 = 4;
    /// Synthetic data set images.
    pub const SYNTHETIC: u64 = 5;
}
