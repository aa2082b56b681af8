"""Writes ``state/``: orbax checkpoints of optimizer states made by nnml_optax 0.1.0.

Run once with the 0.1.0 code (``git checkout v0.1.0``, or the commit before the 0.2.0 state
changes) from the repository root: ``python tests/data/checkpoints_0_1_0/write.py``. For each
optimizer below it runs three steps on a tiny parameter tree and saves, in one checkpoint, the
state, the parameters and the update 0.1.0 computes at the fourth step, which
``tests/test_migrate.py`` compares with the 0.2.0 optimizer's update from the migrated state.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import optax
import orbax.checkpoint as ocp

import nnml_optax as nn

HERE = Path(__file__).resolve().parent

# name -> (factory, kwargs as JSON, so the test rebuilds the same optimizer)
CASES = {
  "sgd": ("sgd", {"learning_rate": 0.1}),
  "sgd_schedule": ("sgd", {"learning_rate": ["exponential_decay", 0.1, 2, 0.5]}),
  "momentum": ("momentum", {"learning_rate": 0.1, "momentum": 0.9}),
  "nesterov": ("nesterov", {"learning_rate": 0.1, "momentum": 0.9}),
  "rmsprop": ("rmsprop", {"learning_rate": 0.01}),
  "rmsprop_centered": ("rmsprop", {"learning_rate": 0.01, "centered": True}),
  "rmsprop_momentum": ("rmsprop", {"learning_rate": 0.01, "momentum": 0.9}),
  "rmsprop_momentum_schedule": (
    "rmsprop",
    {"learning_rate": ["exponential_decay", 0.01, 2, 0.5], "momentum": 0.9},
  ),
  "rmsprop_centered_nesterov": (
    "rmsprop",
    {"learning_rate": 0.01, "centered": True, "momentum": 0.9, "nesterov": True},
  ),
  "rmsprop_torch_momentum": (
    "rmsprop",
    {"learning_rate": 0.01, "decay": 0.99, "momentum": 0.9, "convention": "torch"},
  ),
}


def build(factory: str, kwargs: dict) -> optax.GradientTransformation:
  kw = dict(kwargs)
  lr = kw["learning_rate"]
  if isinstance(lr, list):
    kw["learning_rate"] = getattr(optax, lr[0])(*lr[1:])
  return getattr(nn, factory)(**kw)


def params0() -> dict:
  return {"b": jnp.arange(3, dtype=jnp.float32) / 4, "w": jnp.ones((2, 3), jnp.float32)}


def grad(params: dict, t: int) -> dict:
  return jax.tree.map(lambda p: jnp.sin(p + 0.7 * t) * (1.0 + t), params)


def run(tx: optax.GradientTransformation, steps: int = 3):
  p = params0()
  s = tx.init(p)
  for t in range(steps):
    u, s = tx.update(grad(p, t), s, p)
    p = optax.apply_updates(p, u)
  nxt, _ = tx.update(grad(p, steps), s, p)
  return p, s, nxt


def main() -> None:
  out = HERE / "state"
  if out.exists():
    shutil.rmtree(out)
  tree = {}
  for name, (factory, kwargs) in CASES.items():
    p, s, nxt = run(build(factory, kwargs))
    tree[name] = {"params": p, "opt_state": s, "next_update": nxt}
  ckpt = ocp.StandardCheckpointer()
  ckpt.save(out, tree)
  ckpt.wait_until_finished()
  ckpt.close()
  (HERE / "cases.json").write_text(json.dumps(CASES, indent=1) + "\n")


if __name__ == "__main__":
  main()
