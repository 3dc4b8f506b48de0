//! [`ModelConfig`]: the shape of a classifier, and [`Arch`], the network family it names.

/// The network family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    Mlp,
    Resnet,
}

/// The shape of a classifier; everything but the data set's size and class count.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    pub arch: Arch,
    /// ResNet: the channels of each stage; the stem has as many as the first stage.
    pub filters: Vec<usize>,
    /// ResNet: the width of the dense head. MLP: the width of the first hidden layer.
    pub neurons: usize,
    /// MLP: the widths of the hidden layers after the first (the seed's network is 24 → 48:
    /// `neurons = 24`, `hidden = [48]`).
    pub hidden: Vec<usize>,
    /// The fraction of the last hidden layer's units dropped in training.
    pub dropout: f64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            arch: Arch::Resnet,
            filters: vec![64, 128, 256],
            neurons: 32,
            hidden: vec![48],
            dropout: 0.5,
        }
    }
}

impl ModelConfig {
    /// Why the configuration cannot be built, naming the key, if it cannot.
    pub fn problem(&self) -> Option<String> {
        if self.neurons == 0 {
            return Some("model.neurons must be at least 1".into());
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Some(format!(
                "model.dropout must be in [0, 1), not {}",
                self.dropout
            ));
        }
        if self.arch == Arch::Resnet && (self.filters.is_empty() || self.filters.contains(&0)) {
            return Some("model.filters must list at least one positive channel count".into());
        }
        if self.arch == Arch::Mlp && self.hidden.contains(&0) {
            return Some("model.hidden widths must be positive".into());
        }
        None
    }
}
