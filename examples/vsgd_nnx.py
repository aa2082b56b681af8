"""vSGD ("no more pesky learning rates", lecture 6e) training a Flax NNX model, no learning rate.

A small MLP learns a noisy 1-d regression problem from mini-batches. The optimizer is
``nnml_optax.vsgd()`` with its defaults; its curvature comes from finite differences of the
gradient on the *same* mini-batch (vSGD-fd), so each step passes a gradient function::

    optimizer.update(model, grads, grad_fn=grad_fn)

``nnx.Optimizer.update`` forwards extra keyword arguments to ``tx.update``. ``grad_fn`` receives
the parameters as the optimizer holds them (a pure ``nnx.State`` of arrays) and returns the
gradient with the same structure.

Run: ``python examples/vsgd_nnx.py --steps 2000``. Expected (seed 0, CPU): the full-data loss
falls from 0.89 to 0.10 in the first 100 steps and to about 0.04 after 2000 (the noise floor is
0.01), with no tuning; the first ``n0`` = 10 steps only collect statistics.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import nnml_optax


class MLP(nnx.Module):
  def __init__(self, rngs: nnx.Rngs, width: int = 32):
    self.hidden = nnx.Linear(1, width, rngs=rngs)
    self.out = nnx.Linear(width, 1, rngs=rngs)

  def __call__(self, x):
    return self.out(jnp.tanh(self.hidden(x)))


def loss_fn(model: MLP, x, y):
  return jnp.mean((model(x) - y) ** 2)


def make_data(seed: int, n: int = 2048, noise: float = 0.1):
  rng = np.random.default_rng(seed)
  x = rng.uniform(-2.0, 2.0, size=(n, 1)).astype(np.float32)
  y = np.sin(2.0 * x) + noise * rng.normal(size=(n, 1)).astype(np.float32)
  return jnp.asarray(x), jnp.asarray(y)


@nnx.jit
def train_step(model: MLP, optimizer: nnx.Optimizer, x, y):
  graphdef, _, rest = nnx.split(model, nnx.Param, ...)

  def grad_fn(params):  # the gradient on this mini-batch at other parameters
    return jax.grad(lambda p: loss_fn(nnx.merge(graphdef, p, rest), x, y))(params)

  loss, grads = nnx.value_and_grad(loss_fn)(model, x, y)
  optimizer.update(model, grads, grad_fn=grad_fn)
  return loss


def main(steps: int = 2000, seed: int = 0, batch_size: int = 64) -> list[float]:
  """Trains on ``steps`` mini-batches; returns the full-data loss every 100 steps and at the end."""
  x, y = make_data(seed)
  model = MLP(nnx.Rngs(seed))
  optimizer = nnx.Optimizer(model, nnml_optax.vsgd(), wrt=nnx.Param)
  rng = np.random.default_rng(seed + 1)
  history = [float(loss_fn(model, x, y))]
  for step in range(1, steps + 1):
    idx = rng.integers(0, x.shape[0], size=batch_size)
    train_step(model, optimizer, x[idx], y[idx])
    if step % 100 == 0 or step == steps:
      history.append(float(loss_fn(model, x, y)))
  return history


if __name__ == "__main__":
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=2000)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--batch-size", type=int, default=64)
  args = parser.parse_args()
  losses = main(args.steps, args.seed, args.batch_size)
  for i, value in enumerate(losses):
    print(f"eval {i:3d}: loss {value:.4f}")
