"""Sutskever et al. (2013)'s deep-autoencoder experiment, scaled down to the bundled digits.

Encoder 64-100-50-25-6 with a mirrored decoder, logistic units (linear code layer), sparse
initialisation (15 non-zero incoming weights per unit, Martens 2010), squared reconstruction error,
mini-batches of 200. SGD (mu = 0), classical momentum (M) and Nesterov (N) with the paper's schedule
mu_t = min(1 - 2^(-1 - log2(floor(t/250) + 1)), mu_max) for mu_max in {0.9, 0.99, 0.995}, the best
learning rate from a small grid for each column, and the final phase (momentum 0.9 for the last
10% of updates). Prints a table shaped like the paper's Table 1 (training error).

Run: ``python examples/deep_autoencoder.py --steps 3000`` (the paper used 750,000 updates).
"""

from __future__ import annotations

import argparse
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import nnml_optax as nn

SIZES = [64, 100, 50, 25, 6, 25, 50, 100, 64]
MU_MAX = (0.9, 0.99, 0.995)
LRS = (0.05, 0.01, 0.005)


class Autoencoder(nnx.Module):
  def __init__(self, rngs: nnx.Rngs):
    self.layers = nnx.List(
      [
        nnx.Linear(a, b, kernel_init=nn.init.sparse(15), rngs=rngs)
        for a, b in itertools.pairwise(SIZES)
      ]
    )
    self.code = len(self.layers) // 2 - 1

  def __call__(self, h):
    for i, layer in enumerate(self.layers):
      h = layer(h)
      if i != self.code:
        h = jax.nn.sigmoid(h)
    return h


def train(tx, x, steps: int, seed: int, batch_size: int = 200) -> float:
  graphdef, params = nnx.split(Autoencoder(nnx.Rngs(seed)), nnx.Param)
  state = tx.init(params)

  def loss_fn(p, xb):
    return jnp.mean(jnp.sum((nnx.merge(graphdef, p)(xb) - xb) ** 2, axis=-1))

  @jax.jit
  def run(params, state):
    def body(carry, t):
      p, s = carry
      idx = jax.random.randint(
        jax.random.fold_in(jax.random.key(seed), t), (batch_size,), 0, x.shape[0]
      )
      g = jax.grad(loss_fn)(p, x[idx])
      u, s = tx.update(g, s, p)
      return (optax.apply_updates(p, u), s), None

    (params, state), _ = jax.lax.scan(body, (params, state), jnp.arange(steps))
    return loss_fn(params, x)

  loss = float(run(params, state))
  return loss if np.isfinite(loss) else float("inf")


def main(steps: int = 3000, seed: int = 0, lrs=LRS) -> dict:
  (xtr, _), _, _ = nn.data.load_digits(seed=seed)
  x = jnp.asarray(xtr / 16.0)
  final = max(1, steps // 10)
  period = max(1, steps // 40)  # the paper's 250 out of 750k, stretched to the shorter run

  def schedule(mu_max):
    return nn.schedules.sutskever_momentum(
      mu_max, period=period, total_steps=steps, final_steps=final
    )

  columns = {"0 (SGD)": lambda lr: nn.sgd(lr)}
  for m in MU_MAX:
    columns[f"{m}N"] = lambda lr, m=m: nn.nesterov(lr, schedule(m))
  for m in MU_MAX:
    columns[f"{m}M"] = lambda lr, m=m: nn.momentum(lr, schedule(m))
  table = {}
  for name, make in columns.items():
    errs = {lr: train(make(lr), x, steps, seed) for lr in lrs}
    best = min(errs, key=errs.get)
    table[name] = {"error": errs[best], "lr": best}
  print(
    "training squared error (best learning rate per column), digits autoencoder "
    f"{'-'.join(map(str, SIZES[:5]))} mirrored, {steps} updates"
  )
  print(" | ".join(f"{k:>8s}" for k in table))
  print(" | ".join(f"{v['error']:8.3f}" for v in table.values()))
  print(" | ".join(f"{v['lr']:8g}" for v in table.values()) + "   (learning rate)")
  return table


if __name__ == "__main__":
  ap = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  ap.add_argument("--steps", type=int, default=3000)
  ap.add_argument("--seed", type=int, default=0)
  a = ap.parse_args()
  main(steps=a.steps, seed=a.seed)
