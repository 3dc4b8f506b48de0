//! The data CSV reader, through the one way the tool reads a data folder
//! (`Layout::locate`, then `Layout::decode`): one of the three CSVs of a small valid folder
//! is mutated, and the folder decodes, or the error starts with the path of the file at
//! fault, and nothing panics.

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use sweep_model::kaggle::Layout;

use crate::mutation::{escaped, Case, Corpus};
use crate::runner::{check, fuzz, Outcome};

/// The images each split's folder holds (4×4 RGB PNGs).
const IMAGES: [&str; 3] = ["a.png", "b.png", "c.png"];

/// CSV's own words and the columns the reader looks for.
const WORDS: &[&[u8]] = &[
    b"Image",
    b"Class",
    b"image_id",
    b"label",
    b"a.png",
    b"b",
    b"a.png,0\n",
    b",,,,",
    b"\"\"",
    b"\"a\nb\"",
    b"c.png,4294967295\n",
    b"c.png,4294967296\n",
    b"c.png,-1\n",
    b"Image,Image,Class,Class\n",
];

/// The valid CSVs: the two column conventions, Windows line ends, quotes, an extra column
/// and a blank line; the test CSV's seeds list names only.
fn corpus(labelled: bool) -> Corpus {
    let seeds: &[&str] = match labelled {
        true => &[
            "Image,Class\na.png,0\nb.png,1\nc.png,1\n",
            "image_id,label\r\na,1\r\nb,0\r\n",
            "Class,Image,Note\n\"0\",\"a.png\",\"x, y\"\n\n2, c.png ,\n",
        ],
        false => &["Image\na.png\nb.png\nc.png\n", "image_id\r\nc\r\n"],
    };
    Corpus::new(seeds.iter().map(|s| s.as_bytes().to_vec()).collect(), WORDS)
}

/// A data folder in the competition layout, its CSVs not yet written.
fn data_folder(dir: &Path) {
    for folder in ["train_images", "val_images", "test_images"] {
        std::fs::create_dir_all(dir.join(folder)).expect("an image folder");
        for (i, name) in IMAGES.iter().enumerate() {
            let pixels = vec![40 * i as u8; 4 * 4 * 3];
            image::save_buffer(
                dir.join(folder).join(name),
                &pixels,
                4,
                4,
                image::ColorType::Rgb8,
            )
            .expect("a PNG");
        }
    }
}

/// The property: with `csvs` as train.csv, val.csv and test.csv, the folder decodes into a
/// consistent data set, or the error names a file.
fn decode(dir: &Path, csvs: [&[u8]; 3], classes: Option<usize>) -> Result<Outcome, TestCaseError> {
    for (name, bytes) in ["train.csv", "val.csv", "test.csv"].iter().zip(csvs) {
        std::fs::write(dir.join(name), bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
    match Layout::locate(dir).and_then(|layout| layout.decode(classes)) {
        Ok(data) => {
            let image = data.size * data.size * 3;
            for split in [&data.train, &data.val, &data.test] {
                check(split.pixels.len() == split.len() * image, || {
                    format!("{} images in {} bytes", split.len(), split.pixels.len())
                })?;
            }
            for split in [&data.train, &data.val] {
                let labels = split.labels.as_deref().unwrap_or_default();
                check(labels.len() == split.len(), || "a label is missing".into())?;
                check(labels.iter().all(|&l| (l as usize) < data.classes), || {
                    format!("a label is not below the {} classes", data.classes)
                })?;
            }
            Ok(Outcome::Read)
        }
        Err(e) => {
            let message = e.to_string();
            let named = message.starts_with(&dir.display().to_string())
                || message
                    .split_once(": ")
                    .is_some_and(|(path, _)| Path::new(path).is_file());
            check(named, || {
                format!("the error does not name a file: {message}")
            })
            .map(|()| Outcome::Refused)
        }
    }
}

#[test]
fn mutated_data_csvs_decode_or_name_the_file() {
    let labelled = corpus(true);
    let names_only = corpus(false);
    let tmp = tempfile::tempdir().expect("a temporary folder");
    data_folder(tmp.path());
    let (train, val, test) = (
        labelled.seeds[0].clone(),
        labelled.seeds[1].clone(),
        names_only.seeds[0].clone(),
    );
    let strategy = (
        0..3usize,
        labelled.cases(8),
        names_only.cases(8),
        prop_oneof![Just(None), Just(Some(2)), Just(Some(3))],
    );
    fuzz(
        "data_csv",
        600,
        0.3,
        strategy,
        |(fuzzed, labelled_case, names_case, classes): (usize, Case, Case, Option<usize>)| {
            let bytes = match fuzzed {
                2 => names_only.bytes(&names_case),
                _ => labelled.bytes(&labelled_case),
            };
            let mut csvs: [&[u8]; 3] = [&train, &val, &test];
            csvs[fuzzed] = &bytes;
            decode(tmp.path(), csvs, classes).map_err(|e| {
                TestCaseError::fail(format!("{e}\ncsv {fuzzed}: {}", escaped(&bytes, 2000)))
            })
        },
    );
}
