//! The decoded-data cache: one file per data set version, holding the u8 pixels, labels and
//! names of every split, memory-mapped by each trial so that thousands of PNGs are decoded
//! once per data set, not once per trial.
//!
//! Layout: the magic `SWEEPDS1`, a little-endian u64 header length, the header as JSON
//! ([`Header`]), zero padding to a 64-byte boundary, then the pixels of train, val and test.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::data::kaggle::Layout;
use crate::data::{Columns, DataError, Dataset, Pixels, Split};
use crate::ops::mmap::map_cache_file;

const MAGIC: &[u8; 8] = b"SWEEPDS1";

#[derive(serde::Serialize, serde::Deserialize)]
struct SplitHeader {
    names: Vec<String>,
    labels: Option<Vec<u32>>,
    offset: usize,
    len: usize,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Header {
    fingerprint: String,
    size: usize,
    classes: usize,
    columns: Columns,
    splits: Vec<SplitHeader>,
}

/// Whether [`load`] read the cache or decoded the images (and wrote the cache).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    Hit,
    Built,
}

/// The cache file for a data folder in `cache_dir`, named by the data's fingerprint.
pub fn cache_path(cache_dir: &Path, fingerprint: &str) -> PathBuf {
    cache_dir.join(format!("dataset-{}.bin", &fingerprint[..16]))
}

/// Loads the data set in `dir` from its cache in `cache_dir`, decoding and caching it first
/// when the cache is missing or the data files changed. `classes`, when given, is the number
/// of classes the labels must fall in.
pub fn load(
    dir: &Path,
    cache_dir: &Path,
    classes: Option<usize>,
) -> Result<(Dataset, CacheUse), DataError> {
    let layout = Layout::locate(dir)?;
    let fingerprint = layout.fingerprint()?;
    let path = cache_path(cache_dir, &fingerprint);
    if let Ok(dataset) = read(&path, &fingerprint) {
        check_classes(&layout, &dataset, classes)?;
        let classes = classes.unwrap_or(dataset.classes);
        return Ok((Dataset { classes, ..dataset }, CacheUse::Hit));
    }
    let dataset = layout.decode(classes)?;
    write(&path, &fingerprint, &dataset)?;
    Ok((dataset, CacheUse::Built))
}

fn check_classes(
    layout: &Layout,
    dataset: &Dataset,
    classes: Option<usize>,
) -> Result<(), DataError> {
    let Some(classes) = classes else {
        return Ok(());
    };
    if classes >= dataset.classes {
        return Ok(());
    }
    // The cached labels go past the asked range: decode again for an error naming the line.
    layout.decode(Some(classes)).map(|_| ())
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
    move |error| DataError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// Writes the cache atomically: a reader sees the old file, no file, or the whole new one.
fn write(path: &Path, fingerprint: &str, dataset: &Dataset) -> Result<(), DataError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    let mut offset = 0;
    let splits = [&dataset.train, &dataset.val, &dataset.test]
        .into_iter()
        .map(|s| {
            let header = SplitHeader {
                names: s.names.clone(),
                labels: s.labels.clone(),
                offset,
                len: s.pixels.len(),
            };
            offset += s.pixels.len();
            header
        })
        .collect();
    let header = Header {
        fingerprint: fingerprint.to_string(),
        size: dataset.size,
        classes: dataset.classes,
        columns: dataset.columns.clone(),
        splits,
    };
    let json = serde_json::to_vec(&header).expect("the cache header serialises");
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_error(dir))?;
    let file = tmp.as_file_mut();
    let mut out = std::io::BufWriter::new(file);
    let start = 16 + json.len();
    let padding = (64 - start % 64) % 64;
    out.write_all(MAGIC)
        .and_then(|_| out.write_all(&(json.len() as u64).to_le_bytes()))
        .and_then(|_| out.write_all(&json))
        .and_then(|_| out.write_all(&vec![0u8; padding]))
        .and_then(|_| {
            for s in [&dataset.train, &dataset.val, &dataset.test] {
                out.write_all(&s.pixels)?;
            }
            out.flush()
        })
        .map_err(io_error(path))?;
    drop(out);
    tmp.as_file().sync_all().map_err(io_error(path))?;
    tmp.persist(path).map_err(|e| io_error(path)(e.error))?;
    Ok(())
}

fn read(path: &Path, fingerprint: &str) -> Result<Dataset, DataError> {
    let invalid = |message: &str| DataError::Invalid {
        path: path.to_path_buf(),
        message: message.to_string(),
    };
    let file = std::fs::File::open(path).map_err(io_error(path))?;
    let map = Arc::new(map_cache_file(&file).map_err(io_error(path))?);
    if map.len() < 16 || &map[..8] != MAGIC {
        return Err(invalid("not a sweep data cache"));
    }
    let json_len = u64::from_le_bytes(map[8..16].try_into().expect("8 bytes")) as usize;
    let json = map
        .get(16..16 + json_len)
        .ok_or_else(|| invalid("truncated header"))?;
    let header: Header = serde_json::from_slice(json).map_err(|e| invalid(&e.to_string()))?;
    if header.fingerprint != fingerprint {
        return Err(invalid("made from other data files"));
    }
    let start = 16 + json_len + (64 - (16 + json_len) % 64) % 64;
    let mut splits = header.splits.into_iter().map(|s| {
        if start + s.offset + s.len > map.len() {
            return Err(invalid("truncated pixels"));
        }
        Ok(Split {
            pixels: Pixels::Mapped {
                map: map.clone(),
                start: start + s.offset,
                len: s.len,
            },
            labels: s.labels,
            names: s.names,
        })
    });
    let mut next = || {
        splits
            .next()
            .unwrap_or_else(|| Err(invalid("missing split")))
    };
    Ok(Dataset {
        size: header.size,
        classes: header.classes,
        columns: header.columns,
        train: next()?,
        val: next()?,
        test: next()?,
    })
}
