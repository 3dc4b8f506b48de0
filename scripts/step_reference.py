"""Computes in PyTorch the training steps that sweep's fidelity tests check a step against.

For each `step_<model>_init.safetensors` in INIT_DIR (written by the model crate's tests in
`crates/model/src/train/fidelity.rs` when SWEEP_STEP_FIXTURE_EXPORT=INIT_DIR is set: the
initial weights `before.*`, a batch `images`/`labels`, and the network and optimizers in the
`sweep` metadata), it rebuilds sweep's network in PyTorch, loads the weights, and for each
optimizer runs two training steps from them, exactly as sweep's `train_step`: the forward pass
in training mode, the cross-entropy of the logits averaged over the batch (with the case's
`label_smoothing`, 0 when absent, as `nn.CrossEntropyLoss(label_smoothing=…)`), the backward pass
and the optimizer's update. It writes `step_<model>.safetensors` to OUT_DIR with:

- `before.*`, `images`, `labels`: the inputs, unchanged;
- `grad.<name>`: every parameter's gradient at step 1 (the same for all optimizers);
- `<case>.loss1`, `<case>.loss2`: the loss of each step;
- `<case>.after1.<name>`, `<case>.after2.<name>`: every variable after each step, batch
  norm's running mean and variance included;

where `<case>` is the optimizer case's `name` (the optimizer's own name for its plain
settings, `sgd_wd`, `adamw_wd`, `sgd_nesterov_wd`, … for the others).

The reference is computed in float64 (and stored as float32), so what the Rust test measures
is sweep's float32 error alone; the script also prints how far PyTorch's own float32 step is
from it, for scale.

The networks. The ResNet is `block_dense_reference.py`'s (the same names as sweep's variables:
a stem without bias, a 2×2/2 max pool, an identity skip wherever a block keeps its channels
and stride, so stage 0's first block when the stem is as wide as filters[0]). The MLP is
flatten (N×C×H×W, channels first, as sweep's batches) → Linear + ReLU per hidden width →
Linear. Batch norm: the model's `bn_eps` and `bn_momentum` (1e-5 and 0.1 when absent, in
PyTorch's sense of momentum, as sweep's), running variance unbiased as in sweep's
(`nn/batch_norm.rs`). Dropout is 0, so nothing is drawn at random.

The optimizers. Sweep's (`train/optim.rs`) follow torch.optim's formulas, so torch.optim runs
them here: SGD with momentum (buffer ← momentum·buffer + g, starting at g; dampening 0,
Nesterov when the case says so), Adam (β 0.9/0.999, the case's ε added to √v̂ after the bias
correction, not AMSGrad), AdamW (the same, after the decoupled decay p ← p·(1 − lr·λ)),
RMSprop (α 0.99, the case's ε added to √(square_avg), no momentum, not centred). The case's
`weight_decay` λ is torch's `weight_decay` of each (coupled L2 for SGD, Adam and RMSprop),
applied to every parameter, batch norm's included, as `net.parameters()` gives them.
Every hyperparameter is passed explicitly, so a change of torch's defaults changes nothing.

Usage:
  SWEEP_STEP_FIXTURE_EXPORT=/tmp/step cargo test --release --workspace --lib -- fidelity
  python scripts/step_reference.py /tmp/step crates/model/tests/fixtures
Needs torch, numpy and safetensors.
"""
import argparse
import glob
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.numpy import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from block_dense_reference import ResNet  # noqa: E402

BN_MOMENTUM = 0.1  # sweep's default (nn/config.rs BN_MOMENTUM)
BN_EPS = 1e-5  # sweep's default (nn/config.rs BN_EPS)


class Mlp(nn.Module):
    """mlp.rs Mlp: flatten → (Linear → ReLU) per hidden width → dropout → Linear."""

    def __init__(self, model, size, classes):
        super().__init__()
        widths = [model["neurons"], *model["hidden"]]
        inputs = 3 * size * size
        self.hidden = len(widths)
        for i, width in enumerate(widths):
            self.add_module(f"dense{i}", nn.Linear(inputs, width))
            inputs = width
        self.dropout = nn.Dropout(model["dropout"])
        self.output = nn.Linear(inputs, classes)

    def forward(self, x):
        x = x.flatten(1)
        for i in range(self.hidden):
            x = F.relu(getattr(self, f"dense{i}")(x))
        return self.output(self.dropout(x))


def network(meta):
    model = meta["model"]
    if model["arch"] == "mlp":
        net = Mlp(model, meta["size"], meta["classes"])
    else:
        net = ResNet(model, meta["classes"])
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = model.get("bn_momentum", BN_MOMENTUM)
            m.eps = model.get("bn_eps", BN_EPS)
    return net


def optimizer(case, params):
    kind, lr, wd = case["kind"], case["lr"], case["weight_decay"]
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=case["momentum"], dampening=0.0,
                               nesterov=case["nesterov"], weight_decay=wd, maximize=False)
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), eps=case["eps"],
                                weight_decay=wd, amsgrad=False, maximize=False)
    if kind == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), eps=case["eps"],
                                 weight_decay=wd, amsgrad=False, maximize=False)
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=0.99, eps=case["eps"], weight_decay=wd,
                                   momentum=0.0, centered=False, maximize=False)
    sys.exit(f"unknown optimizer {kind}")


def variables(net):
    """Every variable by sweep's name (PyTorch's step counter of batch norm is not one)."""
    return {k: v.detach().clone() for k, v in net.state_dict().items()
            if not k.endswith("num_batches_tracked")}


def run(meta, before, images, labels, dtype):
    """Two training steps per optimizer from `before`; the tensors of the fixture."""
    out = {}
    for case in meta["optimizers"]:
        name = case["name"]
        net = network(meta).to(dtype)
        names = set(variables(net))
        if names != before.keys():
            sys.exit(f"names differ: missing {sorted(names - before.keys())}, "
                     f"unexpected {sorted(before.keys() - names)}")
        net.load_state_dict({k: torch.from_numpy(v).to(dtype) for k, v in before.items()},
                            strict=False)
        net.train()
        opt = optimizer(case, net.parameters())
        x = torch.from_numpy(images).to(dtype)
        y = torch.from_numpy(labels.astype(np.int64))
        for step in (1, 2):
            opt.zero_grad(set_to_none=True)
            # reduction="mean", as candle-nn's; label smoothing as nn.CrossEntropyLoss's
            loss = F.cross_entropy(net(x), y, reduction="mean",
                                   label_smoothing=meta.get("label_smoothing", 0.0))
            loss.backward()
            if step == 1:
                for k, p in net.named_parameters():
                    out[f"grad.{k}"] = p.grad.detach().clone()
            opt.step()
            out[f"{name}.loss{step}"] = loss.detach().reshape(1)
            for k, v in variables(net).items():
                out[f"{name}.after{step}.{k}"] = v
    return out


def max_rel_err(a, b):
    """The Rust test's measure: |a − b| / max(|b|, 1e-3, 1e-2 · max |b|), the largest."""
    def one(x, y):
        floor = max(1e-3, 1e-2 * y.abs().max().item())
        return ((x - y).abs() / y.abs().clamp(min=floor)).max().item()
    return max(one(a[k].double(), b[k].double()) for k in b)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("init_dir", help="where the Rust test wrote step_*_init.safetensors")
    parser.add_argument("out_dir", help="where the fixtures go (crates/model/tests/fixtures)")
    args = parser.parse_args()
    paths = sorted(glob.glob(os.path.join(args.init_dir, "step_*_init.safetensors")))
    if not paths:
        sys.exit(f"no step_*_init.safetensors in {args.init_dir}")
    os.makedirs(args.out_dir, exist_ok=True)
    torch.use_deterministic_algorithms(True)
    for path in paths:
        with safe_open(path, "np") as f:
            raw_meta = f.metadata()["sweep"]
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = json.loads(raw_meta)
        before = {k[len("before."):]: v for k, v in tensors.items() if k.startswith("before.")}
        images, labels = tensors["images"], tensors["labels"]
        reference = run(meta, before, images, labels, torch.float64)
        single = run(meta, before, images, labels, torch.float32)
        fixture = {k: v.numpy().astype(np.float32) for k, v in reference.items()}
        fixture.update({f"before.{k}": v for k, v in before.items()})
        fixture["images"], fixture["labels"] = images, labels
        out = os.path.join(args.out_dir, f"step_{meta['name']}.safetensors")
        save_file(fixture, out, metadata={"sweep": raw_meta})
        print(f"{out}: {meta['model']}, {meta['size']}×{meta['size']} images, "
              f"batch {len(labels)}, {os.path.getsize(out)} bytes (torch {torch.__version__})")
        def err(keys):
            return max_rel_err({k: single[k] for k in keys}, {k: reference[k] for k in keys})

        print("  PyTorch's own float32 step against the float64 reference, max relative error:")
        grads = [k for k in reference if k.startswith("grad.")]
        for case in meta["optimizers"]:
            name = case["name"]
            after = [k for k in reference if k.startswith(f"{name}.after")]
            weights = [k for k in after if not k.endswith(("running_mean", "running_var"))]
            running = [k for k in after if k not in weights]
            print(f"  {name}: loss {reference[f'{name}.loss1'].item():.6f} → "
                  f"{reference[f'{name}.loss2'].item():.6f}; loss "
                  f"{err([f'{name}.loss1', f'{name}.loss2']):.2e}, gradients {err(grads):.2e}, "
                  f"weights {err(weights):.2e}"
                  + (f", running statistics {err(running):.2e}" if running else ""))


if __name__ == "__main__":
    main()
