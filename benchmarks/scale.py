"""Many leaves and big trees: compile time and step time with and without ``fuse_leaves``.

* compile time of a 3,000-leaf update, ``optax.rmsprop(momentum=0.9)`` vs
  ``fuse_leaves(optax.rmsprop(momentum=0.9))`` vs ``fuse_leaves(nnml_optax.rmsprop(momentum=0.9))``
  (target: fused <= 0.25x) and step time on that tree of small leaves (target: fused faster);
  two floors measured alongside: plain ``optax.sgd`` (one add per leaf, what any update of the tree
  compiles) and ``fuse_leaves(optax.sgd)`` (the concatenation and split alone);
* ``--large``: a 10,000-leaf tree and a 100M-parameter tree, each initialised and updated once by
  every alias (the 10,000-leaf tree through ``fuse_leaves``, momentum and rmsprop).

Usage::

    python benchmarks/scale.py [--leaves 3000] [--large]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import optax

import nnml_optax as nn


def small_tree(n_leaves: int):
  return {f"p{i:05d}": jnp.full((4 + i % 13, 3 + i % 5), 0.1, jnp.float32) for i in range(n_leaves)}


def measure(tx, params, iters: int = 20, hlo=None, name=""):
  state = tx.init(params)

  def step(params, state):
    u, state = tx.update(params, state, params)
    return optax.apply_updates(params, u), state

  t0 = time.perf_counter()
  compiled = jax.jit(step, donate_argnums=(0, 1)).lower(params, state).compile()
  compile_s = time.perf_counter() - t0
  if hlo is not None:
    with hlo.open("a") as f:
      f.write(f"\n\n######## {name}\n{compiled.as_text()}")
  p = jax.tree.map(lambda x: x.copy(), params)
  for _ in range(3):
    p, state = compiled(p, state)
  jax.block_until_ready(p)
  times = []
  for _ in range(iters):
    t = time.perf_counter()
    p, state = compiled(p, state)
    jax.block_until_ready(p)
    times.append(time.perf_counter() - t)
  return compile_s, statistics.median(times) * 1e3


def many_leaves(n: int, hlo=None, only=None) -> list[dict]:
  params = small_tree(n)
  rows = []
  variants = {
    "optax.rmsprop(momentum=0.9)": lambda: optax.rmsprop(1e-3, momentum=0.9),
    "fuse_leaves(optax.rmsprop(momentum=0.9))": lambda: nn.fuse_leaves(
      optax.rmsprop(1e-3, momentum=0.9)
    ),
  }
  if hasattr(nn, "rmsprop"):
    variants["nnml_optax.rmsprop(momentum=0.9)"] = lambda: nn.rmsprop(1e-3, momentum=0.9)
    variants["fuse_leaves(nnml_optax.rmsprop(momentum=0.9))"] = lambda: nn.fuse_leaves(
      nn.rmsprop(1e-3, momentum=0.9)
    )
    variants["fuse_leaves(nnml_optax.rmsprop(momentum=0.9), runtime_offsets=False)"] = lambda: (
      nn.fuse_leaves(nn.rmsprop(1e-3, momentum=0.9), runtime_offsets=False)
    )
  # floors: the plain per-leaf update XLA must compile for any transform (one add per leaf), and
  # fuse_leaves' own cost (concatenate, split) around an inner update that is a single multiply
  variants["optax.sgd (floor: one kernel per leaf)"] = lambda: optax.sgd(1e-3)
  variants["fuse_leaves(optax.sgd) (floor of fusing)"] = lambda: nn.fuse_leaves(optax.sgd(1e-3))
  for name, make in variants.items():
    if only and not any(o == name for o in only):
      continue
    c, ms = measure(make(), params, hlo=hlo, name=name)
    rows.append({"leaves": n, "transform": name, "compile_s": c, "ms": ms})
    print(f"{n} leaves  {name:72s} compile {c:7.2f} s  step {ms:8.3f} ms", flush=True)
  return rows


def large() -> list[dict]:
  rows = []
  aliases = {
    name: f
    for name, f in {
      "momentum": lambda: nn.momentum(1e-3, 0.9),
      "nesterov": lambda: nn.nesterov(1e-3, 0.9),
      "rmsprop": lambda: nn.rmsprop(1e-3, momentum=0.9),
      "rprop": lambda: nn.rprop(1e-3),
      "local_gains": lambda: nn.local_gains(1e-3),
      "delta_bar_delta": lambda: nn.delta_bar_delta(1e-3),
    }.items()
    if hasattr(nn, name)
  }
  big = {f"w{i}": jnp.zeros((5000, 5000), jnp.float32) for i in range(4)}  # 100M parameters
  many = small_tree(10_000)
  for tree_name, tree, wrap in (
    ("100M params / 4 leaves", big, lambda t: t),
    ("10,000 leaves (fuse_leaves)", many, nn.fuse_leaves),
  ):
    for name, make in aliases.items():
      if tree is many and name not in ("momentum", "rmsprop"):
        continue  # fused compile of 10,000 slices takes minutes per alias on CPU: two suffice
      t0 = time.perf_counter()
      tx = wrap(make())
      state = tx.init(tree)
      u, state = jax.jit(tx.update)(tree, state, tree)
      jax.block_until_ready(u)
      dt = time.perf_counter() - t0
      ok = all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(u)[:10])
      rows.append({"tree": tree_name, "transform": name, "seconds": dt, "finite": ok})
      print(f"{tree_name:30s} {name:16s} init+compile+update {dt:6.1f} s  finite={ok}", flush=True)
      del state, u
  return rows


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  ap.add_argument("--leaves", type=int, default=3000)
  ap.add_argument("--large", action="store_true")
  ap.add_argument("--only", nargs="*", default=None, help="many-leaves variants to run")
  ap.add_argument("--hlo", type=Path, default=None, help="append every compiled step's HLO here")
  ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "scale.json")
  args = ap.parse_args(argv)
  out = {
    "date": time.strftime("%Y-%m-%d"),
    "jax": jax.__version__,
    "optax": optax.__version__,
    "command": "python benchmarks/scale.py " + " ".join(sys.argv[1:] if argv is None else argv),
  }
  jax.jit(lambda x: x + 1).lower(jnp.zeros(3)).compile()  # XLA start-up, not charged to a row
  out["many_leaves"] = many_leaves(args.leaves, args.hlo, args.only)
  base = out["many_leaves"][0]
  for r in out["many_leaves"][1:]:
    print(
      f"  {r['transform']}: compile x{r['compile_s'] / base['compile_s']:.2f}, "
      f"step x{r['ms'] / base['ms']:.2f} of optax.rmsprop(momentum=0.9)"
    )
  if args.large:
    out["large"] = large()
  args.out.parent.mkdir(parents=True, exist_ok=True)
  args.out.write_text(json.dumps(out, indent=1))
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
