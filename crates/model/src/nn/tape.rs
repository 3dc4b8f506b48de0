//! [`Tape`]: what a training forward keeps for its backward, handed from one to the other as
//! a value.
//!
//! On the CPU, two parts of the networks train outside candle's graph, because their own
//! backward is faster: the ResNet's convolutional trunk ([`trunk`](super::trunk)) and the
//! MLP's first layer. Candle's graph ends where they end, so a loss's `backward()` alone does
//! not reach their weights; their gradients come from what the forward kept.
//!
//! Why a value, not state of the network: the tape used to live in a `Mutex<Option<…>>`
//! inside the ResNet and the MLP, behind `&self`. The backward then had to follow its own
//! forward by convention only: any forward in between replaced or cleared the tape, and a
//! plain `loss.backward()` left the trunk's weights without gradients, which the optimizer
//! then skipped without a word. Now the training forward returns the tape
//! ([`Net::forward_train`](super::Net::forward_train)) and the backward consumes it
//! ([`Net::backward`](super::Net::backward)), as candle-nn takes gradients only from what
//! the step holds: there is no backward without a forward's tape, a tape serves one
//! backward, and an evaluation forward in between cannot touch it. The network holds nothing
//! of a step. What the types cannot see, a loss that was not computed from the tape's forward
//! or a tape given to the other family of network, the backward refuses with an error.

use candle_core::{Tensor, Var};

use crate::nn::trunk::TrunkTape;

/// A training forward's record for its backward ([`Net::backward`](super::Net::backward)),
/// which consumes it. Dropping it drops the gradients of the layers it kept.
#[must_use = "the backward needs the tape: without it, the layers it kept get no gradients"]
pub struct Tape(pub(super) Kept);

/// What the forward kept, by where its layers ran.
pub(super) enum Kept {
    /// Every layer ran in candle's graph (on devices other than the CPU): the loss's own
    /// backward reaches every weight.
    Graph,
    /// The MLP's first layer ran outside the graph.
    FirstLayer(FirstLayer),
    /// The ResNet's trunk ran outside the graph.
    Trunk(TrunkTape),
}

/// The MLP's first layer's training forward, when it ran outside candle's graph, kept for its
/// backward: its input (the flattened images) and its output, the variable the rest of the
/// graph starts from.
///
/// The first layer's weight (`neurons × pixels`: 24 × 12,288 on the seed's MLP) is by far
/// the network's largest gradient. Through candle's graph it arrives as a fresh zero-filled
/// tensor plus an add (how candle's `backward` gathers every gradient), ≈ 8% of the MLP's
/// step on the CPU; here its backward writes it once.
pub(super) struct FirstLayer {
    pub(super) input: Tensor,
    pub(super) output: Var,
}

/// The error of a backward whose loss does not depend on the tape's forward: the loss came
/// from another forward's logits.
pub(super) fn not_from_this_forward(net: &str) -> candle_core::Error {
    candle_core::Error::Msg(format!(
        "{net}: the loss was not computed from the logits of this tape's forward"
    ))
}

#[cfg(test)]
mod tests {
    use crate::nn::{Arch, ModelConfig, Net};
    use crate::rng::Rng;
    use crate::testing::assert_same_gradients;
    use candle_core::{Device, Tensor};
    use candle_nn::VarMap;

    fn small(arch: Arch) -> ModelConfig {
        ModelConfig {
            arch,
            filters: vec![4, 8],
            neurons: 6,
            hidden: vec![5],
            dropout: 0.0,
            ..ModelConfig::default()
        }
    }

    fn batch(size: usize) -> (Tensor, Tensor) {
        let xs = Tensor::randn(0f32, 1.0, (3, 3, size, size), &Device::Cpu).unwrap();
        (xs, Tensor::new(&[0u32, 2, 1], &Device::Cpu).unwrap())
    }

    /// An evaluation forward between a training forward and its backward changes nothing:
    /// the gradients are those of the step without it.
    #[test]
    fn an_evaluation_forward_in_between_leaves_the_backward_alone() {
        for arch in [Arch::Resnet, Arch::Mlp] {
            let vars = VarMap::new();
            let net = Net::new(&small(arch), 12, 3, 1, &vars, &Device::Cpu).unwrap();
            let (xs, ys) = batch(12);
            let step = |evaluate_in_between: bool| {
                let (logits, tape) = net.forward_train(&xs, &mut Rng::new(1)).unwrap();
                if evaluate_in_between {
                    net.forward(&xs).unwrap();
                }
                let loss = candle_nn::loss::cross_entropy(&logits, &ys).unwrap();
                net.backward(&loss, tape).unwrap()
            };
            let (plain, interrupted) = (step(false), step(true));
            let what = format!("{arch:?}");
            assert!(
                assert_same_gradients(&vars, &interrupted, &plain, f32::MIN_POSITIVE, &what) > 4
            );
        }
    }

    /// A loss from another forward's logits, or a tape of the other family, is an error,
    /// never a step with some weights silently left without gradients.
    #[test]
    fn a_backward_on_a_tape_it_does_not_match_fails() {
        let mlp = Net::new(&small(Arch::Mlp), 12, 3, 1, &VarMap::new(), &Device::Cpu).unwrap();
        let resnet =
            Net::new(&small(Arch::Resnet), 12, 3, 1, &VarMap::new(), &Device::Cpu).unwrap();
        let (xs, ys) = batch(12);
        for net in [&mlp, &resnet] {
            let (logits, _) = net.forward_train(&xs, &mut Rng::new(1)).unwrap();
            let (_, other) = net.forward_train(&xs, &mut Rng::new(1)).unwrap();
            let loss = candle_nn::loss::cross_entropy(&logits, &ys).unwrap();
            let err = net
                .backward(&loss, other)
                .expect_err("another forward's tape");
            assert!(err.to_string().contains("this tape's forward"), "{err}");
        }
        for (net, other) in [(&mlp, &resnet), (&resnet, &mlp)] {
            let (logits, _) = net.forward_train(&xs, &mut Rng::new(1)).unwrap();
            let (_, tape) = other.forward_train(&xs, &mut Rng::new(1)).unwrap();
            let loss = candle_nn::loss::cross_entropy(&logits, &ys).unwrap();
            let err = net
                .backward(&loss, tape)
                .expect_err("the other family's tape");
            assert!(err.to_string().contains("tape of"), "{err}");
        }
    }
}
