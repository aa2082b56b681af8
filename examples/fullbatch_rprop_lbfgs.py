"""Small data, full batch: Rprop and L-BFGS side by side (lecture 6e's advice for small data sets).

"For small datasets (e.g. 10,000 cases) use a full-batch method: conjugate gradient or L-BFGS, or
adaptive learning rates, rprop." Trains the digits MLP on the whole training set with
``nnml_optax.rprop`` (iRprop-, torch's rule, and iRprop+, which reads ``value=``) and with
``optax.lbfgs`` (which reads ``value``, ``grad`` and ``value_fn`` for its line search).

Run: ``python examples/fullbatch_rprop_lbfgs.py --steps 200``.
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
except ImportError:
  from examples._common import digits


def main(steps: int = 200, seed: int = 0) -> dict:
  (xtr, ytr), (xva, yva), _ = digits(seed)

  class MLP(nnx.Module):
    def __init__(self, rngs):
      self.l1 = nnx.Linear(xtr.shape[1], 64, kernel_init=nn.init.fan_in(), rngs=rngs)
      self.l2 = nnx.Linear(64, 10, kernel_init=nn.init.fan_in(), rngs=rngs)

    def __call__(self, x):
      return self.l2(jnp.tanh(self.l1(x)))

  graphdef, params0 = nnx.split(MLP(nnx.Rngs(seed)), nnx.Param)
  x, y = jnp.asarray(xtr), jnp.asarray(ytr)

  def loss_fn(p):
    return optax.softmax_cross_entropy_with_integer_labels(nnx.merge(graphdef, p)(x), y).mean()

  def accuracy(p):
    return float(jnp.mean(jnp.argmax(nnx.merge(graphdef, p)(xva), -1) == yva))

  results = {}
  for name, tx in {
    "irprop-": nn.rprop(0.01),
    "irprop+": nn.rprop(0.01, variant="irprop+"),
    "lbfgs": optax.lbfgs(),
  }.items():
    state = tx.init(params0)

    @jax.jit
    def step(p, s, tx=tx):
      value, g = jax.value_and_grad(loss_fn)(p)
      u, s = tx.update(g, s, p, value=value, grad=g, value_fn=loss_fn)
      return optax.apply_updates(p, u), s, value

    p = params0
    for _ in range(steps):
      p, state, _ = step(p, state)
    results[name] = {"train_loss": float(loss_fn(p)), "val_accuracy": accuracy(p)}
    print(
      f"{name:8s} full-batch loss after {steps} steps {results[name]['train_loss']:.6f}  "
      f"val acc {results[name]['val_accuracy']:.4f}"
    )
  return results


if __name__ == "__main__":
  ap = argparse.ArgumentParser(description=__doc__)
  ap.add_argument("--steps", type=int, default=200)
  ap.add_argument("--seed", type=int, default=0)
  a = ap.parse_args()
  main(steps=a.steps, seed=a.seed)
