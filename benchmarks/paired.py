"""Step time and compile time of nnml_optax transforms against optax, in paired alternating rounds.

On a shared machine single timings of identical kernels differ by up to 20 %, so each round times
ours and optax's back to back (ours, optax, ours, optax, ...: the order flips every round), and the
ratio is taken per round; the median ratio and its spread (min-max over rounds) are reported.

* step: a jitted ``update`` + ``apply_updates`` with donated buffers on ``--leaves`` leaves,
  ``--params`` float32 parameters (default 16 leaves, 4M parameters, as ``step_time.py --quick``);
* compile: ``jit(...).lower(...).compile()`` of the same step on a ``--compile-leaves``-leaf tree
  (default 1000 leaves of 7 shapes; 0 skips), alternating ours/optax, ``--compile-rounds`` times.

Run it on two versions of the library (``PYTHONPATH=<checkout>``) to compare them: both report
ratios to the same optax. Or, under the same load, ``--against <checkout>``: that checkout's
``nnml_optax`` joins the rounds as a third version ("against"; ours/against per round), and the
compile rounds then alternate ours and against (the compile budget is relative to before).

Usage::

    python benchmarks/paired.py --only rmsprop --rounds 15
    python benchmarks/paired.py --only vsgd --against /path/to/old/checkout --compile-leaves 1000
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import jax

sys.path.insert(0, str(Path(__file__).resolve().parent))
from whole_step import case_factory, load_checkout

from cases import CASES
from step_time import (
  add_clock_argument,
  clock_of,
  compile_time,
  make_step,
  make_tree,
  time_step,
)


def paired(
  case,
  params,
  grads,
  rounds: int,
  iters: int,
  compile_leaves: int,
  compile_rounds: int,
  against=None,
  clock=time.perf_counter,
):
  txs = {"ours": case.ours(), "optax": case.theirs()}
  if against is not None:
    txs["against"] = case_factory(case, against)()
  steps = {k: make_step(tx, case.extra) for k, tx in txs.items()}
  states = {k: tx.init(params) for k, tx in txs.items()}
  ms: dict[str, list[float]] = {k: [] for k in txs}
  for r in range(rounds):
    for k in list(txs) if r % 2 == 0 else list(txs)[::-1]:
      ms[k].append(time_step(steps[k], params, grads, states[k], iters, warmup=1, clock=clock))
  row: dict = {"name": case.name}
  if rounds:
    ratios = [a / b for a, b in zip(ms["ours"], ms["optax"], strict=True)]
    row.update(
      ratio_median=statistics.median(ratios),
      ratio_min=min(ratios),
      ratio_max=max(ratios),
      ms=statistics.median(ms["ours"]),
      optax_ms=statistics.median(ms["optax"]),
    )
  if against is not None and rounds:
    for key, num, den in (("against", "against", "optax"), ("ours_against", "ours", "against")):
      r_ = [a / b for a, b in zip(ms[num], ms[den], strict=True)]
      row.update({f"{key}_median": statistics.median(r_), f"{key}_min": min(r_)})
      row[f"{key}_max"] = max(r_)
    row["against_ms"] = statistics.median(ms["against"])
  if compile_leaves:  # with --against: ours vs against only (the compile budget is vs before)
    labels = ("ours", "against") if against is not None else ("ours", "optax")
    c: dict[str, list[float]] = {k: [] for k in labels}
    for r in range(compile_rounds):
      for k in labels if r % 2 == 0 else labels[::-1]:
        c[k].append(compile_time(txs[k], case.extra, compile_leaves, clock))
    row.update(compile_s=min(c["ours"]), compile_all_s=c["ours"])
    other = labels[1]
    row[f"{other}_compile_s"] = min(c[other])
    row[f"{other}_compile_all_s"] = c[other]
    row["compile_ratio"] = row["compile_s"] / row[f"{other}_compile_s"]
  return row


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  ap.add_argument("--only", action="append", default=[], help="exact case names")
  ap.add_argument("--rounds", type=int, default=11, help="step-time rounds (0: compile time only)")
  ap.add_argument("--iters", type=int, default=5)
  ap.add_argument("--leaves", type=int, default=16)
  ap.add_argument("--params", type=int, default=4 << 20)
  ap.add_argument("--compile-leaves", type=int, default=0)
  ap.add_argument("--compile-rounds", type=int, default=3)
  ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
  ap.add_argument("--against", default=None, help="another checkout of the library to compare")
  add_clock_argument(ap)
  args = ap.parse_args(argv)
  clock = clock_of(args.clock)
  against = load_checkout(args.against) if args.against else None
  params, grads = make_tree(args.leaves, args.params)
  cases = [c for c in CASES if not args.only or c.name in args.only]
  rows = []
  for case in cases:
    row = paired(
      case,
      params,
      grads,
      args.rounds,
      args.iters,
      args.compile_leaves,
      args.compile_rounds,
      against,
      clock,
    )
    rows.append(row)
    other = "against" if against is not None else "optax"
    comp = (
      f"  compile {row['compile_s']:.2f}s / {other} {row[f'{other}_compile_s']:.2f}s"
      f" = x{row['compile_ratio']:.2f}"
      if "compile_ratio" in row
      else ""
    )
    vs = (
      f"  against/optax {row['against_median']:.3f}  ours/against {row['ours_against_median']:.3f}"
      f" [{row['ours_against_min']:.2f}, {row['ours_against_max']:.2f}]"
      if against is not None and args.rounds
      else ""
    )
    step = (
      f" ratio {row['ratio_median']:.3f} [{row['ratio_min']:.2f}, "
      f"{row['ratio_max']:.2f}]  {row['ms']:.2f} ms / optax {row['optax_ms']:.2f} ms"
      if args.rounds
      else ""
    )
    print(f"{case.name:28s}{step}{vs}{comp}", flush=True)
  if args.json:
    args.json.write_text(json.dumps({"jax": jax.__version__, "rows": rows}, indent=1))
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
