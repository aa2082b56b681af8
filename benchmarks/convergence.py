"""Convergence benchmark (what the library is for): updates to reach a training loss on the digits MLP.

Every method of ``nnml-optax compare`` (same model, data, seed and budget), each at the best
learning rate of a small grid, against plain mini-batch SGD at its *best* learning rate from a grid; the ratio steps(method) / steps(best SGD) is what to read
(target <= 0.5 for rmsprop, Nesterov with Sutskever's schedule and local gains). Full-batch methods
are counted in updates too (each sees the whole training set, 11x a mini-batch of 100).

Usage::

    python benchmarks/convergence.py [--steps 1500] [--target 0.05] [--seed 0]

Writes ``benchmarks/results/convergence.{json,md}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import optax

import nnml_optax as nn
from nnml_optax import _compare  # the training loop behind `nnml-optax compare`

SGD_GRID = (0.3, 1.0, 3.0, 10.0, 30.0)

# Each method at the best learning rate of its own grid (as SGD): name -> (grid, lr -> factory).
GRIDS = {
  "momentum": (
    (0.1, 0.3, 1.0, 3.0, 10.0),
    lambda lr: (
      lambda n, e: nn.momentum(
        lr, nn.schedules.momentum_ramp(0.5, 0.9, transition_steps=max(1, n // 5))
      )
    ),
  ),
  "nesterov": (
    (0.1, 0.3, 1.0, 3.0, 10.0),
    lambda lr: (
      lambda n, e: nn.nesterov(
        lr,
        nn.schedules.sutskever_momentum(
          0.99, period=max(1, n // 20), total_steps=n, final_steps=n // 10
        ),
      )
    ),
  ),
  "local_gains": ((0.3, 1.0, 3.0, 10.0, 30.0), lambda lr: lambda n, e: nn.local_gains(lr)),
  "irprop-": ((0.003, 0.01, 0.03, 0.1, 0.3), lambda lr: lambda n, e: nn.rprop(lr)),
  "rmsprop": ((0.001, 0.003, 0.01, 0.03, 0.1), lambda lr: lambda n, e: nn.rmsprop(lr)),
  "rmsprop_nesterov": (
    (0.0003, 0.001, 0.003, 0.01, 0.03),
    lambda lr: lambda n, e: nn.rmsprop(lr, momentum=0.9, nesterov=True),
  ),
  "vsgd": ((1.0,), lambda lr: lambda n, e: nn.vsgd(lr)),  # no learning rate to tune
  "bold_driver": (
    (0.5, 2.0, 8.0),
    lambda lr: lambda n, e: optax.chain(nn.sgd(lr), nn.bold_driver()),
  ),
  "plateau": (
    (0.3, 1.0, 3.0, 10.0, 30.0),
    lambda lr: lambda n, e: optax.chain(nn.sgd(lr), nn.reduce_on_plateau(0.5, patience=2)),
  ),
}


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  ap.add_argument("--steps", type=int, default=1500)
  ap.add_argument("--target", type=float, default=0.002)
  ap.add_argument("--seed", type=int, default=0)
  ap.add_argument("--eval-every", type=int, default=5)
  ap.add_argument(
    "--inputs",
    default="pca",
    choices=["pca", "standardize", "center"],
    help="input preprocessing (lecture 6b); default pca, as nnml-optax compare",
  )
  ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
  args = ap.parse_args(argv)

  data = _compare.load_data(args.seed, args.inputs)
  run = dict(
    steps=args.steps, batch_size=100, seed=args.seed, target=args.target, eval_every=args.eval_every
  )
  sgd_rows = []
  for lr in SGD_GRID:
    m = dataclasses.replace(
      _compare.METHODS["sgd"], name=f"sgd(lr={lr})", make=lambda n, e, lr=lr: nn.sgd(lr)
    )
    r = _compare.train_one(m, data, **run)
    sgd_rows.append((lr, r))
    print(f"sgd lr={lr:<5g} steps to {args.target}: {r['steps_to_target']}", flush=True)
  reached = [(r["steps_to_target"], lr) for lr, r in sgd_rows if r["steps_to_target"] is not None]
  best_steps, best_lr = min(reached) if reached else (None, None)
  rows = []
  for name, method in _compare.METHODS.items():
    if name == "sgd":
      continue
    grid, make = GRIDS[name]
    best = None
    for lr in grid:
      m = dataclasses.replace(method, make=make(lr))
      r = _compare.train_one(m, data, **run)
      key = (r["steps_to_target"] is None, r["steps_to_target"] or 0, r["final_train_loss"])
      if best is None or key < best[0]:
        best = (key, lr, r)
    _, lr, r = best
    s = r["steps_to_target"]
    ratio = None if s is None or best_steps is None else s / best_steps
    rows.append(
      {
        "method": name,
        "lr": lr,
        "grid": list(grid),
        "steps_to_target": s,
        "ratio_vs_best_sgd": ratio,
        "final_train_loss": r["final_train_loss"],
        "full_batch": method.full_batch,
      }
    )
    print(f"{name:17s} lr={lr:<6g} steps to {args.target}: {s}  ratio {ratio}", flush=True)

  lines = [
    f"Measured {time.strftime('%Y-%m-%d')}: `python benchmarks/convergence.py --steps {args.steps} "
    f"--target {args.target} --seed {args.seed} --inputs {args.inputs}`; digits MLP 64-100-10 ({args.inputs} inputs), "
    f"mini-batch 100. Best SGD: lr={best_lr} in {best_steps} updates "
    f"(grid {', '.join(map(str, SGD_GRID))}).",
    "",
    f"| method | best lr (grid) | updates to loss {args.target} | ratio vs best SGD | final loss |",
    "|---|---|---|---|---|",
  ]
  for lr, r in sgd_rows:
    lines.append(
      f"| sgd | {lr} | {r['steps_to_target'] or '-'} | "
      f"{'' if r['steps_to_target'] is None or not best_steps else format(r['steps_to_target'] / best_steps, '.2f')}"
      f" | {r['final_train_loss']:.4f} |"
    )
  for r in rows:
    ratio = "-" if r["ratio_vs_best_sgd"] is None else f"{r['ratio_vs_best_sgd']:.2f}"
    fb = " (full batch)" if r["full_batch"] else ""
    grid = ", ".join(map(str, r["grid"]))
    lines.append(
      f"| {r['method']}{fb} | {r['lr']} ({grid}) | {r['steps_to_target'] or '-'} | {ratio} | "
      f"{r['final_train_loss']:.4f} |"
    )
  md = "\n".join(lines) + "\n"
  args.out.mkdir(parents=True, exist_ok=True)
  suffix = "" if args.inputs == "pca" else f"-{args.inputs}"
  (args.out / f"convergence{suffix}.md").write_text(md)
  (args.out / f"convergence{suffix}.json").write_text(
    json.dumps(
      {
        "best_sgd": {"lr": best_lr, "steps": best_steps},
        "sgd": [{"lr": lr, "steps_to_target": r["steps_to_target"]} for lr, r in sgd_rows],
        "methods": rows,
      },
      indent=1,
    )
  )
  print()
  print(md)
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
