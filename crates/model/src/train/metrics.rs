//! [`Confusion`]: the confusion matrix of a classifier over a split, and the metrics read
//! from it: accuracy and macro F1 exactly as scikit-learn's `f1_score(average="macro")`;
//! [`EpochMetrics`], what an epoch of training reports.

/// The metrics of one finished epoch (epochs count from 1).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochMetrics {
    pub epoch: u32,
    pub train_loss: f64,
    pub train_acc: f64,
    pub val_loss: f64,
    pub val_acc: f64,
    pub val_f1: f64,
    pub lr: f64,
    pub seconds: f64,
}

/// Counts of (true label, predicted label) pairs; rows are true labels, columns predictions.
/// Read from JSON (a trial's `finished` event) only when the counts fill the matrix.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "UncheckedConfusion")]
pub struct Confusion {
    pub classes: usize,
    /// Row-major `classes × classes` counts.
    pub counts: Vec<u64>,
}

/// A confusion matrix as a line of JSON gives it, its shape not yet checked: a damaged
/// `events.jsonl` could otherwise hand the store 0 classes (a division by zero) or a count
/// that does not fill the matrix.
#[derive(serde::Deserialize)]
struct UncheckedConfusion {
    classes: usize,
    counts: Vec<u64>,
}

impl TryFrom<UncheckedConfusion> for Confusion {
    type Error = String;

    fn try_from(m: UncheckedConfusion) -> Result<Self, String> {
        match m.classes.checked_mul(m.classes) {
            Some(cells) if m.classes > 0 && cells == m.counts.len() => Ok(Self {
                classes: m.classes,
                counts: m.counts,
            }),
            _ => Err(format!(
                "a confusion matrix of {} classes cannot have {} counts",
                m.classes,
                m.counts.len()
            )),
        }
    }
}

impl Confusion {
    /// An empty matrix.
    pub fn new(classes: usize) -> Self {
        Self {
            classes,
            counts: vec![0; classes * classes],
        }
    }

    /// The matrix of `predicted` against `truth`; both hold labels below `classes`.
    pub fn from_labels(classes: usize, truth: &[u32], predicted: &[u32]) -> Self {
        let mut m = Self::new(classes);
        for (&t, &p) in truth.iter().zip(predicted) {
            m.counts[t as usize * classes + p as usize] += 1;
        }
        m
    }

    /// How often true label `t` was predicted as `p`.
    pub fn count(&self, t: usize, p: usize) -> u64 {
        self.counts[t * self.classes + p]
    }

    /// The fraction of correct predictions (0 for no sample).
    pub fn accuracy(&self) -> f64 {
        let total: u64 = self.counts.iter().sum();
        let correct: u64 = (0..self.classes).map(|c| self.count(c, c)).sum();
        if total == 0 {
            0.0
        } else {
            correct as f64 / total as f64
        }
    }

    /// The mean F1 over the labels that occur in the truth or the predictions, a label with
    /// no true positive counting 0: scikit-learn's `f1_score(y, p, average="macro")`.
    pub fn macro_f1(&self) -> f64 {
        let mut sum = 0.0;
        let mut present = 0usize;
        for c in 0..self.classes {
            let tp = self.count(c, c);
            let actual: u64 = (0..self.classes).map(|p| self.count(c, p)).sum();
            let predicted: u64 = (0..self.classes).map(|t| self.count(t, c)).sum();
            if actual == 0 && predicted == 0 {
                continue;
            }
            present += 1;
            // F1 = 2·tp / (2·tp + fp + fn) = 2·tp / (actual + predicted).
            sum += 2.0 * tp as f64 / (actual + predicted) as f64;
        }
        if present == 0 {
            0.0
        } else {
            sum / present as f64
        }
    }
}

/// Macro F1 of `predicted` against `truth` (scikit-learn's definition, see [`Confusion`]).
pub fn macro_f1(truth: &[u32], predicted: &[u32]) -> f64 {
    let classes = truth
        .iter()
        .chain(predicted)
        .max()
        .map_or(0, |&m| m as usize + 1);
    Confusion::from_labels(classes, truth, predicted).macro_f1()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn perfect_and_all_wrong() {
        assert!(close(macro_f1(&[0, 1, 2, 1], &[0, 1, 2, 1]), 1.0));
        assert!(close(macro_f1(&[0, 0, 1, 1], &[1, 1, 0, 0]), 0.0));
    }

    #[test]
    fn hand_computed_case() {
        // sklearn: f1_score([0,0,1,1,2,2], [0,1,1,1,2,0], average="macro") == 0.6555555555555556
        // class 0: tp 1, fp 1, fn 1 -> 0.5; class 1: tp 2, fp 1 -> 0.8; class 2: tp 1, fn 1 -> 2/3
        let f1 = macro_f1(&[0, 0, 1, 1, 2, 2], &[0, 1, 1, 1, 2, 0]);
        assert!(close(f1, (0.5 + 0.8 + 2.0 / 3.0) / 3.0), "{f1}");
        assert!(close(f1, 0.655_555_555_555_555_6));
    }

    #[test]
    fn a_class_never_predicted_counts_zero() {
        // sklearn: f1_score([0,1,2], [0,1,1], average="macro") == 0.5555555555555555
        // class 2 is never predicted: F1 0; class 1: tp 1, fp 1 -> 2/3; class 0: 1.
        let f1 = macro_f1(&[0, 1, 2], &[0, 1, 1]);
        assert!(close(f1, (1.0 + 2.0 / 3.0 + 0.0) / 3.0), "{f1}");
    }

    #[test]
    fn a_class_only_predicted_is_averaged_and_absent_classes_are_not() {
        // sklearn: f1_score([0,0], [0,3], average="macro") == 0.3333333333333333
        // Labels 1 and 2 occur nowhere and are left out; label 3 only in the predictions.
        let m = Confusion::from_labels(5, &[0, 0], &[0, 3]);
        assert!(
            close(m.macro_f1(), (2.0 / 3.0 + 0.0) / 2.0),
            "{}",
            m.macro_f1()
        );
        assert!(close(m.accuracy(), 0.5));
    }

    /// Found by fuzzing `events.jsonl` (crates/fuzz): a damaged `finished` line gave the store
    /// 0 classes, and it divides by the class count.
    #[test]
    fn only_a_matrix_that_its_counts_fill_is_read_from_json() {
        let m = Confusion::from_labels(2, &[0, 1, 1], &[0, 1, 0]);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<Confusion>(&json).unwrap(), m);
        for bad in [
            r#"{"classes":0,"counts":[]}"#,
            r#"{"classes":0,"counts":[1]}"#,
            r#"{"classes":2,"counts":[1,2,3]}"#,
            r#"{"classes":9223372036854775807,"counts":[1,0,0,1]}"#,
            r#"{"classes":4294967296,"counts":[]}"#,
        ] {
            let err = serde_json::from_str::<Confusion>(bad)
                .unwrap_err()
                .to_string();
            assert!(err.contains("a confusion matrix of"), "{bad}: {err}");
        }
    }

    #[test]
    fn equals_scikit_learn_on_a_larger_case() {
        // y = [(i*7+3)%13], p = [(i*i+5)%11 if i%3 else y[i]] for i in range(200);
        // sklearn's f1_score(y, p, average="macro") printed 0.42236024844720493.
        let y: Vec<u32> = (0..200).map(|i| (i * 7 + 3) % 13).collect();
        let p: Vec<u32> = (0..200)
            .map(|i| {
                if i % 3 != 0 {
                    (i * i + 5) % 11
                } else {
                    y[i as usize]
                }
            })
            .collect();
        assert!(
            close(macro_f1(&y, &p), 0.422_360_248_447_204_93),
            "{}",
            macro_f1(&y, &p)
        );
    }
}
