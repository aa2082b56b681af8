"""Trace, lowering and compile time of one step on a 1,000-leaf tree, this checkout against another.

For each case of ``cases.py`` (or ``--only``), a jitted ``update`` + ``apply_updates`` on
``--leaves`` leaves of 7 shapes (as ``paired.py --compile-leaves``) is traced
(``jax.jit(step).trace``), lowered and compiled with this checkout's ``nnml_optax`` and with
``--against``'s, alternating for ``--rounds`` rounds (ours, other, other, ours, ...); each phase is
the minimum over the rounds, in CPU seconds of this process (less sensitive to other jobs than wall
time). Prints one line per case and the ratio of the totals.

Usage::

    python benchmarks/compile_phases.py --against /path/to/other/checkout --only rmsprop
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import optax

sys.path.insert(0, str(Path(__file__).resolve().parent))
from whole_step import case_factory, load_checkout

from cases import CASES


def phases(tx, extra_fn, params) -> tuple[float, float, float]:
  state = jax.eval_shape(tx.init, params)

  def step(params, grads, state):
    u, state = tx.update(grads, state, params, **extra_fn(params))
    return optax.apply_updates(params, u), state

  clock = time.process_time
  t0 = clock()
  traced = jax.jit(step).trace(params, params, state)
  t1 = clock()
  lowered = traced.lower()
  t2 = clock()
  lowered.compile()
  return t1 - t0, t2 - t1, clock() - t2


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  ap.add_argument("--against", required=True, help="the other checkout of the library")
  ap.add_argument("--only", action="append", default=[], help="exact case names")
  ap.add_argument("--leaves", type=int, default=1000)
  ap.add_argument("--rounds", type=int, default=3)
  args = ap.parse_args(argv)
  other = load_checkout(args.against)
  params = {f"l{i:05d}": jnp.zeros((4 + i % 7, 3), jnp.float32) for i in range(args.leaves)}
  for case in CASES:
    if args.only and case.name not in args.only:
      continue
    versions = [("ours", case.ours), ("other", case_factory(case, other))]
    times: dict[str, list] = {"ours": [], "other": []}
    for r in range(args.rounds):
      for label, make in versions if r % 2 == 0 else versions[::-1]:
        times[label].append(phases(make(), case.extra, params))
    best = {k: [min(t[i] for t in v) for i in range(3)] for k, v in times.items()}
    text = " | ".join(
      f"{k}: trace {b[0]:.2f} lower {b[1]:.2f} compile {b[2]:.2f} total {sum(b):.2f}"
      for k, b in best.items()
    )
    ratio = sum(best["ours"]) / sum(best["other"])
    print(f"{case.name:28s} {text} | ours/other {ratio:.2f}", flush=True)
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
