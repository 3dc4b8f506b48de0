//! The competition's folder layout: `train.csv`, `val.csv` (or `validation.csv`), `test.csv`
//! and the PNG images in `train_images/`, `val_images/`, `test_images/` (or `train/`,
//! `validation/`, `test/`). [`Layout::locate`] finds the files, [`Layout::decode`] reads them.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::data::{
    dataset, Columns, DataError, Dataset, Pixels, Split, CHANNELS, MAX_CLASSES, MAX_IMAGE_SIDE,
};

/// Where one split's CSV and images are.
#[derive(Debug, Clone)]
pub struct SplitFiles {
    pub csv: PathBuf,
    pub images: PathBuf,
}

/// The files of a data set in the competition layout.
#[derive(Debug, Clone)]
pub struct Layout {
    pub dir: PathBuf,
    pub train: SplitFiles,
    pub val: SplitFiles,
    pub test: SplitFiles,
}

fn first_existing(dir: &Path, names: &[&str], what: &str) -> Result<PathBuf, DataError> {
    names
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.exists())
        .ok_or_else(|| DataError::Missing {
            path: dir.join(names[0]),
            what: format!("{what} ({})", names.join(" or ")),
        })
}

impl Layout {
    /// Finds the CSV files and image folders of `dir`, accepting both naming variants.
    pub fn locate(dir: &Path) -> Result<Self, DataError> {
        if !dir.is_dir() {
            return Err(DataError::Missing {
                path: dir.to_path_buf(),
                what: "a folder with train.csv, val.csv, test.csv and the image folders".into(),
            });
        }
        let split =
            |csvs: &[&str], folders: &[&str], what: &str| -> Result<SplitFiles, DataError> {
                Ok(SplitFiles {
                    csv: first_existing(dir, csvs, &format!("the {what} CSV"))?,
                    images: first_existing(dir, folders, &format!("the {what} images"))?,
                })
            };
        Ok(Self {
            dir: dir.to_path_buf(),
            train: split(&["train.csv"], &["train_images", "train"], "training")?,
            val: split(
                &["val.csv", "validation.csv"],
                &["val_images", "validation_images", "validation", "val"],
                "validation",
            )?,
            test: split(&["test.csv"], &["test_images", "test"], "test")?,
        })
    }

    /// A digest of everything the decoded data depends on: the CSV texts and the name, length
    /// and modification time of every image file. A change to any of them makes a new cache.
    pub fn fingerprint(&self) -> Result<String, DataError> {
        let mut hash = Sha256::new();
        hash.update(b"sweep-dataset-v1");
        for files in [&self.train, &self.val, &self.test] {
            let text = std::fs::read(&files.csv).map_err(|error| DataError::Io {
                path: files.csv.clone(),
                error,
            })?;
            hash.update((text.len() as u64).to_le_bytes());
            hash.update(&text);
            let io = |error| DataError::Io {
                path: files.images.clone(),
                error,
            };
            let mut entries: Vec<(String, u64, u128)> = Vec::new();
            for entry in std::fs::read_dir(&files.images).map_err(io)? {
                let entry = entry.map_err(io)?;
                let meta = entry.metadata().map_err(io)?;
                let mtime = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                entries.push((
                    entry.file_name().to_string_lossy().into_owned(),
                    meta.len(),
                    mtime,
                ));
            }
            entries.sort();
            for (name, len, mtime) in entries {
                hash.update(name.as_bytes());
                hash.update([0]);
                hash.update(len.to_le_bytes());
                hash.update(mtime.to_le_bytes());
            }
        }
        Ok(hex(&hash.finalize()))
    }

    /// Reads the CSVs and decodes every image in parallel.
    pub fn decode(&self, classes: Option<usize>) -> Result<Dataset, DataError> {
        let (columns, train_rows) = read_csv(&self.train.csv, true)?;
        let (_, val_rows) = read_csv(&self.val.csv, true)?;
        let (_, test_rows) = read_csv(&self.test.csv, false)?;
        let max_label = train_rows
            .iter()
            .chain(&val_rows)
            .filter_map(|r| r.label)
            .max()
            .unwrap_or(0) as usize;
        // The first label at or above `bound`, as the error that names its CSV and line.
        let labelled = [(&self.train.csv, &train_rows), (&self.val.csv, &val_rows)];
        let out_of_range = |bound: usize, classes: &str| {
            labelled.iter().find_map(|(csv, rows)| {
                let row = rows
                    .iter()
                    .find(|r| r.label.is_some_and(|l| l as usize >= bound))?;
                Some(DataError::Csv {
                    path: csv.to_path_buf(),
                    line: row.line,
                    message: format!(
                        "label {} is out of range: {classes} {bound} classes (0–{})",
                        row.label.unwrap_or(0),
                        bound.saturating_sub(1)
                    ),
                })
            })
        };
        if let Some(error) = out_of_range(MAX_CLASSES, "a data set has at most") {
            return Err(error);
        }
        let classes = classes.unwrap_or(max_label + 1);
        if let Some(error) = out_of_range(classes, "the data set has") {
            return Err(error);
        }
        let first = train_rows.first().ok_or_else(|| DataError::Invalid {
            path: self.train.csv.clone(),
            message: "no training images are listed".into(),
        })?;
        let first_path = image_path(&self.train, first)?;
        let probe = decode_png(&first_path, None)?;
        let size = ((probe.len() / CHANNELS) as f64).sqrt() as usize;
        let images = train_rows.len() + val_rows.len() + test_rows.len();
        if let Some(message) = dataset::too_large(images, size) {
            let path = self.dir.clone();
            return Err(DataError::Invalid { path, message });
        }
        Ok(Dataset {
            size,
            classes,
            columns,
            train: decode_split(&self.train, train_rows, size, true)?,
            val: decode_split(&self.val, val_rows, size, true)?,
            test: decode_split(&self.test, test_rows, size, false)?,
        })
    }
}

/// One data row of a split's CSV.
#[derive(Debug)]
struct Row {
    line: usize,
    name: String,
    label: Option<u32>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A CSV text's line numbers, by byte offset.
///
/// The csv crate's own `Position::line` counts the `\n`s it has consumed, and it stops
/// reading a record at the `\r` of a `\r\n`: every record after the first line of a file with
/// Windows line endings (what Python's csv module writes), and every record after a blank line,
/// would be named one line too early.
struct LineStarts<'a> {
    bytes: &'a [u8],
    /// The byte offset of every `\n`.
    newlines: Vec<usize>,
}

impl<'a> LineStarts<'a> {
    fn of(bytes: &'a [u8]) -> Self {
        let newlines = (0..bytes.len()).filter(|&i| bytes[i] == b'\n').collect();
        Self { bytes, newlines }
    }

    /// The 1-based line of the record at `position`: the line of its first byte, past the
    /// previous record's line end and any blank lines.
    fn line_of(&self, position: &csv::Position) -> usize {
        let at = (position.byte() as usize).min(self.bytes.len());
        let start = at
            + self.bytes[at..]
                .iter()
                .take_while(|b| matches!(b, b'\r' | b'\n'))
                .count();
        self.newlines.partition_point(|&n| n < start) + 1
    }
}

fn read_csv(path: &Path, labelled: bool) -> Result<(Columns, Vec<Row>), DataError> {
    let csv_error = |line: usize, message: String| DataError::Csv {
        path: path.to_path_buf(),
        line,
        message,
    };
    let bytes = read_at_most(path, MAX_CSV_BYTES)?;
    let lines = LineStarts::of(&bytes);
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(bytes.as_slice());
    let headers = reader
        .headers()
        .map_err(|e| csv_error(1, e.to_string()))?
        .clone();
    let find = |names: &[&str]| {
        headers
            .iter()
            .position(|h| names.iter().any(|n| h.eq_ignore_ascii_case(n)))
    };
    let image_col = find(&["Image", "image_id"]).ok_or_else(|| {
        csv_error(
            1,
            format!(
                "no image column (`Image` or `image_id`) in the header {:?}",
                headers.iter().collect::<Vec<_>>()
            ),
        )
    })?;
    let label_col = find(&["Class", "label"]);
    if labelled && label_col.is_none() {
        return Err(csv_error(
            1,
            format!(
                "no label column (`Class` or `label`) in the header {:?}",
                headers.iter().collect::<Vec<_>>()
            ),
        ));
    }
    let columns = Columns {
        image: headers[image_col].to_string(),
        label: label_col.map_or_else(|| Columns::default().label, |c| headers[c].to_string()),
    };
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| lines.line_of(p));
            csv_error(line, e.to_string())
        })?;
        let line = record.position().map_or(0, |p| lines.line_of(p));
        let name = record
            .get(image_col)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| csv_error(line, "the image name is empty".into()))?
            .to_string();
        if !is_file_name(&name) {
            let message = format!(
                "image {name:?} is not a file name: the images are read from the split's \
                 image folder, so a name holds no path separator, `..` or control character"
            );
            return Err(csv_error(line, message));
        }
        let label = match (labelled, label_col) {
            (true, Some(col)) => {
                let text = record.get(col).unwrap_or("");
                let label = text.parse::<u32>().map_err(|_| {
                    csv_error(
                        line,
                        format!("label `{text}` is not a non-negative integer"),
                    )
                })?;
                Some(label)
            }
            _ => None,
        };
        rows.push(Row { line, name, label });
    }
    Ok((columns, rows))
}

/// The largest CSV read, in bytes: a million rows fit many times over.
const MAX_CSV_BYTES: u64 = 256 << 20;

/// The bytes of `path`, refused when there are more than `max`.
fn read_at_most(path: &Path, max: u64) -> Result<Vec<u8>, DataError> {
    use std::io::Read;
    let io = |error| DataError::Io {
        path: path.to_path_buf(),
        error,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > max {
        return Err(DataError::Invalid {
            path: path.to_path_buf(),
            message: format!("larger than {} MiB", max >> 20),
        });
    }
    Ok(bytes)
}

/// Whether a CSV's image name is one file's name in its folder: one normal path component,
/// without control characters, so that no row can make the reader open a file elsewhere.
fn is_file_name(name: &str) -> bool {
    let mut components = Path::new(name).components();
    matches!(
        (components.next(), components.next()),
        (Some(std::path::Component::Normal(_)), None)
    ) && !name.contains(['/', '\\'])
        && !name.chars().any(char::is_control)
}

fn image_path(files: &SplitFiles, row: &Row) -> Result<PathBuf, DataError> {
    let direct = files.images.join(&row.name);
    let with_png = files.images.join(format!("{}.png", row.name));
    let has_png = row.name.to_ascii_lowercase().ends_with(".png");
    [direct.clone(), with_png]
        .into_iter()
        .take(if has_png { 1 } else { 2 })
        .find(|p| p.is_file())
        .ok_or_else(|| DataError::Csv {
            path: files.csv.clone(),
            line: row.line,
            message: format!("image `{}` is not in {}", row.name, files.images.display()),
        })
}

/// Decodes one PNG into RGB bytes; with `size`, the image must be `size × size`.
fn decode_png(path: &Path, size: Option<usize>) -> Result<Vec<u8>, DataError> {
    let bytes = std::fs::read(path).map_err(|error| DataError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    let image_error = |e: image::ImageError| DataError::Image {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    // The header's size is checked before the pixels are allocated: a few hostile bytes can
    // claim an image of 2^31 × 2^31 pixels.
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE as u32);
    limits.max_image_height = Some(MAX_IMAGE_SIDE as u32);
    let mut reader =
        image::ImageReader::with_format(std::io::Cursor::new(&bytes), image::ImageFormat::Png);
    reader.limits(limits);
    let image = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => DataError::Image {
            path: path.to_path_buf(),
            message: format!("larger than {MAX_IMAGE_SIDE}×{MAX_IMAGE_SIDE} pixels"),
        },
        e => image_error(e),
    })?;
    let (width, height) = (image.width(), image.height());
    let expected = size.unwrap_or(width as usize);
    if width != height || width as usize != expected {
        return Err(DataError::WrongSize {
            path: path.to_path_buf(),
            width,
            height,
            size: expected,
        });
    }
    Ok(image.to_rgb8().into_raw())
}

fn decode_split(
    files: &SplitFiles,
    rows: Vec<Row>,
    size: usize,
    labelled: bool,
) -> Result<Split, DataError> {
    let images: Vec<Vec<u8>> = rows
        .par_iter()
        .map(|row| decode_png(&image_path(files, row)?, Some(size)))
        .collect::<Result<_, _>>()?;
    let labels: Option<Vec<u32>> = if labelled {
        rows.iter().map(|r| r.label).collect()
    } else {
        None
    };
    Ok(Split {
        pixels: Pixels::Owned(images.concat()),
        labels,
        names: rows.into_iter().map(|r| r.name).collect(),
    })
}

/// Writes `dataset` in the competition layout (`Image,Class` columns, `train_images/` …) into
/// `dir`; the test CSV lists names only, as the competition's does.
pub fn write_layout(dataset: &Dataset, dir: &Path) -> Result<(), DataError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |error| DataError::Io { path, error }
    };
    let splits = [
        (&dataset.train, "train.csv", "train_images", true),
        (&dataset.val, "val.csv", "val_images", true),
        (&dataset.test, "test.csv", "test_images", false),
    ];
    for (split, csv_name, folder, labelled) in splits {
        let images = dir.join(folder);
        std::fs::create_dir_all(&images).map_err(io(&images))?;
        (0..split.len()).into_par_iter().try_for_each(|i| {
            let path = images.join(&split.names[i]);
            image::save_buffer(
                &path,
                split.image(i, dataset.size),
                dataset.size as u32,
                dataset.size as u32,
                image::ColorType::Rgb8,
            )
            .map_err(|e| DataError::Image {
                path: path.clone(),
                message: e.to_string(),
            })
        })?;
        let mut text = if labelled {
            format!("{},{}\n", dataset.columns.image, dataset.columns.label)
        } else {
            format!("{}\n", dataset.columns.image)
        };
        for i in 0..split.len() {
            text.push_str(&split.names[i]);
            match (&split.labels, labelled) {
                (Some(labels), true) => text.push_str(&format!(",{}\n", labels[i])),
                _ => text.push('\n'),
            }
        }
        let csv = dir.join(csv_name);
        std::fs::write(&csv, text).map_err(io(&csv))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::cache::{self, CacheUse};

    /// Which of the two layouts seen in the wild a fixture uses.
    #[derive(Clone, Copy)]
    enum Variant {
        /// `Image,Class`, names with `.png`, `val.csv`, `train_images/`.
        ImageClass,
        /// `image_id,label`, names without `.png`, `validation.csv`, `train/`.
        ImageIdLabel,
    }

    fn png(path: &Path, size: u32, value: u8, kind: image::ColorType) {
        let channels = kind.channel_count() as usize;
        let bytes = vec![value; (size * size) as usize * channels];
        image::save_buffer(path, &bytes, size, size, kind).unwrap();
    }

    /// A data set of 4×4 images: 3 train, 2 val, 2 test.
    fn fixture(variant: Variant) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let (header, ext, val_csv, folders) = match variant {
            Variant::ImageClass => (
                "Image,Class",
                ".png",
                "val.csv",
                ["train_images", "val_images", "test_images"],
            ),
            Variant::ImageIdLabel => (
                "image_id,label",
                "",
                "validation.csv",
                ["train", "validation", "test"],
            ),
        };
        let test_header = header.split(',').next().unwrap();
        let splits = [
            (
                "train.csv",
                folders[0],
                vec![("a", Some(0)), ("b", Some(2)), ("c", Some(1))],
            ),
            (val_csv, folders[1], vec![("d", Some(1)), ("e", Some(0))]),
            ("test.csv", folders[2], vec![("f", None), ("g", None)]),
        ];
        for (csv, folder, rows) in splits {
            std::fs::create_dir_all(dir.join(folder)).unwrap();
            let mut text = format!(
                "{}\n",
                if rows[0].1.is_some() {
                    header
                } else {
                    test_header
                }
            );
            for (i, (name, label)) in rows.iter().enumerate() {
                let kind = [
                    image::ColorType::Rgb8,
                    image::ColorType::Rgba8,
                    image::ColorType::L8,
                ][i % 3];
                png(
                    &dir.join(folder).join(format!("{name}.png")),
                    4,
                    10 * i as u8,
                    kind,
                );
                match label {
                    Some(l) => text.push_str(&format!("{name}{ext},{l}\n")),
                    None => text.push_str(&format!("{name}{ext}\n")),
                }
            }
            std::fs::write(dir.join(csv), text).unwrap();
        }
        tmp
    }

    fn decode(dir: &Path) -> Result<Dataset, DataError> {
        Layout::locate(dir)?.decode(None)
    }

    #[test]
    fn both_layouts_load_with_their_column_names() {
        for (variant, columns) in [
            (Variant::ImageClass, ("Image", "Class")),
            (Variant::ImageIdLabel, ("image_id", "label")),
        ] {
            let tmp = fixture(variant);
            let ds = decode(tmp.path()).unwrap();
            assert_eq!((ds.size, ds.classes), (4, 3));
            assert_eq!((ds.train.len(), ds.val.len(), ds.test.len()), (3, 2, 2));
            assert_eq!(ds.train.labels.as_deref(), Some(&[0, 2, 1][..]));
            assert_eq!(ds.test.labels, None);
            assert_eq!(
                (ds.columns.image.as_str(), ds.columns.label.as_str()),
                columns
            );
            // RGBA and greyscale images become RGB: 4×4×3 bytes each, the value kept.
            assert_eq!(ds.train.pixels.len(), 3 * 4 * 4 * 3);
            assert!(ds.train.image(1, 4).iter().all(|&v| v == 10));
            assert!(ds.train.image(2, 4).iter().all(|&v| v == 20));
        }
    }

    fn error_of(tmp: &tempfile::TempDir, edit: impl FnOnce(&Path)) -> String {
        edit(tmp.path());
        decode(tmp.path()).unwrap_err().to_string()
    }

    #[test]
    fn a_missing_file_or_folder_is_named() {
        let tmp = fixture(Variant::ImageClass);
        let err = error_of(&tmp, |d| std::fs::remove_file(d.join("val.csv")).unwrap());
        assert!(
            err.contains("val.csv") && err.contains("validation.csv"),
            "{err}"
        );
        let tmp = fixture(Variant::ImageIdLabel);
        let err = error_of(&tmp, |d| std::fs::remove_dir_all(d.join("test")).unwrap());
        assert!(
            err.contains("test_images") && err.contains("missing"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_column_names_the_csv_and_line() {
        let tmp = fixture(Variant::ImageClass);
        let err = error_of(&tmp, |d| {
            std::fs::write(d.join("train.csv"), "Image,Kind\na.png,0\n").unwrap()
        });
        assert!(
            err.contains("train.csv:1:") && err.contains("label column"),
            "{err}"
        );
        let err = error_of(&tmp, |d| {
            std::fs::write(d.join("train.csv"), "File,Class\na.png,0\n").unwrap()
        });
        assert!(
            err.contains("train.csv:1:") && err.contains("image column"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_label_names_the_csv_line() {
        let tmp = fixture(Variant::ImageClass);
        let err = error_of(&tmp, |d| {
            std::fs::write(d.join("train.csv"), "Image,Class\na.png,0\nb.png,two\n").unwrap()
        });
        assert!(
            err.contains("train.csv:3:") && err.contains("`two`"),
            "{err}"
        );
        let err = error_of(&tmp, |d| {
            std::fs::write(d.join("train.csv"), "Image,Class\na.png,-1\n").unwrap()
        });
        assert!(
            err.contains("train.csv:2:") && err.contains("`-1`"),
            "{err}"
        );
        let tmp = fixture(Variant::ImageClass);
        let err = Layout::locate(tmp.path())
            .unwrap()
            .decode(Some(2))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("train.csv:3:") && err.contains("out of range"),
            "{err}"
        );
    }

    #[test]
    fn a_listed_image_that_is_not_there_names_the_csv_line() {
        let tmp = fixture(Variant::ImageIdLabel);
        let err = error_of(&tmp, |d| {
            std::fs::remove_file(d.join("validation/e.png")).unwrap()
        });
        assert!(
            err.contains("validation.csv:3:") && err.contains("`e`"),
            "{err}"
        );
    }

    #[test]
    fn windows_line_endings_and_blank_lines_keep_the_line_numbers() {
        let tmp = fixture(Variant::ImageClass);
        let crlf = "Image,Class\r\na.png,0\r\nb.png,2\r\nc.png,1\r\na.png,0\r\nb.png,two\r\n";
        let err = error_of(&tmp, |d| std::fs::write(d.join("train.csv"), crlf).unwrap());
        assert!(
            err.contains("train.csv:6:") && err.contains("`two`"),
            "a bad label on line 6 of a CRLF file: {err}"
        );
        let tmp = fixture(Variant::ImageClass);
        let crlf = "Image,Class\r\na.png,0\r\nb.png,2\r\nc.png,1\r\na.png,0\r\nzz.png,1\r\n";
        let err = error_of(&tmp, |d| std::fs::write(d.join("train.csv"), crlf).unwrap());
        assert!(
            err.contains("train.csv:6:") && err.contains("`zz.png`"),
            "a missing image listed on line 6 of a CRLF file: {err}"
        );
        let tmp = fixture(Variant::ImageClass);
        let blank = "Image,Class\n\na.png,0\r\n\r\n\nb.png,x\n";
        let err = error_of(&tmp, |d| {
            std::fs::write(d.join("train.csv"), blank).unwrap()
        });
        assert!(
            err.contains("train.csv:6:") && err.contains("`x`"),
            "blank lines are counted: {err}"
        );
        let tmp = fixture(Variant::ImageClass);
        let crlf = "Image,Class\r\na.png,0\r\nb.png,2,extra\r\n";
        let err = error_of(&tmp, |d| std::fs::write(d.join("train.csv"), crlf).unwrap());
        assert!(
            err.contains("train.csv:3:"),
            "a malformed record of a CRLF file: {err}"
        );
    }

    #[test]
    fn truncated_unreadable_and_wrongly_sized_pngs_are_named() {
        let tmp = fixture(Variant::ImageClass);
        let err = error_of(&tmp, |d| {
            let path = d.join("train_images/b.png");
            let bytes = std::fs::read(&path).unwrap();
            std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        });
        assert!(
            err.contains("b.png") && err.contains("cannot decode"),
            "{err}"
        );
        let tmp = fixture(Variant::ImageClass);
        let err = error_of(&tmp, |d| {
            std::fs::write(d.join("test_images/g.png"), "not a png").unwrap()
        });
        assert!(
            err.contains("g.png") && err.contains("cannot decode"),
            "{err}"
        );
        let tmp = fixture(Variant::ImageClass);
        let err = error_of(&tmp, |d| {
            png(&d.join("val_images/d.png"), 5, 0, image::ColorType::Rgb8)
        });
        assert!(
            err.contains("d.png") && err.contains("5×5") && err.contains("4×4"),
            "{err}"
        );
    }

    #[test]
    fn the_cache_is_reused_and_rebuilt_when_the_data_changes() {
        let tmp = fixture(Variant::ImageClass);
        let cache_dir = tmp.path().join("cache");
        let (built, how) = cache::load(tmp.path(), &cache_dir, None).unwrap();
        assert_eq!(how, CacheUse::Built);
        let (hit, how) = cache::load(tmp.path(), &cache_dir, None).unwrap();
        assert_eq!(how, CacheUse::Hit);
        assert_eq!(&*hit.train.pixels, &*built.train.pixels);
        assert_eq!(hit.train.names, built.train.names);
        assert_eq!(hit.val.labels, built.val.labels);
        assert_eq!(hit.columns, built.columns);
        std::fs::write(
            tmp.path().join("train.csv"),
            "Image,Class\na.png,0\nb.png,2\n",
        )
        .unwrap();
        let (changed, how) = cache::load(tmp.path(), &cache_dir, None).unwrap();
        assert_eq!(how, CacheUse::Built);
        assert_eq!(changed.train.len(), 2);
        // Asking for fewer classes than the cached labels need is still an error with a line.
        let err = cache::load(tmp.path(), &cache_dir, Some(2))
            .unwrap_err()
            .to_string();
        assert!(err.contains("train.csv:3:"), "{err}");
    }

    #[test]
    fn written_layout_reads_back_the_same() {
        let spec = crate::SyntheticSpec {
            classes: 4,
            size: 8,
            train: 6,
            val: 4,
            test: 3,
            seed: 1,
        };
        let ds = spec.generate();
        let tmp = tempfile::tempdir().unwrap();
        write_layout(&ds, tmp.path()).unwrap();
        let back = decode(tmp.path()).unwrap();
        assert_eq!(&*back.train.pixels, &*ds.train.pixels);
        assert_eq!(back.val.labels, ds.val.labels);
        assert_eq!(back.test.names, ds.test.names);
        assert_eq!(back.test.labels, None);
    }
}
