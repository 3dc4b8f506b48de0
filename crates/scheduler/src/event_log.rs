//! A trial's `events.jsonl`: the one way a trial process reports, whichever executor runs it.
//! The trial appends its [`TrialEvent`]s with an [`EventWriter`], one numbered JSON object per
//! line (`{"seq":7,"event":"epoch",…}`), each line in one write; the scheduler follows the
//! file with an [`EventReader`], which takes only complete lines and skips numbers it has
//! seen, so a torn last line (a process killed mid-write) and a line read twice change
//! nothing. Each read opens the file anew: on a network filesystem, opening is what makes
//! another machine's writes visible (close-to-open consistency).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sweep_model::TrialEvent;

/// The file in a trial's folder that its events are appended to.
pub const EVENTS_FILE: &str = "events.jsonl";

/// Appends a trial's events to its folder's events file.
#[derive(Debug)]
pub struct EventWriter {
    file: File,
    next_seq: u64,
}

impl EventWriter {
    /// Opens (or creates) the events file in `dir`, dropping a torn last line that a killed
    /// process left, and numbers on from the file's highest event number: a reader skips
    /// numbers below the highest it has seen, so a damaged file whose numbers go down must
    /// not make it skip what this writer appends.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        let path = dir.join(EVENTS_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        let mut text = Vec::new();
        file.read_to_end(&mut text)?;
        let complete = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if complete < text.len() {
            file.set_len(complete as u64)?;
        }
        let next_seq = text[..complete]
            .split(|&b| b == b'\n')
            .filter_map(|line| parse_line(line).map(|(seq, _)| seq))
            .max()
            .map_or(1, |seq| seq.saturating_add(1));
        Ok(EventWriter { file, next_seq })
    }

    /// Appends `event` as one line; every event but a batch's progress is also flushed to
    /// the disk, so that an epoch or a checkpoint reported is never lost with the machine.
    pub fn write(&mut self, event: &TrialEvent) -> std::io::Result<()> {
        let line = numbered(self.next_seq, event);
        self.file.write_all(line.as_bytes())?;
        // A damaged file can hold `u64::MAX`: past it, lines share the number, which a reader
        // that has seen it still takes (its next number saturates too).
        self.next_seq = self.next_seq.saturating_add(1);
        if !matches!(event, TrialEvent::Batch { .. }) {
            self.file.sync_data()?;
        }
        Ok(())
    }
}

/// `event` as line number `seq` of an events file, newline included.
fn numbered(seq: u64, event: &TrialEvent) -> String {
    let json = event.to_line();
    format!("{{\"seq\":{seq},{}\n", &json[1..])
}

/// A line's number and event; `None` for a line that is not one (torn, or not ours).
fn parse_line(line: &[u8]) -> Option<(u64, TrialEvent)> {
    let value: serde_json::Value = serde_json::from_slice(line).ok()?;
    let seq = value.get("seq")?.as_u64()?;
    let event = serde_json::from_value(value).ok()?;
    Some((seq, event))
}

/// Follows a trial's events file from a byte offset.
#[derive(Debug, Clone)]
pub struct EventReader {
    path: PathBuf,
    /// Where the next unread line begins.
    offset: u64,
    /// The numbers below this were read already.
    next_seq: u64,
}

impl EventReader {
    /// A reader of the events file in `dir` from `offset` (the end of a line).
    pub fn new(dir: &Path, offset: u64) -> Self {
        EventReader {
            path: dir.join(EVENTS_FILE),
            offset,
            next_seq: 0,
        }
    }

    /// A reader of the events file in `dir` from where its complete lines end now: it will
    /// read only what a trial launched next appends.
    pub fn at_end(dir: &Path) -> Self {
        let offset = std::fs::read(dir.join(EVENTS_FILE))
            .ok()
            .and_then(|text| text.iter().rposition(|&b| b == b'\n'))
            .map_or(0, |i| i as u64 + 1);
        EventReader::new(dir, offset)
    }

    /// Where the next unread line begins.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The events of the complete lines appended since the last read (none when the file
    /// does not exist yet).
    pub fn read_new(&mut self) -> Vec<TrialEvent> {
        let mut text = Vec::new();
        let read = File::open(&self.path).and_then(|mut file| {
            file.seek(SeekFrom::Start(self.offset))?;
            file.read_to_end(&mut text)
        });
        if read.is_err() {
            return Vec::new();
        }
        let Some(end) = text.iter().rposition(|&b| b == b'\n') else {
            return Vec::new();
        };
        self.offset += end as u64 + 1;
        let mut events = Vec::new();
        for line in text[..end].split(|&b| b == b'\n') {
            if let Some((seq, event)) = parse_line(line) {
                if seq >= self.next_seq {
                    self.next_seq = seq.saturating_add(1);
                    events.push(event);
                }
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interrupted(epochs: u32) -> TrialEvent {
        TrialEvent::Interrupted { epochs }
    }

    #[test]
    fn lines_are_numbered_across_writers_and_a_torn_line_is_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut reader = EventReader::at_end(dir);
        assert_eq!(reader.read_new(), []);
        let mut writer = EventWriter::open(dir).unwrap();
        writer.write(&interrupted(1)).unwrap();
        writer.write(&interrupted(2)).unwrap();
        drop(writer);
        // A process killed in the middle of its next line.
        let path = dir.join(EVENTS_FILE);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"seq\":3,\"event\":\"interr").unwrap();
        assert_eq!(reader.read_new(), [interrupted(1), interrupted(2)]);
        assert_eq!(reader.read_new(), [], "the torn line is not read");
        let mut writer = EventWriter::open(dir).unwrap();
        writer.write(&interrupted(3)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(
            text.lines().last().unwrap().starts_with("{\"seq\":3,"),
            "{text}"
        );
        assert_eq!(reader.read_new(), [interrupted(3)]);
    }

    /// Found by the fuzz target (tests/fuzz): a damaged earlier line with a higher number made
    /// a resumed trial's writer number on from the last line, below what the reader had
    /// seen, so the reader skipped every event the trial wrote after.
    #[test]
    fn a_writer_numbers_on_from_the_highest_number_not_the_last() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let path = dir.join(EVENTS_FILE);
        let lines = [numbered(9, &interrupted(1)), numbered(2, &interrupted(2))].concat();
        std::fs::write(&path, lines).unwrap();
        let mut reader = EventReader::new(dir, 0);
        assert_eq!(
            reader.read_new(),
            [interrupted(1)],
            "2 is below 9: read already"
        );
        let mut writer = EventWriter::open(dir).unwrap();
        writer.write(&interrupted(3)).unwrap();
        assert_eq!(reader.read_new(), [interrupted(3)]);
    }

    /// A line numbered `u64::MAX` (a damaged file) neither wraps the numbering round to 0
    /// nor hides the lines a writer appends after it.
    #[test]
    fn numbering_saturates_at_the_largest_number() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let path = dir.join(EVENTS_FILE);
        let lines = [
            numbered(1, &interrupted(1)),
            numbered(u64::MAX, &interrupted(2)),
        ]
        .concat();
        std::fs::write(&path, lines).unwrap();
        let mut reader = EventReader::new(dir, 0);
        assert_eq!(reader.read_new(), [interrupted(1), interrupted(2)]);
        let mut writer = EventWriter::open(dir).unwrap();
        writer.write(&interrupted(3)).unwrap();
        writer.write(&interrupted(4)).unwrap();
        assert_eq!(reader.read_new(), [interrupted(3), interrupted(4)]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.ends_with(&numbered(u64::MAX, &interrupted(4))),
            "{text}"
        );
    }

    #[test]
    fn a_line_read_twice_is_reported_once() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut writer = EventWriter::open(dir).unwrap();
        writer.write(&interrupted(1)).unwrap();
        writer.write(&interrupted(2)).unwrap();
        let mut reader = EventReader::new(dir, 0);
        assert_eq!(reader.read_new().len(), 2);
        // A stale view of the file (a network filesystem's cache) gives the same lines again.
        let duplicate = numbered(2, &interrupted(2));
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.join(EVENTS_FILE))
            .unwrap();
        file.write_all(duplicate.as_bytes()).unwrap();
        assert_eq!(reader.read_new(), []);
        assert_eq!(EventReader::at_end(dir).offset(), reader.offset());
    }
}
