//! [`ModelConfig`]: the shape of a classifier, and [`Arch`], the network family it names.

use crate::unknown_name::{parse_name, UnknownName};

/// The network family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    Mlp,
    Resnet,
}

impl Arch {
    /// Every architecture, in the order of its list of names.
    pub const ALL: [Arch; 2] = [Arch::Mlp, Arch::Resnet];

    /// The name used in sweep files, on the command line and in the database.
    pub fn name(&self) -> &'static str {
        match self {
            Arch::Mlp => "mlp",
            Arch::Resnet => "resnet",
        }
    }
}

impl std::str::FromStr for Arch {
    type Err = UnknownName;

    fn from_str(text: &str) -> Result<Self, UnknownName> {
        parse_name("architecture", text, &Self::ALL, Self::name)
    }
}

/// How a layer's weights and biases are first drawn: the three frameworks' defaults. `fan_in`
/// is a weight's inputs times its kernel's area, `fan_out` its outputs times the area.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum WeightInit {
    /// candle-nn's: weights Kaiming-normal (standard deviation √(2 / fan_in)), biases uniform
    /// in ±1/√fan_in.
    #[default]
    Kaiming,
    /// PyTorch's `nn.Linear` and `nn.Conv2d`: weights Kaiming-uniform with a = √5, which is
    /// uniform in ±1/√fan_in, and biases uniform in ±1/√fan_in.
    Pytorch,
    /// Keras's `Dense` and `Conv2D`: weights Glorot-uniform (uniform in ±√(6 / (fan_in +
    /// fan_out))), biases zero.
    Keras,
}

impl WeightInit {
    /// Every scheme, in the order of its list of names.
    pub const ALL: [WeightInit; 3] = [WeightInit::Kaiming, WeightInit::Pytorch, WeightInit::Keras];

    /// The name used in sweep files and in the database.
    pub fn name(&self) -> &'static str {
        match self {
            WeightInit::Kaiming => "kaiming",
            WeightInit::Pytorch => "pytorch",
            WeightInit::Keras => "keras",
        }
    }
}

impl std::str::FromStr for WeightInit {
    type Err = UnknownName;

    fn from_str(text: &str) -> Result<Self, UnknownName> {
        parse_name("initialisation", text, &Self::ALL, Self::name)
    }
}

/// Batch norm's running averages move this fraction of the way to each batch's statistics:
/// PyTorch's `momentum` (0.1). Keras's `momentum` is the fraction kept: its 0.99 is 0.01 here.
pub const BN_MOMENTUM: f64 = 0.1;
/// Added to the variance before its square root: PyTorch's 1e-5 (Keras's is 1e-3).
pub const BN_EPS: f64 = 1e-5;

/// The shape of a classifier; everything but the data set's size and class count.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    pub arch: Arch,
    /// ResNet: the channels of each stage; the stem has as many as the first stage.
    pub filters: Vec<usize>,
    /// ResNet: the residual blocks of each stage, one entry per entry of `filters` (empty:
    /// [`BLOCKS_PER_STAGE`] each, the seed's). ResNet-34's are `[3, 4, 6, 3]`. Left out of
    /// the JSON when every stage has the seed's two, so those trials keep their hashes.
    #[serde(skip_serializing_if = "is_seed_depth")]
    pub blocks: Vec<usize>,
    /// ResNet: the width of the dense head. MLP: the width of the first hidden layer.
    pub neurons: usize,
    /// MLP: the widths of the hidden layers after the first (the seed's network is 24 → 48:
    /// `neurons = 24`, `hidden = [48]`).
    pub hidden: Vec<usize>,
    /// The fraction of the last hidden layer's units dropped in training.
    pub dropout: f64,
    /// ResNet: a dense layer of `neurons` units on every pixel (a 1×1 convolution + ReLU)
    /// after each stage, the seed's "fully connected layer after each resnet block". Left
    /// out of the JSON when false, so the configurations (and trial hashes) that predate it
    /// are unchanged.
    #[serde(skip_serializing_if = "is_false")]
    pub block_dense: bool,
    /// How the weights are first drawn. Like the keys below, left out of the JSON at the
    /// value every trial had before the key existed, so older trial hashes are unchanged.
    #[serde(skip_serializing_if = "is_kaiming")]
    pub init: WeightInit,
    /// ResNet: batch norm's momentum, in PyTorch's sense (see [`BN_MOMENTUM`]).
    #[serde(skip_serializing_if = "is_bn_momentum")]
    pub bn_momentum: f64,
    /// ResNet: batch norm's epsilon.
    #[serde(skip_serializing_if = "is_bn_eps")]
    pub bn_eps: f64,
}

// The values every trial had before each key existed: left out of the JSON so that those
// trials keep their hashes. They stay these values even if a default ever changes.
fn is_kaiming(init: &WeightInit) -> bool {
    *init == WeightInit::Kaiming
}

fn is_bn_momentum(value: &f64) -> bool {
    *value == BN_MOMENTUM
}

fn is_bn_eps(value: &f64) -> bool {
    *value == BN_EPS
}

/// The residual blocks of a stage unless `blocks` says otherwise: the seed's two (a
/// projection block and an identity block).
pub const BLOCKS_PER_STAGE: usize = 2;

fn is_seed_depth(blocks: &[usize]) -> bool {
    blocks.iter().all(|&b| b == BLOCKS_PER_STAGE)
}

/// Whether `flag` is false: serde's test for leaving a default flag out of the JSON.
fn is_false(flag: &bool) -> bool {
    !*flag
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            arch: Arch::Resnet,
            filters: vec![64, 128, 256],
            blocks: Vec::new(),
            neurons: 32,
            hidden: vec![48],
            dropout: 0.5,
            block_dense: false,
            init: WeightInit::Kaiming,
            bn_momentum: BN_MOMENTUM,
            bn_eps: BN_EPS,
        }
    }
}

impl ModelConfig {
    /// The residual blocks of stage `stage` (from 0).
    pub fn blocks_of(&self, stage: usize) -> usize {
        self.blocks.get(stage).copied().unwrap_or(BLOCKS_PER_STAGE)
    }

    /// Why `blocks` and `filters` do not go together, if they do not: one entry each per
    /// stage. Apart from [`ModelConfig::problem`], since a sweep file may give them in either
    /// order, and either as a grid axis.
    pub fn stages_problem(&self) -> Option<String> {
        (self.arch == Arch::Resnet
            && !self.blocks.is_empty()
            && self.blocks.len() != self.filters.len())
        .then(|| {
            format!(
                "model.blocks gives {} stages, but model.filters {:?} has {}: one entry each \
                 per stage",
                self.blocks.len(),
                self.filters,
                self.filters.len()
            )
        })
    }

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
        if self.blocks.contains(&0) {
            return Some("model.blocks must give each stage at least 1 block".into());
        }
        if self.arch == Arch::Mlp && !is_seed_depth(&self.blocks) {
            return Some("model.blocks applies to the resnet only, not the mlp".into());
        }
        if self.arch == Arch::Mlp && self.block_dense {
            return Some("model.block_dense applies to the resnet only, not the mlp".into());
        }
        if !(self.bn_momentum > 0.0 && self.bn_momentum <= 1.0) {
            return Some(format!(
                "model.bn_momentum must be in (0, 1] (the fraction of each batch's statistics \
                 taken, PyTorch's sense: Keras's 0.99 is 0.01), not {}",
                self.bn_momentum
            ));
        }
        if !(self.bn_eps > 0.0 && self.bn_eps < 1.0) {
            return Some(format!(
                "model.bn_eps must be in (0, 1), not {}",
                self.bn_eps
            ));
        }
        if self.arch == Arch::Mlp && self.hidden.contains(&0) {
            return Some("model.hidden widths must be positive".into());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_at_the_seeds_depth_leave_the_json_as_it_was_and_must_match_the_stages() {
        let json = |config: &ModelConfig| serde_json::to_string(config).unwrap();
        let seed = ModelConfig::default();
        for blocks in [vec![], vec![2, 2, 2]] {
            let config = ModelConfig {
                blocks,
                ..seed.clone()
            };
            assert_eq!(json(&config), json(&seed));
        }
        let deep = ModelConfig {
            filters: vec![64, 128, 256, 512],
            blocks: vec![3, 4, 6, 3],
            ..seed.clone()
        };
        assert!(json(&deep).contains("\"blocks\":[3,4,6,3]"));
        assert_eq!((deep.problem(), deep.stages_problem()), (None, None));
        assert_eq!((deep.blocks_of(2), seed.blocks_of(2)), (6, 2));
        let short = ModelConfig {
            blocks: vec![3, 4],
            ..seed.clone()
        };
        assert_eq!(
            short.stages_problem().as_deref(),
            Some(
                "model.blocks gives 2 stages, but model.filters [64, 128, 256] has 3: one entry \
                 each per stage"
            )
        );
        let none = ModelConfig {
            blocks: vec![2, 0, 2],
            ..seed.clone()
        };
        assert_eq!(
            none.problem().as_deref(),
            Some("model.blocks must give each stage at least 1 block")
        );
    }

    #[test]
    fn every_arch_name_reads_back_as_itself() {
        crate::unknown_name::assert_names_round_trip(&Arch::ALL, Arch::name);
    }

    /// Trial identities hash this JSON: a configuration without `block_dense` must keep the
    /// bytes it had before the key existed.
    #[test]
    fn block_dense_leaves_the_json_of_configs_without_it_unchanged() {
        let default = ModelConfig::default();
        let json = serde_json::to_string(&default).unwrap();
        assert_eq!(
            json,
            r#"{"arch":"resnet","filters":[64,128,256],"neurons":32,"hidden":[48],"dropout":0.5}"#
        );
        let read: ModelConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(read, default);
        let dense = ModelConfig {
            block_dense: true,
            ..ModelConfig::default()
        };
        let json = serde_json::to_string(&dense).unwrap();
        assert!(
            json.ends_with(r#""dropout":0.5,"block_dense":true}"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<ModelConfig>(&json).unwrap(), dense);
    }

    #[test]
    fn every_init_name_reads_back_as_itself() {
        crate::unknown_name::assert_names_round_trip(&WeightInit::ALL, WeightInit::name);
    }

    #[test]
    fn init_and_batch_norm_keys_appear_in_the_json_only_when_changed() {
        let keras = ModelConfig {
            init: WeightInit::Keras,
            bn_momentum: 0.01,
            bn_eps: 1e-3,
            ..ModelConfig::default()
        };
        let json = serde_json::to_string(&keras).unwrap();
        assert!(
            json.ends_with(r#""dropout":0.5,"init":"keras","bn_momentum":0.01,"bn_eps":0.001}"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<ModelConfig>(&json).unwrap(), keras);
    }

    #[test]
    fn batch_norm_settings_out_of_range_are_refused_by_key() {
        for (momentum, eps, key) in [
            (0.0, 1e-5, "bn_momentum"),
            (1.5, 1e-5, "bn_momentum"),
            (0.1, 0.0, "bn_eps"),
        ] {
            let config = ModelConfig {
                bn_momentum: momentum,
                bn_eps: eps,
                ..ModelConfig::default()
            };
            let problem = config.problem().expect("refused");
            assert!(problem.contains(&format!("model.{key}")), "{problem}");
        }
    }

    #[test]
    fn the_mlp_refuses_block_dense() {
        let config = ModelConfig {
            arch: Arch::Mlp,
            block_dense: true,
            ..ModelConfig::default()
        };
        let problem = config
            .problem()
            .expect("an mlp with block_dense is refused");
        assert!(problem.contains("model.block_dense"), "{problem}");
        assert_eq!(ModelConfig::default().problem(), None);
    }
}
