//! The `events.jsonl` ingest: a file written by `EventWriter`, mutated, then followed by an
//! `EventReader` and reopened by a new `EventWriter`, as a resumed trial does. Nothing panics,
//! the reader stops at a line end, reads nothing twice, hands on only events that the
//! scheduler can record, and sees the event a reopened writer appends.

use std::path::{Path, PathBuf};

use proptest::test_runner::TestCaseError;
use sweep_model::{Confusion, EpochMetrics, TrialEvent};
use sweep_scheduler::event_log::{EventReader, EventWriter, EVENTS_FILE};

use crate::mutation::{escaped, Case, Corpus};
use crate::runner::{check, fuzz, Outcome};

/// JSON's words and the events' keys.
const WORDS: &[&[u8]] = &[
    b"\"seq\":",
    b"{\"seq\":18446744073709551615,\"event\":\"interrupted\",\"epochs\":1}\n",
    b"{\"seq\":1,\"event\":\"interrupted\",\"epochs\":1}\n",
    b"\"event\":",
    b"\"started\"",
    b"\"epoch\"",
    b"\"finished\"",
    b"\"failed\"",
    b"\"classes\":0",
    b"\"classes\":4294967296",
    b"\"counts\":[]",
    b"null",
    b"true",
    b"{}",
    b"[]",
];

fn epoch(epoch: u32) -> EpochMetrics {
    EpochMetrics {
        epoch,
        train_loss: 1.0 / epoch as f64,
        train_acc: 0.5,
        val_loss: 0.7,
        val_acc: 0.25,
        val_f1: 0.2,
        lr: 1e-3,
        seconds: 1.5,
    }
}

/// Every kind of event a trial writes.
fn events() -> Vec<TrialEvent> {
    vec![
        TrialEvent::Started {
            device: "cpu".into(),
            history: vec![epoch(1)],
            recovered: None,
        },
        TrialEvent::Started {
            device: "cpu".into(),
            history: vec![epoch(1)],
            recovered: Some(sweep_model::train::checkpoint::Recovery {
                damaged: vec![sweep_model::train::checkpoint::Damaged {
                    file: "last.safetensors".into(),
                    problem: "the checksum does not match".into(),
                }],
                resumed_from: Some("previous.safetensors".into()),
                epochs: 1,
            }),
        },
        TrialEvent::Batch {
            epoch: 2,
            batch: 3,
            batches: 10,
            loss: 0.5,
        },
        TrialEvent::Epoch(epoch(2)),
        TrialEvent::Checkpoint {
            epoch: 2,
            path: PathBuf::from("trials/0001/last.safetensors"),
            best: true,
        },
        TrialEvent::Finished {
            best_epoch: 2,
            objective: 0.2,
            checkpoint: PathBuf::from("trials/0001/best.safetensors"),
            confusion: Confusion::from_labels(3, &[0, 1, 2, 2], &[0, 2, 2, 1]),
            stopped_early: None,
        },
        TrialEvent::Interrupted { epochs: 2 },
        TrialEvent::Paused { epochs: 2 },
        TrialEvent::Failed {
            reason: "diverged at epoch 3, batch 1: the loss is NaN\n\"quoted\"".into(),
        },
        // A command trial's.
        TrialEvent::Resumed {
            device: "cpu".into(),
            history: vec![named(1)],
        },
        TrialEvent::Reported(named(2)),
        TrialEvent::Completed {
            best_epoch: 2,
            objective: 0.5,
            note: Some("the program ended after 2 of 5 epochs".into()),
        },
    ]
}

/// An epoch of a command trial, with a metric of its own name.
fn named(epoch: u32) -> sweep_model::NamedEpoch {
    sweep_model::NamedEpoch {
        epoch,
        seconds: 0.5,
        metrics: [("bleu".to_string(), 0.25), ("val_acc".to_string(), 0.5)].into(),
    }
}

/// Seeds written by `EventWriter` itself: every event once, and a resumed trial's file (a
/// second writer numbering on, with a torn line between).
fn corpus(dir: &Path) -> Corpus {
    let path = dir.join(EVENTS_FILE);
    let mut writer = EventWriter::open(dir).expect("an events file");
    for event in events() {
        writer.write(&event).expect("an event is written");
    }
    drop(writer);
    let every_event = std::fs::read(&path).expect("the events file reads");
    std::fs::write(&path, b"").expect("the events file empties");
    let mut writer = EventWriter::open(dir).expect("an events file");
    writer.write(&events()[0]).expect("an event is written");
    drop(writer);
    let mut text = std::fs::read(&path).expect("the events file reads");
    text.extend_from_slice(b"{\"seq\":2,\"event\":\"epo");
    std::fs::write(&path, &text).expect("a torn line is written");
    let mut writer = EventWriter::open(dir).expect("an events file");
    writer.write(&events()[2]).expect("an event is written");
    writer.write(&events()[4]).expect("an event is written");
    drop(writer);
    let resumed = std::fs::read(&path).expect("the events file reads");
    Corpus::new(vec![every_event, resumed], WORDS)
}

/// What the scheduler relies on in an event it is handed.
fn recordable(event: &TrialEvent) -> bool {
    match event {
        TrialEvent::Finished { confusion, .. } => confusion
            .classes
            .checked_mul(confusion.classes)
            .is_some_and(|cells| cells == confusion.counts.len() && confusion.classes > 0),
        _ => true,
    }
}

/// The property, for `bytes` as the events file in `dir`; `Read` when every complete line
/// was an event.
fn ingest(dir: &Path, bytes: &[u8]) -> Result<Outcome, TestCaseError> {
    let fail = |e: std::io::Error| TestCaseError::fail(format!("{}: {e}", dir.display()));
    let path = dir.join(EVENTS_FILE);
    std::fs::write(&path, bytes).map_err(fail)?;
    let mut reader = EventReader::new(dir, 0);
    let events = reader.read_new();
    let offset = reader.offset() as usize;
    check(
        offset <= bytes.len() && (offset == 0 || bytes[offset - 1] == b'\n'),
        || format!("the reader stopped at byte {offset}, not after a line"),
    )?;
    let lines = bytes.iter().filter(|&&b| b == b'\n').count();
    check(events.len() <= lines, || {
        format!("{} events from {lines} lines", events.len())
    })?;
    if let Some(event) = events.iter().find(|e| !recordable(e)) {
        return Err(TestCaseError::fail(format!(
            "the reader handed on an event the scheduler cannot record: {event:?}"
        )));
    }
    check(reader.read_new().is_empty(), || {
        "a line was read twice".into()
    })?;
    check(EventReader::at_end(dir).offset() == reader.offset(), || {
        "at_end and the reader disagree on where the lines end".into()
    })?;

    // A resumed trial appends to the file; the reader that follows it sees that event.
    let marker = TrialEvent::Interrupted { epochs: 7 };
    let mut writer = EventWriter::open(dir).map_err(fail)?;
    writer.write(&marker).map_err(fail)?;
    drop(writer);
    let new = reader.read_new();
    check(new == [marker.clone()], || {
        format!("after a reopened writer appended {marker:?}, the reader read {new:?}")
    })?;
    let all = EventReader::new(dir, 0).read_new();
    check(all.last() == Some(&marker), || {
        format!(
            "a new reader's last event is {:?}, not {marker:?}",
            all.last()
        )
    })?;
    Ok(match events.len() == lines {
        true => Outcome::Read,
        false => Outcome::Refused,
    })
}

#[test]
fn mutated_events_files_are_followed_without_loss_or_panic() {
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let corpus = corpus(tmp.path());
    fuzz("event_log", 1000, 0.5, corpus.cases(8), |case: Case| {
        let bytes = corpus.bytes(&case);
        ingest(tmp.path(), &bytes)
            .map_err(|e| TestCaseError::fail(format!("{e}\ninput: {}", escaped(&bytes, 3000))))
    });
}

/// Deep nesting in a line: serde_json's recursion limit (128) refuses it; run on the test's
/// own thread so that an overflow would abort the test binary.
#[test]
fn deeply_nested_event_lines_are_skipped() {
    let tmp = tempfile::tempdir().expect("a temporary folder");
    for depth in [100, 10_000, 1_000_000] {
        let line = format!(
            "{{\"seq\":1,\"event\":\"failed\",\"reason\":{}\"x\"{}}}\n",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let unclosed = format!("{{\"seq\":1,\"event\":{}\n", "{\"a\":".repeat(depth));
        for text in [line, unclosed] {
            let outcome = ingest(tmp.path(), text.as_bytes());
            assert!(outcome.is_ok(), "depth {depth}: {outcome:?}");
        }
    }
}
