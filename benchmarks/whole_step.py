"""Whole training step (forward + backward + update) of a wide MLP on the digits, paired with optax.

The update-only timings of ``paired.py`` magnify an optimizer's cost; what a user pays is the
whole step. This script times one jitted training step, with donated parameters and state, of a
logistic MLP 64-2048-2048-2048-10 (8.5M float32 parameters; ``--hidden``) on mini-batches of
scikit-learn's digits (pixels / 16, as the ``raw`` problem of ``nnml-optax compare``), for each
case of ``cases.py`` beside its optax peer. vSGD gets its finite-difference curvature from a
second gradient of the same mini-batch (``grad_fn``), as a user would call it.

Rounds alternate the order of the versions (a, b, c, then c, b, a, ...); each round's ratio is
taken between neighbours in time, and the median [min, max] over rounds is reported, so the load
of a shared machine cancels as far as it can. ``--against PATH`` adds a second checkout of the
library (its ``nnml_optax`` imported under another name in the same process): before / after a
change, under the same load.

Usage::

    python benchmarks/whole_step.py --only vsgd --only local_gains --rounds 11
    python benchmarks/whole_step.py --against /path/to/old/checkout --only "rmsprop(centered)"
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import itertools
import json
import os
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nnml_optax as nn

import cases
from cases import CASES
from step_time import add_clock_argument, clock_of

# cases whose ``extra`` is the update-only stand-in (identity grad_fn): replaced by the real one
_NEEDS_GRAD_FN = {"vsgd"}


def load_checkout(path: str, name: str = "nnml_optax_against"):
  """The ``nnml_optax`` package of another checkout, imported as ``name``."""
  pkg = Path(path).resolve() / "nnml_optax"
  spec = importlib.util.spec_from_file_location(
    name, pkg / "__init__.py", submodule_search_locations=[str(pkg)]
  )
  if spec is None or spec.loader is None:
    raise ValueError(f"--against: no nnml_optax package under {path!r}")
  module = importlib.util.module_from_spec(spec)
  sys.modules[name] = module
  spec.loader.exec_module(module)
  return module


def case_factory(case, library):
  """``case.ours`` built from ``library`` instead of the installed ``nnml_optax``."""
  if library is None:
    return case.ours
  saved = cases.nn
  cases.nn = library
  try:
    tx = case.ours()
  finally:
    cases.nn = saved
  return lambda: tx


def mlp_init(key, sizes):
  params = {}
  for i, (m, n) in enumerate(itertools.pairwise(sizes)):
    key, sub = jax.random.split(key)
    params[f"w{i}"] = jax.random.normal(sub, (m, n), jnp.float32) / np.sqrt(m)
    params[f"b{i}"] = jnp.zeros((n,), jnp.float32)
  return params


def loss_fn(params, x, y):
  n = len(params) // 2
  h = x
  for i in range(n):
    h = h @ params[f"w{i}"] + params[f"b{i}"]
    if i < n - 1:
      h = jax.nn.sigmoid(h)
  return optax.softmax_cross_entropy_with_integer_labels(h, y).mean()


def make_train_step(tx, with_grad_fn: bool):
  @functools.partial(jax.jit, donate_argnums=(0, 1))
  def step(params, state, x, y):
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
    extra = {"grad_fn": lambda p: jax.grad(loss_fn)(p, x, y)} if with_grad_fn else {}
    updates, state = tx.update(grads, state, params, **extra)
    return optax.apply_updates(params, updates), state, loss

  return step


def time_steps(step, params, state, batches, iters: int, clock=time.perf_counter) -> float:
  """Median ms of ``iters`` steps after one warm-up step (fresh copies: donation)."""
  p, s = jax.tree.map(jnp.copy, (params, state))
  x, y = batches[0]
  p, s, loss = step(p, s, x, y)
  jax.block_until_ready(loss)
  times = []
  for i in range(iters):
    x, y = batches[(i + 1) % len(batches)]
    t0 = clock()
    p, s, loss = step(p, s, x, y)
    jax.block_until_ready((p, s, loss))
    times.append(clock() - t0)
  return statistics.median(times) * 1e3


def spread(values):
  v = sorted(values)
  return {"median": statistics.median(v), "min": v[0], "max": v[-1]}


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  ap.add_argument("--only", action="append", default=[], help="exact case names (cases.py)")
  ap.add_argument("--against", default=None, help="another checkout of the library to compare")
  ap.add_argument("--hidden", default="2048,2048,2048", help="hidden widths, comma-separated")
  ap.add_argument("--batch", type=int, default=100)
  ap.add_argument("--rounds", type=int, default=11)
  ap.add_argument("--iters", type=int, default=5)
  ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
  add_clock_argument(ap)
  args = ap.parse_args(argv)
  clock = clock_of(args.clock)

  (xtr, ytr), _, _ = nn.data.load_digits(seed=0)
  xtr = np.asarray(xtr, np.float32) / 16.0
  order = np.random.default_rng(0).permutation(len(xtr))
  n_batches = len(xtr) // args.batch
  batches = [
    (jnp.asarray(xtr[idx]), jnp.asarray(ytr[idx]))
    for idx in np.array_split(order[: n_batches * args.batch], n_batches)
  ]
  sizes = (64, *(int(h) for h in args.hidden.split(",")), 10)
  params = mlp_init(jax.random.key(0), sizes)
  n_params = sum(int(x.size) for x in jax.tree.leaves(params))
  against = load_checkout(args.against) if args.against else None
  selected = [c for c in CASES if not args.only or c.name in args.only]
  missing = set(args.only) - {c.name for c in selected}
  if missing:
    raise SystemExit(f"unknown case(s) {sorted(missing)}; see benchmarks/cases.py")
  load = os.getloadavg()
  print(
    f"MLP {'-'.join(map(str, sizes))} ({n_params / 1e6:.2f}M params), batch {args.batch}, "
    f"{args.rounds} rounds x {args.iters} steps ({args.clock} clock); jax {jax.__version__}, "
    f"{os.cpu_count()} CPUs, load average {load[0]:.1f}",
    flush=True,
  )
  rows = []
  for case in selected:
    fd = case.name in _NEEDS_GRAD_FN
    versions = {"ours": case.ours, "optax": case.theirs}
    if against is not None:
      versions["against"] = case_factory(case, against)
    txs = {k: f() for k, f in versions.items()}
    steps = {k: make_train_step(tx, fd and k != "optax") for k, tx in txs.items()}
    states = {k: tx.init(params) for k, tx in txs.items()}
    ms: dict[str, list[float]] = {k: [] for k in txs}
    for r in range(args.rounds):
      for k in list(txs) if r % 2 == 0 else list(txs)[::-1]:
        ms[k].append(time_steps(steps[k], params, states[k], batches, args.iters, clock))
    row = {"name": case.name, "peer": case.peer, "n_params": n_params}
    row["ms"] = {k: statistics.median(v) for k, v in ms.items()}
    row["ours/optax"] = spread([a / b for a, b in zip(ms["ours"], ms["optax"], strict=True)])
    line = (
      f"{case.name:24s} ours {row['ms']['ours']:7.1f} ms  optax {row['ms']['optax']:7.1f} ms  "
      f"ours/optax {row['ours/optax']['median']:.3f} "
      f"[{row['ours/optax']['min']:.2f}, {row['ours/optax']['max']:.2f}]"
    )
    if against is not None:
      row["against/optax"] = spread(
        [a / b for a, b in zip(ms["against"], ms["optax"], strict=True)]
      )
      row["ours/against"] = spread([a / b for a, b in zip(ms["ours"], ms["against"], strict=True)])
      line += (
        f"  against {row['ms']['against']:7.1f} ms  against/optax "
        f"{row['against/optax']['median']:.3f}  ours/against {row['ours/against']['median']:.3f} "
        f"[{row['ours/against']['min']:.2f}, {row['ours/against']['max']:.2f}]"
      )
    print(line, flush=True)
    rows.append(row)
  load_end = os.getloadavg()
  print(f"load average at the end {load_end[0]:.1f}", flush=True)
  if args.json:
    meta = {"jax": jax.__version__, "load": [load[0], load_end[0]], "sizes": sizes}
    meta["clock"] = args.clock
    args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
