//! [`Dataset`]: decoded images (u8, RGB, height × width × channel) and labels, split into
//! train, validation and test, whatever their source (a Kaggle folder or the synthetic set).

use std::ops::Deref;
use std::path::PathBuf;

/// Three colour channels: every image becomes RGB when it is decoded.
pub const CHANNELS: usize = 3;

/// The most classes a data set may have: the output layer and the confusion matrix grow with
/// it, so a stray label of 4,000,000,000 must be an error, not an allocation.
pub const MAX_CLASSES: usize = 1000;

/// The widest image, in pixels (images are square).
pub const MAX_IMAGE_SIDE: usize = 512;

/// The most bytes a decoded data set may take (all splits' pixels): it is held in memory and
/// cached on disk, so a folder or a spec that asks for more is refused before decoding.
pub const MAX_DATA_BYTES: u64 = 8 << 30;

/// Why `images` images of `side`×`side` pixels are too many bytes to decode, if they are.
pub fn too_large(images: usize, side: usize) -> Option<String> {
    let bytes = (images as u128) * (side as u128).pow(2) * CHANNELS as u128;
    (bytes > MAX_DATA_BYTES as u128).then(|| {
        format!(
            "{images} images of {side}×{side} pixels take {:.1} GiB decoded; at most {} GiB",
            bytes as f64 / (1u64 << 30) as f64,
            MAX_DATA_BYTES >> 30
        )
    })
}

/// Why a data set could not be loaded; each variant names the file (and CSV line).
///
/// A variant that holds another error either says its text and has no `source`, or is
/// `transparent`: no part of an error's chain repeats another.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: missing (the data folder needs {what})")]
    Missing { path: PathBuf, what: String },
    #[error("{path}:{line}: {message}")]
    Csv {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}: cannot decode the PNG image: {message}")]
    Image { path: PathBuf, message: String },
    #[error("{path}: the image is {width}×{height}, but the data set's images are {size}×{size}")]
    WrongSize {
        path: PathBuf,
        width: u32,
        height: u32,
        size: usize,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl DataError {
    /// Whether the user's input is at fault (the cli exits 2 for it, 1 for any other failure).
    /// A match with no catch-all: a new variant must be decided here.
    pub fn is_bad_input(&self) -> bool {
        match self {
            // The data folder is the user's: one that cannot be read is bad input too.
            DataError::Io { .. }
            | DataError::Missing { .. }
            | DataError::Csv { .. }
            | DataError::Image { .. }
            | DataError::WrongSize { .. }
            | DataError::Invalid { .. } => true,
        }
    }
}

/// Image bytes, either owned or mapped from the cache file, seen as one slice.
pub enum Pixels {
    Owned(Vec<u8>),
    Mapped {
        map: std::sync::Arc<memmap2::Mmap>,
        start: usize,
        len: usize,
    },
}

impl Deref for Pixels {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Pixels::Owned(v) => v,
            Pixels::Mapped { map, start, len } => &map[*start..*start + *len],
        }
    }
}

impl std::fmt::Debug for Pixels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pixels({} bytes)", self.len())
    }
}

/// One split of a data set: `len` images of `size × size × 3` bytes, with labels if known.
#[derive(Debug)]
pub struct Split {
    pub pixels: Pixels,
    pub labels: Option<Vec<u32>>,
    pub names: Vec<String>,
}

impl Split {
    /// The number of images.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the split has no image.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The bytes of image `i` (height × width × channel).
    pub fn image(&self, i: usize, size: usize) -> &[u8] {
        let n = size * size * CHANNELS;
        &self.pixels[i * n..(i + 1) * n]
    }
}

/// The CSV column names a data set came with, kept so a submission uses the same ones.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Columns {
    pub image: String,
    pub label: String,
}

impl Default for Columns {
    fn default() -> Self {
        Self {
            image: "Image".into(),
            label: "Class".into(),
        }
    }
}

/// A data set: square RGB images of `size` pixels, `classes` labels, three splits.
#[derive(Debug)]
pub struct Dataset {
    pub size: usize,
    pub classes: usize,
    pub columns: Columns,
    pub train: Split,
    pub val: Split,
    pub test: Split,
}

/// Which split of a data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitName {
    Train,
    Val,
    Test,
}

impl Dataset {
    /// What it holds, in words: `200 training, 60 validation and 20 test images of 16×16 in 4
    /// classes`.
    pub fn describe(&self) -> String {
        format!(
            "{} training, {} validation and {} test images of {}×{} in {} classes",
            self.train.len(),
            self.val.len(),
            self.test.len(),
            self.size,
            self.size,
            self.classes
        )
    }

    /// The named split.
    pub fn split(&self, name: SplitName) -> &Split {
        match name {
            SplitName::Train => &self.train,
            SplitName::Val => &self.val,
            SplitName::Test => &self.test,
        }
    }
}

/// Per-channel mean and standard deviation of the training pixels (on the 0–1 scale).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Normalization {
    pub mean: [f32; CHANNELS],
    pub std: [f32; CHANNELS],
}

impl Normalization {
    /// Measures the training split.
    pub fn measure(split: &Split) -> Self {
        let mut sum = [0f64; CHANNELS];
        let mut sq = [0f64; CHANNELS];
        for px in split.pixels.chunks_exact(CHANNELS) {
            for c in 0..CHANNELS {
                let v = px[c] as f64 / 255.0;
                sum[c] += v;
                sq[c] += v * v;
            }
        }
        let n = (split.pixels.len() / CHANNELS).max(1) as f64;
        let mut mean = [0f32; CHANNELS];
        let mut std = [1f32; CHANNELS];
        for c in 0..CHANNELS {
            let m = sum[c] / n;
            mean[c] = m as f32;
            // A constant channel would divide by zero: leave its scale alone.
            std[c] = ((sq[c] / n - m * m).max(0.0).sqrt() as f32).max(1e-3);
        }
        Self { mean, std }
    }
}
