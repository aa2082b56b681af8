"""Step time and compile time of nnml_optax transforms against optax, in paired alternating rounds.

On a shared machine single timings of identical kernels differ by up to 20 %, so each round times
ours and optax's back to back (ours, optax, ours, optax, ...: the order flips every round), and the
ratio is taken per round; the median ratio and its spread (min-max over rounds) are reported.

* step: a jitted ``update`` + ``apply_updates`` with donated buffers on ``--leaves`` leaves,
  ``--params`` float32 parameters (default 16 leaves, 4M parameters, as ``step_time.py --quick``);
* compile: ``jit(...).lower(...).compile()`` of the same step on a ``--compile-leaves``-leaf tree
  (default 1000 leaves of 7 shapes; 0 skips), alternating ours/optax, ``--compile-rounds`` times.

Run it on two versions of the library (``PYTHONPATH=<checkout>``) to compare them: both report
ratios to the same optax.

Usage::

    python benchmarks/paired.py --only rmsprop --rounds 15
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import jax

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cases import CASES
from step_time import compile_time, make_step, make_tree, time_step


def paired(case, params, grads, rounds: int, iters: int, compile_leaves: int, compile_rounds: int):
  txs = {"ours": case.ours(), "optax": case.theirs()}
  steps = {k: make_step(tx, case.extra) for k, tx in txs.items()}
  states = {k: tx.init(params) for k, tx in txs.items()}
  ratios, ms = [], {"ours": [], "optax": []}
  for r in range(rounds):
    order = ("ours", "optax") if r % 2 == 0 else ("optax", "ours")
    t = {k: time_step(steps[k], params, grads, states[k], iters, warmup=1) for k in order}
    for k in t:
      ms[k].append(t[k])
    ratios.append(t["ours"] / t["optax"])
  row = {
    "name": case.name,
    "ratio_median": statistics.median(ratios),
    "ratio_min": min(ratios),
    "ratio_max": max(ratios),
    "ms": statistics.median(ms["ours"]),
    "optax_ms": statistics.median(ms["optax"]),
  }
  if compile_leaves:
    c = {"ours": [], "optax": []}
    for r in range(compile_rounds):
      for k in ("ours", "optax") if r % 2 == 0 else ("optax", "ours"):
        c[k].append(compile_time(txs[k], case.extra, compile_leaves))
    row.update(compile_s=min(c["ours"]), optax_compile_s=min(c["optax"]))
    row["compile_ratio"] = row["compile_s"] / row["optax_compile_s"]
  return row


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  ap.add_argument("--only", action="append", default=[], help="exact case names")
  ap.add_argument("--rounds", type=int, default=11)
  ap.add_argument("--iters", type=int, default=5)
  ap.add_argument("--leaves", type=int, default=16)
  ap.add_argument("--params", type=int, default=4 << 20)
  ap.add_argument("--compile-leaves", type=int, default=0)
  ap.add_argument("--compile-rounds", type=int, default=3)
  ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
  args = ap.parse_args(argv)
  params, grads = make_tree(args.leaves, args.params)
  cases = [c for c in CASES if not args.only or c.name in args.only]
  rows = []
  for case in cases:
    row = paired(
      case, params, grads, args.rounds, args.iters, args.compile_leaves, args.compile_rounds
    )
    rows.append(row)
    comp = (
      f"  compile {row['compile_s']:.2f}s / {row['optax_compile_s']:.2f}s"
      f" = x{row['compile_ratio']:.2f}"
      if "compile_ratio" in row
      else ""
    )
    print(
      f"{case.name:28s} ratio {row['ratio_median']:.3f} [{row['ratio_min']:.2f}, "
      f"{row['ratio_max']:.2f}]  {row['ms']:.2f} ms / optax {row['optax_ms']:.2f} ms{comp}",
      flush=True,
    )
  if args.json:
    args.json.write_text(json.dumps({"jax": jax.__version__, "rows": rows}, indent=1))
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
