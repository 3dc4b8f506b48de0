//! Checkpoints as safetensors files: named tensors plus one JSON document in the header's
//! metadata (under the key `sweep`). Files are replaced atomically, so a kill at any moment
//! leaves the previous checkpoint or the new one, never half of one.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

/// The metadata key holding the checkpoint's JSON document.
const META_KEY: &str = "sweep";

/// Why a checkpoint could not be written or read; each variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a sweep checkpoint: {message}")]
    Format { path: PathBuf, message: String },
}

/// Writes `tensors` and the JSON `meta` to `path`, atomically.
pub fn save<M: serde::Serialize>(
    path: &Path,
    tensors: &[(String, Tensor)],
    meta: &M,
) -> Result<(), CheckpointError> {
    let format = |message: String| CheckpointError::Format {
        path: path.to_path_buf(),
        message,
    };
    let io = |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    };
    let json = serde_json::to_string(meta).map_err(|e| format(e.to_string()))?;
    let info = HashMap::from([(META_KEY.to_string(), json)]);
    let views = tensors.iter().map(|(name, t)| (name.as_str(), t));
    let bytes = safetensors::serialize(views, Some(info)).map_err(|e| format(e.to_string()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    tmp.write_all(&bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// Reads the tensors (onto `device`) and the JSON metadata of a checkpoint.
pub fn load<M: serde::de::DeserializeOwned>(
    path: &Path,
    device: &Device,
) -> Result<(HashMap<String, Tensor>, M), CheckpointError> {
    let format = |message: String| CheckpointError::Format {
        path: path.to_path_buf(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let (_, header) =
        safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| format(e.to_string()))?;
    let json = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(META_KEY))
        .ok_or_else(|| format(format!("no `{META_KEY}` metadata")))?;
    let meta = serde_json::from_str(json).map_err(|e| format(e.to_string()))?;
    let tensors =
        candle_core::safetensors::load_buffer(&bytes, device).map_err(|e| format(e.to_string()))?;
    Ok((tensors, meta))
}
