"""Flax Linen ``TrainState`` with ``nnml_optax.nesterov`` and Sutskever's momentum schedule.

The momentum schedule is passed straight to ``nesterov`` (no ``inject_hyperparams`` needed); the
last 10% of the updates use momentum 0.9 (the paper's final phase).

Run: ``python examples/linen_trainstate.py --steps 1000``.
"""

from __future__ import annotations

import argparse

import flax.linen as linen
import jax
import jax.numpy as jnp
import optax
from flax.training import train_state

import nnml_optax as nn

try:
  from _common import digits
except ImportError:
  from examples._common import digits


class MLP(linen.Module):
  hidden: int = 100
  classes: int = 10

  @linen.compact
  def __call__(self, x):
    x = jnp.tanh(linen.Dense(self.hidden, kernel_init=nn.init.fan_in())(x))
    return linen.Dense(self.classes, kernel_init=nn.init.fan_in())(x)


def main(steps: int = 1000, seed: int = 0, batch_size: int = 100) -> dict:
  (xtr, ytr), (xva, yva), _ = digits(seed)
  model = MLP()
  params = model.init(jax.random.key(seed), xtr[:1])["params"]
  mu = nn.schedules.sutskever_momentum(
    0.99, period=max(1, steps // 20), total_steps=steps, final_steps=max(1, steps // 10)
  )
  state = train_state.TrainState.create(
    apply_fn=model.apply, params=params, tx=nn.nesterov(0.05, mu)
  )

  def loss_fn(params, x, y):
    logits = state.apply_fn({"params": params}, x)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

  @jax.jit
  def train_step(state, x, y):
    loss, grads = jax.value_and_grad(loss_fn)(state.params, x, y)
    return state.apply_gradients(grads=grads), loss

  batches = nn.data.minibatches(
    jax.random.key(seed), xtr, ytr, batch_size, balanced=True, drop_remainder=True, num_epochs=None
  )
  for _, (xb, yb) in zip(range(steps), batches, strict=False):
    state, _ = train_step(state, xb, yb)
  logits = state.apply_fn({"params": state.params}, xva)
  result = {
    "train_loss": float(loss_fn(state.params, xtr, ytr)),
    "val_accuracy": float(jnp.mean(jnp.argmax(logits, -1) == yva)),
    "final_momentum": float(mu(steps - 1)),
  }
  print("  ".join(f"{k} {v:.4f}" for k, v in result.items()))
  return result


if __name__ == "__main__":
  ap = argparse.ArgumentParser(description=__doc__)
  ap.add_argument("--steps", type=int, default=1000)
  ap.add_argument("--seed", type=int, default=0)
  a = ap.parse_args()
  main(steps=a.steps, seed=a.seed)
