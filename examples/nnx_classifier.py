"""A Flax NNX classifier trained with nnml_optax transforms chained in an ``nnx.Optimizer``.

Two runs on the bundled digits:

1. rmsprop with per-connection gains (lecture 6e's "further development"), built by chaining
   ``scale_by_rms``, ``scale_by_local_gains`` and ``optax.scale_by_learning_rate``;
2. full-batch gradient descent with the bold driver, a ``value=``-reading transform fed through
   ``optimizer.update(model, grads, value=loss)``.

Run: ``python examples/nnx_classifier.py --steps 500``.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import optax
from flax import nnx

import nnml_optax as nn

try:
  from _common import digits
except ImportError:  # imported as examples.nnx_classifier
  from examples._common import digits


class MLP(nnx.Module):
  def __init__(self, d_in: int, hidden: int, classes: int, rngs: nnx.Rngs):
    self.l1 = nnx.Linear(d_in, hidden, kernel_init=nn.init.fan_in(), rngs=rngs)
    self.l2 = nnx.Linear(hidden, classes, kernel_init=nn.init.fan_in(), rngs=rngs)

  def __call__(self, x):
    return self.l2(jnp.tanh(self.l1(x)))


def loss_fn(model, x, y):
  return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()


def accuracy(model, x, y) -> float:
  return float(jnp.mean(jnp.argmax(model(x), -1) == y))


def main(steps: int = 500, seed: int = 0, batch_size: int = 100) -> dict:
  (xtr, ytr), (xva, yva), _ = digits(seed)
  results = {}

  # 1. rmsprop + local gains, mini-batches --------------------------------------------------
  model = MLP(xtr.shape[1], 100, 10, nnx.Rngs(seed))
  tx = optax.chain(
    nn.scale_by_rms(0.9), nn.scale_by_local_gains(), optax.scale_by_learning_rate(1e-3)
  )
  optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)

  @nnx.jit
  def train_step(model, optimizer, x, y):
    loss, grads = nnx.value_and_grad(loss_fn)(model, x, y)
    optimizer.update(model, grads)
    return loss

  batches = nn.data.minibatches(
    jax.random.key(seed), xtr, ytr, batch_size, balanced=True, drop_remainder=True, num_epochs=None
  )
  for _, (xb, yb) in zip(range(steps), batches, strict=False):
    train_step(model, optimizer, xb, yb)
  results["rmsprop+gains"] = {
    "train_loss": float(loss_fn(model, xtr, ytr)),
    "val_accuracy": accuracy(model, xva, yva),
  }

  # 2. full-batch gradient descent with the bold driver: update(..., value=loss) ------------
  model = MLP(xtr.shape[1], 100, 10, nnx.Rngs(seed))
  optimizer = nnx.Optimizer(model, optax.chain(nn.sgd(0.5), nn.bold_driver()), wrt=nnx.Param)

  @nnx.jit
  def bold_step(model, optimizer, x, y):
    loss, grads = nnx.value_and_grad(loss_fn)(model, x, y)
    optimizer.update(model, grads, value=loss)  # the loss at the current parameters
    return loss

  for _ in range(steps):
    bold_step(model, optimizer, xtr, ytr)
  scale = float(optax.tree.get(optimizer.opt_state, "driver_scale"))
  results["sgd+bold_driver"] = {
    "train_loss": float(loss_fn(model, xtr, ytr)),
    "val_accuracy": accuracy(model, xva, yva),
    "final_scale": scale,
  }
  for name, r in results.items():
    print(f"{name:16s} " + "  ".join(f"{k} {v:.4f}" for k, v in r.items()))
  return results


if __name__ == "__main__":
  ap = argparse.ArgumentParser(description=__doc__)
  ap.add_argument("--steps", type=int, default=500)
  ap.add_argument("--seed", type=int, default=0)
  a = ap.parse_args()
  main(steps=a.steps, seed=a.seed)
