//! The checkpoint loader (`checkpoint::load`): checkpoints written by `checkpoint::save`,
//! damaged byte by byte and, header and all, field by field (dtypes, shapes, offsets, the
//! metadata's JSON), load into tensors and a `ModelCard`, or fail with an error that starts
//! with the file's path; nothing panics or allocates what the file does not hold.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{json, Value};
use sweep_model::train::checkpoint::{load, save};
use sweep_model::train::ModelCard;
use sweep_model::{ModelConfig, Normalization};

use crate::mutation::{escaped, Case, Corpus};
use crate::runner::{check, fuzz, Outcome};

/// safetensors' dtype names, and names that are not.
const DTYPES: &[&str] = &[
    "BOOL",
    "F4",
    "F6_E2M3",
    "F6_E3M2",
    "U8",
    "I8",
    "F8_E5M2",
    "F8_E4M3",
    "F8_E8M0",
    "F8_E4M3FNUZ",
    "F8_E5M2FNUZ",
    "I16",
    "U16",
    "F16",
    "BF16",
    "I32",
    "U32",
    "F32",
    "C64",
    "F64",
    "I64",
    "U64",
    "F128",
    "",
];

/// Values a header field is set to: sizes at the limits of the integer types, and values
/// of the wrong type.
fn hostile_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(0)),
        Just(json!(1)),
        Just(json!(3)),
        Just(json!(4_294_967_296_u64)),
        Just(json!(1_u64 << 62)),
        Just(json!(u64::MAX)),
        Just(json!(-1)),
        Just(json!(1.5)),
        Just(json!(1e308)),
        Just(json!("3")),
        Just(json!(null)),
        Just(json!([])),
        Just(json!({})),
        (0..64u64).prop_map(|n| json!(n)),
    ]
}

/// One change to a checkpoint's header, by tensor index (taken modulo the tensor count).
#[derive(Debug, Clone)]
enum HeaderEdit {
    Dtype {
        tensor: u8,
        dtype: u8,
    },
    Shape {
        tensor: u8,
        dims: Vec<Value>,
    },
    Offsets {
        tensor: u8,
        offsets: Vec<Value>,
    },
    Field {
        tensor: u8,
        field: u8,
        value: Value,
    },
    Remove {
        tensor: u8,
        field: u8,
    },
    /// The metadata's JSON document, mutated as bytes.
    Meta(Case),
}

fn header_edit(meta: &Corpus) -> impl Strategy<Value = HeaderEdit> {
    let tensor = any::<u8>();
    prop_oneof![
        (tensor, any::<u8>()).prop_map(|(tensor, dtype)| HeaderEdit::Dtype { tensor, dtype }),
        (tensor, prop::collection::vec(hostile_value(), 0..5))
            .prop_map(|(tensor, dims)| HeaderEdit::Shape { tensor, dims }),
        (tensor, prop::collection::vec(hostile_value(), 0..4))
            .prop_map(|(tensor, offsets)| HeaderEdit::Offsets { tensor, offsets }),
        (tensor, 0..3u8, hostile_value()).prop_map(|(tensor, field, value)| HeaderEdit::Field {
            tensor,
            field,
            value
        }),
        (tensor, 0..4u8).prop_map(|(tensor, field)| HeaderEdit::Remove { tensor, field }),
        meta.cases(6).prop_map(HeaderEdit::Meta),
    ]
}

/// The keys a header edit sets or removes: a tensor's three, then the metadata.
const FIELDS: [&str; 4] = ["dtype", "shape", "data_offsets", "__metadata__"];

/// A checkpoint file split into its header's JSON and the tensor bytes after it.
#[derive(Debug, Clone)]
struct Checkpoint {
    header: serde_json::Map<String, Value>,
    data: Vec<u8>,
}

impl Checkpoint {
    fn parse(bytes: &[u8]) -> Self {
        let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
        let header = serde_json::from_slice(&bytes[8..8 + n]).expect("a saved header parses");
        Self {
            header,
            data: bytes[8 + n..].to_vec(),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let header = serde_json::to_vec(&self.header).expect("a header serialises");
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend(header);
        bytes.extend(&self.data);
        bytes
    }

    fn edit(&mut self, edit: &HeaderEdit, meta: &Corpus) {
        let names: Vec<String> = self
            .header
            .keys()
            .filter(|k| *k != "__metadata__")
            .cloned()
            .collect();
        let pick = |i: u8| names.get(i as usize % names.len().max(1)).cloned();
        let set = |header: &mut serde_json::Map<String, Value>, i: u8, key: &str, value: Value| {
            if let Some(Value::Object(info)) = pick(i).and_then(|name| header.get_mut(&name)) {
                info.insert(key.to_string(), value);
            }
        };
        match edit {
            HeaderEdit::Dtype { tensor, dtype } => {
                let name = DTYPES[*dtype as usize % DTYPES.len()];
                set(&mut self.header, *tensor, "dtype", json!(name));
            }
            HeaderEdit::Shape { tensor, dims } => set(
                &mut self.header,
                *tensor,
                "shape",
                Value::Array(dims.clone()),
            ),
            HeaderEdit::Offsets { tensor, offsets } => set(
                &mut self.header,
                *tensor,
                "data_offsets",
                Value::Array(offsets.clone()),
            ),
            HeaderEdit::Field {
                tensor,
                field,
                value,
            } => set(
                &mut self.header,
                *tensor,
                FIELDS[*field as usize % 3],
                value.clone(),
            ),
            HeaderEdit::Remove { tensor, field } => match FIELDS[*field as usize % 4] {
                "__metadata__" => {
                    self.header.remove("__metadata__");
                }
                key => {
                    if let Some(Value::Object(info)) =
                        pick(*tensor).and_then(|name| self.header.get_mut(&name))
                    {
                        info.remove(key);
                    }
                }
            },
            HeaderEdit::Meta(case) => {
                let text = String::from_utf8_lossy(&meta.bytes(case)).into_owned();
                self.header
                    .insert("__metadata__".into(), json!({ "sweep": text }));
            }
        }
    }
}

fn card() -> ModelCard {
    ModelCard {
        model: ModelConfig::default(),
        size: 8,
        classes: 3,
        norm: Normalization {
            mean: [0.5, 0.4, 0.3],
            std: [0.2, 0.25, 0.3],
        },
        epoch: 4,
        objective: 0.75,
    }
}

/// Checkpoints written by `save`: tensors of several dtypes and shapes, and none at all.
fn seeds(dir: &Path) -> Vec<Vec<u8>> {
    let device = Device::Cpu;
    let values = Tensor::arange(0f32, 6.0, &device).expect("a tensor");
    let tensor = |dtype: DType, shape: &[usize]| {
        let n: usize = shape.iter().product();
        values
            .narrow(0, 0, n)
            .and_then(|t| t.reshape(shape))
            .and_then(|t| t.to_dtype(dtype))
            .expect("a seed tensor")
    };
    let sets: Vec<Vec<(String, Tensor)>> = vec![
        vec![
            ("model.conv.weight".into(), tensor(DType::F32, &[2, 3])),
            ("model.bn.running_mean".into(), tensor(DType::F32, &[3])),
            ("optim.step".into(), tensor(DType::I64, &[1])),
        ],
        vec![
            ("a".into(), tensor(DType::U8, &[6])),
            ("b".into(), tensor(DType::BF16, &[3, 1])),
            ("c".into(), tensor(DType::F16, &[2])),
            ("d".into(), tensor(DType::F64, &[1, 1, 1])),
            ("e".into(), tensor(DType::U32, &[0])),
        ],
        vec![],
    ];
    sets.iter()
        .enumerate()
        .map(|(i, tensors)| {
            let path = dir.join(format!("seed{i}.safetensors"));
            save(&path, tensors, &card()).expect("a seed checkpoint is saved");
            std::fs::read(&path).expect("a seed checkpoint reads")
        })
        .collect()
}

/// The property, for `bytes` as the checkpoint at `path`.
fn load_checkpoint(path: &Path, bytes: &[u8]) -> Result<Outcome, TestCaseError> {
    std::fs::write(path, bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let bytes_on_disk = bytes.len();
    let named = |message: String| {
        check(message.starts_with(&path.display().to_string()), || {
            format!("the error does not name the file: {message}")
        })
    };
    let outcome = match load::<ModelCard>(path, &Device::Cpu) {
        Ok((tensors, _card)) => {
            for (name, tensor) in &tensors {
                let bytes = tensor
                    .elem_count()
                    .checked_mul(tensor.dtype().size_in_bytes());
                check(bytes.is_some_and(|b| b <= bytes_on_disk), || {
                    format!("`{name}` holds more than the file: {:?}", tensor.shape())
                })?;
            }
            Outcome::Read
        }
        Err(e) => {
            named(e.to_string())?;
            Outcome::Refused
        }
    };
    // The same bytes with an untyped metadata document (what a newer or older card would be).
    match load::<Value>(path, &Device::Cpu) {
        Ok(_) => Ok(outcome),
        Err(e) => named(e.to_string()).map(|()| outcome),
    }
}

#[test]
fn damaged_checkpoints_load_or_name_the_file() {
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let seeds = seeds(tmp.path());
    let parsed: Vec<Checkpoint> = seeds.iter().map(|s| Checkpoint::parse(s)).collect();
    let meta_seed = serde_json::to_vec(&card()).expect("a card serialises");
    let meta = Corpus::new(vec![meta_seed], &[b"\"size\":", b"\"classes\":", b"null"]);
    let bytes = Corpus::new(
        seeds,
        &[b"__metadata__", b"\"dtype\":\"F4\"", b"\"shape\":["],
    );
    let strategy = (
        0..parsed.len(),
        prop::collection::vec(header_edit(&meta), 0..4),
        bytes.cases(4),
    );
    let path = tmp.path().join("last.safetensors");
    fuzz(
        "checkpoint",
        1500,
        1.0,
        strategy,
        |(seed, header_edits, case): (usize, Vec<HeaderEdit>, Case)| {
            let mut checkpoint = parsed[seed].clone();
            for edit in &header_edits {
                checkpoint.edit(edit, &meta);
            }
            // Byte edits act on the rebuilt file: on the length prefix, the header and the data.
            let corpus = Corpus {
                seeds: vec![checkpoint.bytes()],
                words: bytes.words.clone(),
            };
            let damaged = corpus.bytes(&Case {
                seed: 0,
                edits: case.edits,
            });
            load_checkpoint(&path, &damaged)
                .map_err(|e| TestCaseError::fail(format!("{e}\nfile: {}", escaped(&damaged, 3000))))
        },
    );
}

/// A header or metadata nested a million deep, and header lengths past the file, loaded on
/// the test's own thread so that a stack overflow would abort the test binary.
#[test]
fn deeply_nested_and_oversized_headers_are_refused() {
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let path = tmp.path().join("deep.safetensors");
    let with_header = |header: &[u8]| {
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend(header);
        bytes
    };
    for depth in [100, 10_000, 1_000_000] {
        let nested = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let header = format!("{{\"x\":{nested}}}");
        let meta = json!({ "__metadata__": { "sweep": nested } }).to_string();
        let unclosed = "{\"a\":".repeat(depth);
        for header in [header, meta, unclosed] {
            let outcome = load_checkpoint(&path, &with_header(header.as_bytes()));
            assert!(outcome.is_ok(), "depth {depth}: {outcome:?}");
            // serde_json refuses nesting past 128; a shallow metadata document is valid.
            if depth > 128 {
                assert!(load::<Value>(&path, &Device::Cpu).is_err(), "depth {depth}");
            }
        }
    }
    for length in [0, 2, 1 << 20, 100_000_001, u64::MAX / 2, u64::MAX] {
        let mut bytes = length.to_le_bytes().to_vec();
        bytes.extend(b"{}");
        let outcome = load_checkpoint(&path, &bytes);
        assert!(outcome.is_ok(), "length {length}: {outcome:?}");
    }
}
