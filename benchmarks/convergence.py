"""Convergence benchmark (what the library is for): updates to reach a training loss on the digits MLP.

Every method of ``nnml-optax compare`` (same model, data, seed and budget), each at the best
learning rate of a small grid, against plain mini-batch SGD at its *best* learning rate from a grid; the ratio steps(method) / steps(best SGD) is what to read
(target <= 0.5 for rmsprop, Nesterov with Sutskever's schedule and local gains). Full-batch methods
are counted in updates too (each sees the whole training set, 11x a mini-batch of 100).

Usage::

    python benchmarks/convergence.py [--steps 1500] [--target 0.05] [--seed 0]

Writes ``benchmarks/results/convergence.{json,md}``.

Other settings (every option below is off by default, so that the plain command above still
reproduces ``benchmarks/results/convergence.md``):

* ``--inputs raw``: pixels only scaled to [0, 1] (not centred, not decorrelated: the lecture's
  ill-conditioned case), besides ``pca`` (default), ``standardize`` and ``center`` (centred but
  not scaled: pixel units 0-16).
* ``--hidden 100,100,100`` and ``--activation tanh|logistic``: a deeper fan-in initialised MLP
  (lecture 6b init, ``nn.init.fan_in()``, zero biases), trained by the same loop
  (``_compare.train_one``, whose model builder is swapped for the run).
* ``--sutskever-period P``, ``--sutskever-final-steps F``, ``--mu-max M``: the Nesterov row's
  schedule (default: P = steps // 20, F = steps // 10, M = 0.99, i.e. scaled to the run length;
  the paper uses P = 250 updates and F = 1000 at 0.9).
* ``--widen K``: when a method's (or SGD's) best learning rate sits at the edge of its grid, add
  the next grid point beyond that edge (same ~3x spacing) and retry, at most K times per side.
  Best rates still at an edge are flagged below the table whatever K is.
  The grids of every method, SGD included, are widened by the same rule.
* ``--methods a,b``: only these contestants beside SGD (file name suffix ``-only-a+b``).
* ``--tag NAME``: output file name suffix (default: built from the non-default options, e.g.
  ``-raw-h100x3-target0.0001-steps5000``).

Below the main table the markdown lists every grid point of every method (updates to the target
and final loss) and, for the full-batch methods, the ratio counted in training examples processed.
A deep net on raw inputs, the lecture's hard case (plateaus, ill-conditioning), is for example::

    python benchmarks/convergence.py --steps 5000 --inputs raw --hidden 100,100,100 \\
        --activation logistic --widen 2
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import json
import math
import shlex
import time
from pathlib import Path
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
import optax

import nnml_optax as nn
from nnml_optax import _compare  # the training loop behind `nnml-optax compare`

SGD_GRID = (0.3, 1.0, 3.0, 10.0, 30.0)

# Nesterov's momentum schedule; None = scaled to the run length (steps // 20, steps // 10).
SCHEDULE = {"period": None, "final_steps": None, "mu_max": 0.99}


def _sutskever(n: int):
  period = SCHEDULE["period"] or max(1, n // 20)
  final = n // 10 if SCHEDULE["final_steps"] is None else min(SCHEDULE["final_steps"], n)
  return nn.schedules.sutskever_momentum(
    SCHEDULE["mu_max"], period=period, total_steps=n, final_steps=final
  )


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
    lambda lr: lambda n, e: nn.nesterov(lr, _sutskever(n)),
  ),
  "local_gains": ((0.3, 1.0, 3.0, 10.0, 30.0), lambda lr: lambda n, e: nn.local_gains(lr)),
  "local_gains_momentum": (
    (0.03, 0.1, 0.3, 1.0, 3.0),
    lambda lr: lambda n, e: nn.local_gains(lr, momentum=0.9),
  ),
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

ACTIVATIONS = {"tanh": jnp.tanh, "logistic": jax.nn.sigmoid}


def mlp_factory(hidden: tuple[int, ...], activation: str):
  """A ``_compare.make_model`` look-alike for any number of fan-in initialised hidden layers."""
  act = ACTIVATIONS[activation]

  def make_model(seed: int, hidden_: int = 100, d_in: int = 64, classes: int = 10):
    from flax import nnx

    class MLP(nnx.Module):
      def __init__(self, rngs: nnx.Rngs):
        sizes = (d_in, *hidden)
        self.depth = len(hidden)
        for i, (a, b) in enumerate(itertools.pairwise(sizes)):
          setattr(self, f"hidden{i}", nnx.Linear(a, b, kernel_init=nn.init.fan_in(), rngs=rngs))
        self.out = nnx.Linear(sizes[-1], classes, kernel_init=nn.init.fan_in(), rngs=rngs)

      def __call__(self, x):
        for i in range(self.depth):
          x = act(getattr(self, f"hidden{i}")(x))
        return self.out(x)

    return MLP(nnx.Rngs(seed))

  return make_model


def load_data(seed: int, inputs: str):
  """``_compare.load_data``, plus ``raw``: the pixels divided by 16 (in [0, 1]), nothing else."""
  if inputs != "raw":
    return _compare.load_data(seed, inputs)
  parts = nn.data.load_digits(seed=seed)
  return tuple((np.asarray(x, np.float32) / 16.0, y) for x, y in parts)


def _finite(x: float) -> float:
  return x if math.isfinite(x) else math.inf


def _beyond(grid: list[float], side: int) -> float:
  """The next point past one end of a geometric-ish grid, keeping its spacing pattern."""
  if side > 0:
    v = grid[-1] * (grid[-2] / grid[-3] if len(grid) >= 3 else grid[-1] / grid[-2])
  else:
    v = grid[0] * (grid[1] / grid[2] if len(grid) >= 3 else grid[0] / grid[1])
  return float(f"{v:.3g}")


def sweep(train, grid, key, widen: int, label: str):
  """Runs ``train(lr)`` over ``grid``, widening it at the best end at most ``widen`` times per side.

  Returns (grid, {lr: result}, best lr, widened sides, still at edge).
  """
  grid = list(grid)
  res = {}
  for lr in grid:
    res[lr] = train(lr)
  added = {-1: 0, 1: 0}
  while True:
    best = min(grid, key=lambda lr: key(lr, res[lr]))
    side = -1 if best == grid[0] else 1 if best == grid[-1] else 0
    if len(grid) < 2 or side == 0 or added[side] >= widen:
      break
    lr = _beyond(grid, side)
    print(f"  {label}: best lr {best} at the edge; widening the grid to {lr}", flush=True)
    grid = [lr, *grid] if side < 0 else [*grid, lr]
    res[lr] = train(lr)
    added[side] += 1
  at_edge = len(grid) >= 2 and best in (grid[0], grid[-1])
  return grid, res, best, added, at_edge


def _sgd_key(lr, r):  # as before: fewest updates, then the smaller rate; unreached: lowest loss
  s = r["steps_to_target"]
  return (s is None, s or 0, lr if s is not None else _finite(r["final_train_loss"]))


def _method_key(lr, r):
  s = r["steps_to_target"]
  return (s is None, s or 0, _finite(r["final_train_loss"]))


def _suffix(args) -> str:
  if args.tag is not None:
    return f"-{args.tag}" if args.tag else ""
  parts = [] if args.inputs == "pca" else [args.inputs]
  if args.hidden != (100,):
    h = args.hidden
    parts.append(f"h{h[0]}x{len(h)}" if len(set(h)) == 1 else "h" + "-".join(map(str, h)))
  if args.activation != "tanh":
    parts.append(args.activation)
  if args.target != 0.002:
    parts.append(f"target{args.target:g}")
  if args.steps != 1500:
    parts.append(f"steps{args.steps}")
  if args.sutskever_period is not None:
    parts.append(f"period{args.sutskever_period}")
  if args.sutskever_final_steps is not None:
    parts.append(f"final{args.sutskever_final_steps}")
  if args.mu_max != 0.99:
    parts.append(f"mumax{args.mu_max:g}")
  if args.widen:
    parts.append(f"widen{args.widen}")
  if args.methods:
    parts.append("only-" + "+".join(args.methods))
  if args.seed != 0 and (parts or args.inputs != "pca"):
    parts.append(f"seed{args.seed}")
  return "".join(f"-{p}" for p in parts)


def _extra_flags(args) -> str:
  """The non-default new options, in the order of --help, for the command line in the table."""
  flags = []
  if args.eval_every != 5:
    flags += ["--eval-every", str(args.eval_every)]
  if args.hidden != (100,):
    flags += ["--hidden", ",".join(map(str, args.hidden))]
  if args.activation != "tanh":
    flags += ["--activation", args.activation]
  if args.sutskever_period is not None:
    flags += ["--sutskever-period", str(args.sutskever_period)]
  if args.sutskever_final_steps is not None:
    flags += ["--sutskever-final-steps", str(args.sutskever_final_steps)]
  if args.mu_max != 0.99:
    flags += ["--mu-max", str(args.mu_max)]
  if args.widen:
    flags += ["--widen", str(args.widen)]
  if args.methods:
    flags += ["--methods", ",".join(args.methods)]
  if args.tag is not None:
    flags += ["--tag", args.tag]
  return "".join(" " + shlex.quote(f) for f in flags)


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
    choices=["pca", "standardize", "center", "raw"],
    help="input preprocessing (lecture 6b); default pca, as nnml-optax compare; raw: pixels / 16",
  )
  ap.add_argument(
    "--hidden",
    type=lambda s: tuple(int(v) for v in s.split(",")),
    default=(100,),
    help="hidden layer sizes, comma separated (default 100: the model of nnml-optax compare)",
  )
  ap.add_argument("--activation", default="tanh", choices=sorted(ACTIVATIONS))
  ap.add_argument(
    "--sutskever-period", type=int, default=None, help="Nesterov schedule period (steps // 20)"
  )
  ap.add_argument(
    "--sutskever-final-steps",
    type=int,
    default=None,
    help="updates at momentum <= 0.9 at the end (steps // 10)",
  )
  ap.add_argument("--mu-max", type=float, default=0.99, help="Nesterov schedule cap (0.99)")
  ap.add_argument(
    "--widen", type=int, default=0, help="grid points to add past a best-at-the-edge rate (0)"
  )
  ap.add_argument(
    "--methods",
    type=lambda s: s.split(","),
    default=None,
    help="comma-separated contestants to run beside SGD (default: all of nnml-optax compare's)",
  )
  ap.add_argument("--tag", default=None, help="output name suffix (default: from the options)")
  ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
  args = ap.parse_args(argv)
  SCHEDULE.update(
    period=args.sutskever_period, final_steps=args.sutskever_final_steps, mu_max=args.mu_max
  )

  data = load_data(args.seed, args.inputs)
  run = dict(
    steps=args.steps, batch_size=100, seed=args.seed, target=args.target, eval_every=args.eval_every
  )
  # The default model is _compare.make_model itself; any other is swapped in for train_one.
  default_model = args.hidden == (100,) and args.activation == "tanh"
  model = (
    contextlib.nullcontext()
    if default_model
    else mock.patch.object(_compare, "make_model", mlp_factory(args.hidden, args.activation))
  )
  t_start = time.perf_counter()
  with model:
    rows, sgd = _run_all(args, data, run)
  wall = time.perf_counter() - t_start
  sgd_grid, sgd_res, sgd_best, _, sgd_edge = sgd
  best_lr = sgd_best if sgd_res[sgd_best]["steps_to_target"] is not None else None
  best_steps = None if best_lr is None else sgd_res[best_lr]["steps_to_target"]
  n_train = len(data[0][0])
  for r in rows:
    s = r["steps_to_target"]
    r["ratio_vs_best_sgd"] = None if s is None or best_steps is None else s / best_steps
    per_update = n_train / 100 if r["full_batch"] else 1.0
    r["ratio_in_examples"] = (
      None if r["ratio_vs_best_sgd"] is None else (r["ratio_vs_best_sgd"] * per_update)
    )
    ratio = r["ratio_vs_best_sgd"]
    print(f"{r['method']:17s} lr={r['lr']:<6g} steps to {args.target}: {s}  ratio {ratio}")

  arch = "-".join(map(str, (64, *args.hidden, 10)))
  act = "" if args.activation == "tanh" else f" {args.activation}"
  lines = [
    f"Measured {time.strftime('%Y-%m-%d')}: `python benchmarks/convergence.py --steps {args.steps} "
    f"--target {args.target} --seed {args.seed} --inputs {args.inputs}{_extra_flags(args)}`; "
    f"digits MLP {arch}{act} ({args.inputs} inputs), "
    f"mini-batch 100. Best SGD: lr={best_lr} in {best_steps} updates "
    f"(grid {', '.join(map(str, sgd_grid))}).",
    "",
    f"| method | best lr (grid) | updates to loss {args.target} | ratio vs best SGD | final loss |",
    "|---|---|---|---|---|",
  ]
  for lr in sgd_grid:
    r = sgd_res[lr]
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
  lines += _notes(args, rows, sgd, n_train, wall)
  md = "\n".join(lines) + "\n"
  args.out.mkdir(parents=True, exist_ok=True)
  suffix = _suffix(args)
  (args.out / f"convergence{suffix}.md").write_text(md)
  (args.out / f"convergence{suffix}.json").write_text(
    json.dumps(
      {
        "command": lines[0].split("`")[1],
        "best_sgd": {"lr": best_lr, "steps": best_steps, "at_grid_edge": sgd_edge},
        "sgd": [
          {
            "lr": lr,
            "steps_to_target": sgd_res[lr]["steps_to_target"],
            "final_train_loss": sgd_res[lr]["final_train_loss"],
          }
          for lr in sgd_grid
        ],
        "methods": rows,
        "wall_s": wall,
      },
      indent=1,
    )
  )
  print()
  print(md)
  return 0


def _run_all(args, data, run):
  def sgd_train(lr):
    m = dataclasses.replace(
      _compare.METHODS["sgd"], name=f"sgd(lr={lr})", make=lambda n, e, lr=lr: nn.sgd(lr)
    )
    r = _compare.train_one(m, data, **run)
    print(f"sgd lr={lr:<5g} steps to {args.target}: {r['steps_to_target']}", flush=True)
    return r

  sgd = sweep(sgd_train, SGD_GRID, _sgd_key, args.widen, "sgd")
  rows = []
  for name, method in _compare.METHODS.items():
    if name == "sgd" or (args.methods and name not in args.methods):
      continue
    grid, make = GRIDS[name]

    def train(lr, method=method, make=make, name=name):
      r = _compare.train_one(dataclasses.replace(method, make=make(lr)), data, **run)
      print(
        f"  {name} lr={lr:<6g} steps to {args.target}: {r['steps_to_target']}"
        f"  final loss {r['final_train_loss']:.3g}",
        flush=True,
      )
      return r

    grid, res, lr, added, at_edge = sweep(train, grid, _method_key, args.widen, name)
    r = res[lr]
    rows.append(
      {
        "method": name,
        "lr": lr,
        "grid": list(grid),
        "steps_to_target": r["steps_to_target"],
        "final_train_loss": r["final_train_loss"],
        "full_batch": method.full_batch,
        "at_grid_edge": at_edge,
        "widened": {"below": added[-1], "above": added[1]},
        "all": [
          {
            "lr": g,
            "steps_to_target": res[g]["steps_to_target"],
            "final_train_loss": res[g]["final_train_loss"],
          }
          for g in grid
        ],
      }
    )
  return rows, sgd


def _notes(args, rows, sgd, n_train, wall) -> list[str]:
  sgd_grid, sgd_res, sgd_best, sgd_added, sgd_edge = sgd
  out = [""]
  edges = [("sgd", sgd_best, sgd_grid)] if sgd_edge else []
  edges += [(r["method"], r["lr"], r["grid"]) for r in rows if r["at_grid_edge"]]
  widened = [("sgd", sgd_added)] if any(sgd_added.values()) else []
  widened += [(r["method"], {-1: r["widened"]["below"], 1: r["widened"]["above"]}) for r in rows]
  widened = [(n, a) for n, a in widened if any(a.values())]
  if widened:
    out.append(
      "Grids widened (best rate at an edge): "
      + "; ".join(f"{n} +{a[-1]} below, +{a[1]} above" for n, a in widened)
      + "."
    )
  if edges:
    out.append(
      "Best rate still at the edge of its grid (the optimum may lie outside): "
      + "; ".join(f"{n} lr={lr} in [{g[0]}, {g[-1]}]" for n, lr, g in edges)
      + "."
    )
  fb = [r for r in rows if r["full_batch"] and r["ratio_in_examples"] is not None]
  if fb:
    out.append(
      f"Full-batch updates process {n_train} examples ({n_train / 100:.1f} mini-batches); "
      "ratio counted in examples processed: "
      + ", ".join(f"{r['method']} {r['ratio_in_examples']:.2f}" for r in fb)
      + "."
    )
  out += [
    "",
    f"All grid points (updates to {args.target}, '-' = not reached in {args.steps}; final loss):",
    "",
    "- sgd: " + ", ".join(_point(lr, sgd_res[lr]) for lr in sgd_grid),
  ]
  out += [f"- {r['method']}: " + ", ".join(_point(p["lr"], p) for p in r["all"]) for r in rows]
  out += ["", f"Wall time {wall:.0f} s."]
  return out


def _point(lr, r) -> str:
  return f"{lr}: {r['steps_to_target'] or '-'} ({r['final_train_loss']:.2g})"


if __name__ == "__main__":
  raise SystemExit(main())
