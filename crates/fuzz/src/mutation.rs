//! [`Case`]: a valid seed input and the [`Edit`]s that damage it, as a proptest strategy, so
//! that a failure shrinks to the fewest and smallest edits of the simplest seed.

use proptest::prelude::*;

/// Byte strings that break readers more often than random bytes do: limits of the number
/// types, NaN and infinities, invalid UTF-8, quotes, brackets and line ends. Each target adds
/// the words of its own format.
pub const HOSTILE: &[&[u8]] = &[
    b"1e308",
    b"-1e308",
    b"1e309",
    b"1e-400",
    b"9223372036854775807",
    b"-9223372036854775808",
    b"9223372036854775808",
    b"18446744073709551615",
    b"18446744073709551616",
    b"4294967295",
    b"4294967296",
    b"1000000000000000000000000000000",
    b"0",
    b"-0",
    b"-1",
    b"0.0",
    b"nan",
    b"-nan",
    b"NaN",
    b"inf",
    b"+inf",
    b"-inf",
    b"Infinity",
    b"\x00",
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\xef\xbb\xbf",
    b"\xe2\x80\xae",
    b"\r\n",
    b"\n",
    b"\r",
    b"\t",
    b" ",
    b"\"",
    b"'",
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b"[",
    b"]",
    b"{",
    b"}",
    b",",
    b"=",
    b":",
    b"..",
    b"/",
    b"../../../../tmp/x",
    b"/etc/passwd",
];

/// One change to an input; positions are taken modulo the input's length when applied, so
/// an edit means something for every input and shrinks towards the start.
#[derive(Debug, Clone)]
pub enum Edit {
    /// Cut the input at a position.
    Truncate { at: u32 },
    /// Flip one bit.
    FlipBit { at: u32, bit: u8 },
    /// Overwrite one byte.
    SetByte { at: u32, byte: u8 },
    /// Remove up to `len` bytes.
    Delete { at: u32, len: u16 },
    /// Insert arbitrary bytes.
    InsertBytes { at: u32, bytes: Vec<u8> },
    /// Insert a dictionary word (from [`HOSTILE`] and the target's own words).
    InsertWord { at: u32, word: u16 },
    /// Insert a dictionary word at the start of a line: a whole key or section, in place.
    InsertLine { line: u32, word: u16 },
    /// Replace the `nth` number of the input (digits, with a sign, point or exponent) by a
    /// dictionary word: where a reader looks for a count or a size.
    ReplaceNumber { nth: u16, word: u16 },
    /// Copy `len` bytes from one place to another.
    Splice { from: u32, len: u16, to: u32 },
    /// Repeat `len` bytes `times` times in place: long lines and many keys.
    Repeat { at: u32, len: u8, times: u16 },
    /// Insert a word `times` times: a giant line of up to a megabyte.
    Giant { at: u32, word: u16, times: u32 },
}

/// A seed (by index) and the edits applied to it in order.
#[derive(Debug, Clone)]
pub struct Case {
    pub seed: usize,
    pub edits: Vec<Edit>,
}

/// The valid inputs a target starts from and the words it mutates them with.
#[derive(Debug, Clone)]
pub struct Corpus {
    pub seeds: Vec<Vec<u8>>,
    pub words: Vec<Vec<u8>>,
}

impl Corpus {
    /// `seeds`, mutated with [`HOSTILE`] and the target's own `words`.
    pub fn new(seeds: Vec<Vec<u8>>, words: &[&[u8]]) -> Self {
        assert!(!seeds.is_empty(), "a corpus needs a seed");
        let words = HOSTILE.iter().chain(words).map(|w| w.to_vec()).collect();
        Self { seeds, words }
    }

    /// Cases of up to `max_edits` edits of one seed; a case with no edit is the seed itself.
    pub fn cases(&self, max_edits: usize) -> impl Strategy<Value = Case> {
        (
            0..self.seeds.len(),
            prop::collection::vec(edit(), 0..=max_edits),
        )
            .prop_map(|(seed, edits)| Case { seed, edits })
    }

    /// The bytes of `case`.
    pub fn bytes(&self, case: &Case) -> Vec<u8> {
        let mut bytes = self.seeds[case.seed].clone();
        for edit in &case.edits {
            apply(&mut bytes, edit, &self.words);
        }
        bytes
    }
}

fn edit() -> impl Strategy<Value = Edit> {
    let at = any::<u32>();
    prop_oneof![
        3 => at.prop_map(|at| Edit::Truncate { at }),
        4 => (at, 0..8u8).prop_map(|(at, bit)| Edit::FlipBit { at, bit }),
        2 => (at, any::<u8>()).prop_map(|(at, byte)| Edit::SetByte { at, byte }),
        3 => (at, 1..64u16).prop_map(|(at, len)| Edit::Delete { at, len }),
        2 => (at, prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Edit::InsertBytes { at, bytes }),
        6 => (at, any::<u16>()).prop_map(|(at, word)| Edit::InsertWord { at, word }),
        4 => (at, any::<u16>()).prop_map(|(line, word)| Edit::InsertLine { line, word }),
        6 => (any::<u16>(), any::<u16>()).prop_map(|(nth, word)| Edit::ReplaceNumber { nth, word }),
        2 => (at, 1..256u16, at).prop_map(|(from, len, to)| Edit::Splice { from, len, to }),
        1 => (at, 1..64u8, 2..2000u16).prop_map(|(at, len, times)| Edit::Repeat { at, len, times }),
        1 => (at, any::<u16>(), 1000..100_000u32)
            .prop_map(|(at, word, times)| Edit::Giant { at, word, times }),
    ]
}

/// `at` as a place to insert at (0..=len).
fn gap(at: u32, len: usize) -> usize {
    at as usize % (len + 1)
}

fn apply(bytes: &mut Vec<u8>, edit: &Edit, words: &[Vec<u8>]) {
    let word = |w: u16| &words[w as usize % words.len()];
    let len = bytes.len();
    match *edit {
        Edit::Truncate { at } => bytes.truncate(gap(at, len)),
        Edit::FlipBit { at, bit } if len > 0 => bytes[at as usize % len] ^= 1 << bit,
        Edit::SetByte { at, byte } if len > 0 => bytes[at as usize % len] = byte,
        Edit::Delete { at, len: n } => {
            let start = gap(at, len);
            let end = (start + n as usize).min(len);
            bytes.drain(start..end);
        }
        Edit::InsertBytes { at, bytes: ref new } => {
            let at = gap(at, len);
            bytes.splice(at..at, new.iter().copied());
        }
        Edit::InsertWord { at, word: w } => {
            let at = gap(at, len);
            bytes.splice(at..at, word(w).iter().copied());
        }
        Edit::InsertLine { line, word: w } => {
            let starts: Vec<usize> = std::iter::once(0)
                .chain((0..len).filter(|&i| bytes[i] == b'\n').map(|i| i + 1))
                .collect();
            let at = starts[line as usize % starts.len()];
            bytes.splice(at..at, word(w).iter().copied());
        }
        Edit::ReplaceNumber { nth, word: w } => {
            let numbers = numbers(bytes);
            if !numbers.is_empty() {
                let range = numbers[nth as usize % numbers.len()].clone();
                bytes.splice(range, word(w).iter().copied());
            }
        }
        Edit::Splice { from, len: n, to } if len > 0 => {
            let start = from as usize % len;
            let end = (start + n as usize).min(len);
            let chunk = bytes[start..end].to_vec();
            let to = gap(to, len);
            bytes.splice(to..to, chunk);
        }
        Edit::Repeat { at, len: n, times } if len > 0 => {
            let start = at as usize % len;
            let end = (start + n as usize).min(len);
            let chunk = bytes[start..end].repeat(times as usize);
            bytes.splice(start..start, chunk);
        }
        Edit::Giant { at, word: w, times } => {
            let at = gap(at, len);
            let chunk = word(w).repeat(times as usize).into_iter().take(1 << 20);
            bytes.splice(at..at, chunk);
        }
        Edit::FlipBit { .. } | Edit::SetByte { .. } | Edit::Splice { .. } | Edit::Repeat { .. } => {
        }
    }
}

/// The byte ranges of the numbers in `bytes`: a digit run with its sign, point and exponent.
fn numbers(bytes: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = if i > 0 && matches!(bytes[i - 1], b'-' | b'+') {
            i - 1
        } else {
            i
        };
        while i < bytes.len() && matches!(bytes[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'_') {
            i += 1;
        }
        ranges.push(start..i);
    }
    ranges
}

/// `bytes` as a Rust byte-string literal, cut to `max` bytes: what a failure shows.
pub fn escaped(bytes: &[u8], max: usize) -> String {
    let shown: String = bytes
        .iter()
        .take(max)
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect();
    match bytes.len() > max {
        true => format!("b\"{shown}\"… ({} bytes)", bytes.len()),
        false => format!("b\"{shown}\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_found_with_their_sign_and_exponent() {
        let text = b"a = -1.5e3, b = [2, 30]";
        let found: Vec<&[u8]> = numbers(text).into_iter().map(|r| &text[r]).collect();
        assert_eq!(found, [&b"-1.5e3"[..], b"2", b"30"]);
    }

    #[test]
    fn a_replaced_number_becomes_the_word() {
        let corpus = Corpus::new(vec![b"trials = 8\n".to_vec()], &[]);
        let word = HOSTILE.iter().position(|w| *w == b"1e308").unwrap() as u16;
        let case = Case {
            seed: 0,
            edits: vec![Edit::ReplaceNumber { nth: 0, word }],
        };
        assert_eq!(corpus.bytes(&case), b"trials = 1e308\n");
    }
}
