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

/// The longest line read, in bytes. A trial's longest event (its start, with every epoch's
/// metrics, or its end, with a confusion matrix of 1,000 classes) is far shorter; a longer
/// line is a damaged or hostile file, and fails the trial instead of filling the memory.
pub const MAX_LINE: u64 = 16 << 20;

/// The most bytes one read takes in; what is left is read next time.
const MAX_READ: u64 = 4 * MAX_LINE;

/// The last `MAX_LINE` bytes of `file` (all of it when it is shorter) and where they start.
fn tail(file: &mut File) -> std::io::Result<(u64, Vec<u8>)> {
    let len = file.seek(SeekFrom::End(0))?;
    let start = len.saturating_sub(MAX_LINE);
    file.seek(SeekFrom::Start(start))?;
    let mut text = Vec::new();
    file.take(len - start).read_to_end(&mut text)?;
    Ok((start, text))
}

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
        // The tail holds the last complete line and any torn one after it.
        let (start, text) = tail(&mut file)?;
        let complete = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if complete < text.len() {
            file.set_len(start + complete as u64)?;
        }
        let next_seq =
            highest_seq(&mut file, start + complete as u64)?.map_or(1, |seq| seq.saturating_add(1));
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

/// The highest event number in the first `len` bytes of `file`, read piece by piece in
/// bounded memory: a line longer than [`MAX_LINE`] is skipped unparsed.
fn highest_seq(file: &mut File, len: u64) -> std::io::Result<Option<u64>> {
    use std::io::BufRead;
    file.seek(SeekFrom::Start(0))?;
    let mut reader = std::io::BufReader::new(file.take(len));
    let (mut line, mut overlong, mut highest) = (Vec::new(), false, None);
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            return Ok(highest);
        }
        let end = chunk.iter().position(|&b| b == b'\n');
        let piece = &chunk[..end.unwrap_or(chunk.len())];
        overlong |= line.len() + piece.len() > MAX_LINE as usize;
        if !overlong {
            line.extend_from_slice(piece);
        }
        let used = piece.len() + end.is_some() as usize;
        reader.consume(used);
        if end.is_some() {
            if !overlong {
                if let Some((seq, _)) = parse_line(&line) {
                    highest = highest.max(Some(seq));
                }
            }
            line.clear();
            overlong = false;
        }
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
    /// Inside a line longer than [`MAX_LINE`], which is skipped up to its end.
    skipping: bool,
}

impl EventReader {
    /// A reader of the events file in `dir` from `offset` (the end of a line).
    pub fn new(dir: &Path, offset: u64) -> Self {
        EventReader {
            path: dir.join(EVENTS_FILE),
            offset,
            next_seq: 0,
            skipping: false,
        }
    }

    /// A reader of the events file in `dir` from where its complete lines end now: it will
    /// read only what a trial launched next appends.
    pub fn at_end(dir: &Path) -> Self {
        let offset = File::open(dir.join(EVENTS_FILE))
            .and_then(|mut file| tail(&mut file))
            .ok()
            .and_then(|(start, text)| {
                let end = text.iter().rposition(|&b| b == b'\n')?;
                Some(start + end as u64 + 1)
            })
            .unwrap_or(0);
        EventReader::new(dir, offset)
    }

    /// Where the next unread line begins.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The events of the complete lines appended since the last read (none when the file
    /// does not exist yet), at most [`MAX_READ`] bytes of them. A line longer than
    /// [`MAX_LINE`] is skipped, and reported once as the trial's failure.
    pub fn read_new(&mut self) -> Vec<TrialEvent> {
        let mut text = Vec::new();
        let read = File::open(&self.path).and_then(|mut file| {
            file.seek(SeekFrom::Start(self.offset))?;
            file.take(MAX_READ).read_to_end(&mut text)
        });
        if read.is_err() {
            return Vec::new();
        }
        let mut events = Vec::new();
        if self.skipping {
            let Some(end) = text.iter().position(|&b| b == b'\n') else {
                self.offset += text.len() as u64;
                return events;
            };
            self.skipping = false;
            self.offset += end as u64 + 1;
            text.drain(..=end);
        }
        let Some(end) = text.iter().rposition(|&b| b == b'\n') else {
            if text.len() as u64 >= MAX_LINE {
                let reason = format!(
                    "{}: the line at byte {} is longer than {} MiB: the events file is damaged",
                    self.path.display(),
                    self.offset,
                    MAX_LINE >> 20
                );
                self.skipping = true;
                self.offset += text.len() as u64;
                events.push(TrialEvent::Failed { reason });
            }
            return events;
        };
        self.offset += end as u64 + 1;
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

    /// Found by the fuzz target (crates/fuzz): a damaged earlier line with a higher number made
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

    #[test]
    fn a_line_longer_than_the_limit_fails_the_trial_once_and_is_skipped() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut writer = EventWriter::open(dir).unwrap();
        writer.write(&interrupted(1)).unwrap();
        let mut reader = EventReader::new(dir, 0);
        assert_eq!(reader.read_new(), [interrupted(1)]);
        let path = dir.join(EVENTS_FILE);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        let junk = vec![b'x'; (MAX_LINE + MAX_LINE / 2) as usize];
        file.write_all(&junk).unwrap();
        let events = reader.read_new();
        assert!(
            matches!(&events[..], [TrialEvent::Failed { reason }] if reason.contains("longer than 16 MiB")),
            "{events:?}"
        );
        assert_eq!(reader.read_new(), [], "reported once");
        file.write_all(b"\n").unwrap();
        drop(file);
        let mut writer = EventWriter::open(dir).unwrap();
        writer.write(&interrupted(2)).unwrap();
        assert_eq!(
            reader.read_new(),
            [interrupted(2)],
            "read on after the long line"
        );
        assert_eq!(EventReader::at_end(dir).offset(), reader.offset());
    }
}
