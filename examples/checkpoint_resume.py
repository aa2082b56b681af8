"""Checkpoint and resume a training run with orbax: the resumed loss curve equals the uninterrupted one.

Trains the digits MLP with ``nnml_optax.nesterov`` under Sutskever's momentum schedule (the schedule
reads the step count stored in the optimizer state, so it resumes where it stopped), saves
``(params, opt_state)`` half-way with ``orbax.checkpoint.StandardCheckpointer``, restores into a fresh
process-like state and continues. Prints the largest difference between the two loss curves (0.0).

Run: ``python examples/checkpoint_resume.py --steps 400``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import nnx

import nnml_optax as nn

try:
  from _common import digits
except ImportError:
  from examples._common import digits


def make(seed: int, d_in: int):
  class MLP(nnx.Module):
    def __init__(self, rngs):
      self.l1 = nnx.Linear(d_in, 64, kernel_init=nn.init.fan_in(), rngs=rngs)
      self.l2 = nnx.Linear(64, 10, kernel_init=nn.init.fan_in(), rngs=rngs)

    def __call__(self, x):
      return self.l2(jnp.tanh(self.l1(x)))

  return nnx.split(MLP(nnx.Rngs(seed)), nnx.Param)


def main(
  steps: int = 400, seed: int = 0, batch_size: int = 100, workdir: str | None = None
) -> dict:
  (xtr, ytr), _, _ = digits(seed)
  graphdef, params0 = make(seed, xtr.shape[1])
  tx = nn.nesterov(0.05, nn.schedules.sutskever_momentum(0.99, period=max(1, steps // 10)))

  def loss_fn(p, x, y):
    return optax.softmax_cross_entropy_with_integer_labels(nnx.merge(graphdef, p)(x), y).mean()

  @jax.jit
  def step(p, s, x, y):
    loss, g = jax.value_and_grad(loss_fn)(p, x, y)
    u, s = tx.update(g, s, p)
    return optax.apply_updates(p, u), s, loss

  batches = list(
    zip(
      range(steps),
      nn.data.minibatches(
        jax.random.key(seed), xtr, ytr, batch_size, drop_remainder=True, num_epochs=None
      ),
      strict=False,
    )
  )

  def run(p, s, start, stop):
    losses = []
    for _, (xb, yb) in batches[start:stop]:
      p, s, loss = step(p, s, xb, yb)
      losses.append(float(loss))
    return p, s, losses

  # uninterrupted
  _, _, straight = run(params0, tx.init(params0), 0, steps)
  # interrupted half-way, checkpointed, restored, resumed
  half = steps // 2
  p, s, first = run(params0, tx.init(params0), 0, half)
  with tempfile.TemporaryDirectory() as tmp:
    path = Path(workdir or tmp).absolute() / "ckpt"
    ckpt = ocp.StandardCheckpointer()
    ckpt.save(path, {"params": p, "opt_state": s}, force=True)
    ckpt.wait_until_finished()
    abstract = jax.tree.map(
      ocp.utils.to_shape_dtype_struct, {"params": params0, "opt_state": tx.init(params0)}
    )
    restored = ckpt.restore(path, abstract)
    ckpt.close()
  _, _, second = run(restored["params"], restored["opt_state"], half, steps)
  resumed = first + second
  diff = float(np.max(np.abs(np.asarray(straight) - np.asarray(resumed))))
  print(
    f"uninterrupted final loss {straight[-1]:.6f}, resumed final loss {resumed[-1]:.6f}, "
    f"max |difference| over the curve {diff}"
  )
  return {"straight": straight, "resumed": resumed, "max_abs_diff": diff}


if __name__ == "__main__":
  ap = argparse.ArgumentParser(description=__doc__)
  ap.add_argument("--steps", type=int, default=400)
  ap.add_argument("--seed", type=int, default=0)
  a = ap.parse_args()
  main(steps=a.steps, seed=a.seed)
