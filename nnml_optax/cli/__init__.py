"""The ``nnml-optax`` command: the lecture's methods racing each other, and the lecture's demos.

::

    nnml-optax compare [--problem whitened|raw|both] [--data FILE.npz] [--methods sgd,rmsprop,...]
                       [--epochs E] [--batch-size 100] [--seeds 2] [--seed 0]
                       [--x epochs|updates|seconds] [--out DIR] [--no-plot]
    nnml-optax demo NAME [--out DIR] [--steps N] [--seed 0]
    nnml-optax methods
    nnml-optax --version

Needs the ``examples`` extra (flax, scikit-learn, matplotlib): ``pip install 'nnml-optax[examples]'``.
``python -m nnml_optax`` is the same command.

A demo is a function ``demo(out: Path, steps: int | None = None, seed: int = 0) -> dict`` that
prints its numbers and writes ``out / f"{name}.png"``; adding one is one line in ``DEMOS``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import importlib
import importlib.metadata
import inspect
import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# name -> "module:function". One line registers a demo (see the module docstring for the contract).
DEMOS: dict[str, str] = {
  "ravine": "nnml_optax.cli._demos:ravine",
  "rprop-minibatch": "nnml_optax.cli._demos:rprop_minibatch",
  "whitening": "nnml_optax.cli._demos:whitening",
  "momentum-schedule": "nnml_optax.cli._demos:momentum_schedule",
  "rnn": "nnml_optax.cli._rnn:demo",
  "full-batch": "nnml_optax.cli._full_batch:demo",
}

EXTRA = "pip install 'nnml-optax[examples]'"


def _number(name: str, kind: type, lo: float, *, strict: bool = False) -> Callable[[str], Any]:
  """An argparse type: ``kind(text)`` that is >= ``lo`` (> ``lo`` when ``strict``), else a message
  naming the option and its range (argparse turns it into exit code 2)."""
  what = f"{'an integer' if kind is int else 'a number'} {'>' if strict else '>='} {lo:g}"

  def parse(text: str):
    try:
      value = kind(text)
    except ValueError:
      raise argparse.ArgumentTypeError(f"{name} must be {what}; got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
      raise argparse.ArgumentTypeError(f"{name} must be {what} (finite); got {text!r}")
    if value < lo or (strict and value == lo):
      raise argparse.ArgumentTypeError(f"{name} must be {what}; got {value}")
    return value

  return parse


def _version() -> str:
  def v(dist: str) -> str:
    try:
      return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
      return "not installed"

  from nnml_optax import __version__

  return __version__ if v("nnml-optax") == "not installed" else v("nnml-optax")


def versions() -> dict[str, str]:
  """Versions of the libraries a result depends on (``"not installed"`` when absent)."""
  out = {"nnml_optax": _version()}
  for dist in ("jax", "jaxlib", "optax", "flax", "numpy"):
    try:
      out[dist] = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
      out[dist] = "not installed"
  return out


def _parser() -> argparse.ArgumentParser:
  from . import _compare

  methods_help = "\n".join(f"  {m.name:21s} {m.help}" for m in _compare.METHODS.values())
  ap = argparse.ArgumentParser(
    prog="nnml-optax",
    description="Hinton's lecture 6 methods as optax transforms: race them, see the demos.",
  )
  ap.add_argument("--version", action="version", version=f"nnml-optax {_version()}")
  sub = ap.add_subparsers(dest="command", required=True)
  budget = ", ".join(
    f"{p} {_compare.BUDGET[p][0]:g} epochs / loss {_compare.BUDGET[p][1]:g}"
    for p in (*_compare.PROBLEMS, "data")
  )
  cmp = sub.add_parser(
    "compare",
    formatter_class=argparse.RawDescriptionHelpFormatter,
    help="race the methods on one Flax NNX MLP, each tuned the same way (the main job)",
    description=(
      "Races every method on a fan-in initialised Flax NNX MLP, fairly: each method's learning\n"
      "rate (and plateau / driver setting) is chosen from a grid by the training loss over\n"
      "--seeds seeds (all grid points and seeds train as one vmapped run), and every method gets\n"
      "the same budget in examples seen (a full-batch update costs the whole training set).\n"
      "Problems: 'whitened' (digits, PCA-whitened, MLP 64-100-10 tanh) and 'raw' (the lecture's\n"
      "hard case: digits pixels / 16, deep logistic MLP 64-100-100-100-10), or your --data.\n"
      "Prints a table per problem and the lecture's summary-slide advice beside what was\n"
      "measured; writes results.json (after each method), results.txt and compare-PROBLEM.png.\n\n"
      f"budgets (default --epochs / target loss): {budget}\n\n"
      f"methods:\n{methods_help}"
    ),
  )
  cmp.add_argument(
    "--problem",
    choices=[*_compare.PROBLEMS, "both"],
    default=None,
    help="whitened, raw or both (default both; not with --data)",
  )
  cmp.add_argument(
    "--data",
    type=Path,
    default=None,
    metavar="FILE.npz",
    help="race on your data: arrays x (n, d), y (n,) int labels, optional x_val/y_val, "
    "x_test/y_test (read with allow_pickle=False); PCA-whitened, MLP d-100-classes",
  )
  cmp.add_argument(
    "--methods",
    default=",".join(_compare.METHODS),
    help="comma-separated subset of the methods (default: all)",
  )
  cmp.add_argument(
    "--epochs",
    type=_number("--epochs", float, 0, strict=True),
    default=None,
    help="budget in epochs (examples seen / training set size), the same for every method "
    "(default: the problem's, above)",
  )
  cmp.add_argument(
    "--target-loss",
    type=_number("--target-loss", float, 0, strict=True),
    default=None,
    help="training loss counted as reached (default: the problem's, above)",
  )
  cmp.add_argument(
    "--batch-size",
    type=_number("--batch-size", int, 1),
    default=_compare.DEFAULT_BATCH,
    help=f"mini-batch size (default {_compare.DEFAULT_BATCH}; full-batch methods use the whole "
    "training set)",
  )
  cmp.add_argument(
    "--seeds",
    type=_number("--seeds", int, 1),
    default=_compare.DEFAULT_SEEDS,
    help=f"seeds per grid point (default {_compare.DEFAULT_SEEDS}): initialisation and "
    "mini-batch order",
  )
  cmp.add_argument(
    "--seed",
    type=_number("--seed", int, 0),
    default=0,
    help="first seed and the data split (default 0): same seed, same numbers",
  )
  cmp.add_argument(
    "--x",
    choices=["epochs", "updates", "seconds"],
    default="epochs",
    help="x axis and 'to target' column: examples processed in epochs (default), updates, or "
    "seconds (updates x the measured time of one update)",
  )
  cmp.add_argument(
    "--out",
    type=Path,
    default=Path("nnml-optax-results"),
    help="output directory (default ./nnml-optax-results/)",
  )
  cmp.add_argument("--no-plot", action="store_true", help="do not write the figures")
  cmp.add_argument("--quiet", action="store_true", help="no progress lines")

  demo = sub.add_parser("demo", help="one of the lecture's demonstrations (writes a PNG)")
  demo.add_argument("name", choices=list(DEMOS))
  demo.add_argument("--out", type=Path, default=Path("nnml-optax-results"))
  demo.add_argument(
    "--steps", type=_number("--steps", int, 1), default=None, help="updates (default: the demo's)"
  )
  demo.add_argument("--seed", type=_number("--seed", int, 0), default=0)
  from . import _rnn

  _rnn.add_arguments(demo)  # the rnn demo's own options (--task, --T, --full, ...)

  sub.add_parser("methods", help="list the methods of 'compare' with their grids")
  return ap


def _require(ap: argparse.ArgumentParser, what: str, modules: Sequence[str]) -> None:
  """Exit 2 naming the extra to install when one of ``modules`` cannot be imported."""
  missing = []
  for m in modules:
    try:
      importlib.import_module(m)
    except ImportError:
      missing.append(m)
  if missing:
    ap.exit(
      2,
      f"nnml-optax {what} needs {', '.join(missing)}, from the 'examples' extra: {EXTRA}\n",
    )


def _check_out(ap: argparse.ArgumentParser, out: Path) -> None:
  try:
    out.mkdir(parents=True, exist_ok=True)
    probe = out / ".nnml-optax-write-test"
    probe.write_text("")
    probe.unlink()
  except OSError as e:
    ap.error(f"--out {str(out)!r} is not a writable directory: {e.strerror or e}")


def _write(path: Path, text: str) -> None:
  """Writes atomically (a temporary file renamed), so an interruption never leaves half a file."""
  tmp = path.with_name(path.name + ".tmp")
  tmp.write_text(text)
  os.replace(tmp, path)


def _problems(ap: argparse.ArgumentParser, args) -> list:
  from . import _compare

  if args.data is not None:
    if args.problem is not None:
      ap.error("--data and --problem exclude each other (--data races on your data only)")
    try:
      return [_compare.load_npz(args.data, args.seed)]
    except ValueError as e:
      ap.error(f"--data {str(args.data)!r}: {e}")
  names = _compare.PROBLEMS if args.problem in (None, "both") else (args.problem,)
  return [_compare.load_problem(n, args.seed) for n in names]


def _compare_cmd(ap: argparse.ArgumentParser, args, argv: Sequence[str]) -> int:
  import dataclasses

  names = [m.strip() for m in args.methods.split(",") if m.strip()]
  from . import _compare, _tune

  unknown = [m for m in names if m not in _compare.METHODS]
  if unknown or not names:
    ap.error(
      f"--methods: unknown method(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
      f"choose from {', '.join(_compare.METHODS)}"
    )
  if len(set(names)) != len(names):
    ap.error(f"--methods names a method twice: {args.methods!r}")
  _require(
    ap,
    "compare",
    ["flax"] + ([] if args.no_plot else ["matplotlib"]) + ([] if args.data else ["sklearn"]),
  )
  _check_out(ap, args.out)
  problems = _problems(ap, args)
  if args.target_loss is not None:
    problems = [dataclasses.replace(p, target=args.target_loss) for p in problems]
  epochs = {p.name: args.epochs or _compare.BUDGET[p.name][0] for p in problems}
  for p in problems:  # every argument against the data, before any training
    if args.batch_size > p.n_train:
      ap.error(
        f"--batch-size {args.batch_size} is larger than the training set of '{p.name}' "
        f"({p.n_train} examples)"
      )
    if any(not _compare.METHODS[m].full_batch for m in names):
      if epochs[p.name] * p.n_train < args.batch_size:
        ap.error(
          f"--epochs {epochs[p.name]:g} is {epochs[p.name] * p.n_train:.0f} examples of "
          f"'{p.name}', less than one mini-batch of {args.batch_size}"
        )
  seeds = list(range(args.seed, args.seed + args.seeds))

  import jax

  dev = jax.devices()[0]
  meta = {
    "command": "nnml-optax " + " ".join(shlex.quote(a) for a in argv),
    "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    "versions": versions(),
    "device": {"platform": dev.platform, "kind": dev.device_kind, "count": jax.device_count()},
    "cpu_count": os.cpu_count(),
    "batch_size": args.batch_size,
    "seeds": seeds,
    "x": args.x,
    "tuning": "per method, the grid point whose seeds all reach the target in the fewest updates "
    "(else the lowest mean log final training loss); curves are that point's runs",
    "problems": {
      p.name: {
        "title": p.title,
        "model": f"Flax NNX MLP {p.architecture}, fan-in initialisation",
        "n_train": p.n_train,
        "epochs": epochs[p.name],
        "target_loss": p.target,
      }
      for p in problems
    },
  }
  results: dict[str, list] = {p.name: [] for p in problems}
  texts: list[str] = []

  def save(wall: float | None = None) -> None:
    if wall is not None:
      meta["wall_s"] = wall
    _write(args.out / "results.json", json.dumps({"meta": meta, "results": results}, indent=1))

  def say(msg: str) -> None:
    if not args.quiet:
      print(msg, file=sys.stderr, flush=True)

  t0 = time.perf_counter()
  jobs = [(p, _compare.METHODS[m]) for p in problems for m in names]
  pool = concurrent.futures.ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1))
  try:
    # Tracing and compiling run ahead in worker threads; training runs here, in order.
    futures = [
      pool.submit(
        _tune.prepare, m, p, epochs=epochs[p.name], batch_size=args.batch_size, seeds=seeds
      )
      for p, m in jobs
    ]
    for (p, m), fut in zip(jobs, futures, strict=True):
      r = fut.result()()
      row = _compare.summarize(m, p, r)
      if args.x == "seconds":
        row["seconds_per_update"] = _tune.seconds_per_update(
          m, p, row["hypers"], batch_size=args.batch_size, seed=args.seed
        )
      results[p.name].append(row)
      save()
      say(
        f"{p.name:8s} {m.name:21s} {len(r['points'])} grid points x {len(seeds)} seeds, "
        f"{r['updates']} updates each: compiled {r['seconds_compile']:.1f} s, "
        f"trained {r['seconds_train']:.1f} s -> {_compare._hypers(row['hypers'])}"
      )
      if m.name == names[-1]:
        text = _compare.table(results[p.name], p, args.x)
        print(text + "\n", flush=True)
        texts.append(text)
        if not args.no_plot:
          png = args.out / f"compare-{p.name}.png"
          _compare.plot(
            results[p.name],
            p,
            args.x,
            png,
            f"nnml-optax compare: {p.title}; {epochs[p.name]:g} epochs, batch {args.batch_size}, "
            f"{len(seeds)} seeds",
          )
          say(f"wrote {png}")
  except KeyboardInterrupt:
    pool.shutdown(wait=False, cancel_futures=True)
    save(time.perf_counter() - t0)
    print(f"interrupted: the methods that finished are in {args.out / 'results.json'}")
    return 130
  pool.shutdown()
  wall = time.perf_counter() - t0
  advice = _compare.advice(problems, results)
  print(advice)
  n = sum(len(v) for v in results.values())
  print(f"\n{n} races ({len(seeds)} seeds each, tuning included) in {wall:.0f} s")
  save(wall)
  _write(args.out / "results.txt", "\n\n".join([*texts, advice]) + "\n")
  print(f"wrote {args.out / 'results.json'} and results.txt")
  return 0


def _demo_cmd(ap: argparse.ArgumentParser, args) -> int:
  _require(ap, f"demo {args.name}", ["flax", "matplotlib", "sklearn"])
  _check_out(ap, args.out)
  module, _, fn = DEMOS[args.name].partition(":")
  demo = getattr(importlib.import_module(module), fn)
  takes_args = "args" in inspect.signature(demo).parameters  # a demo with options of its own
  demo(args.out, steps=args.steps, seed=args.seed, **({"args": args} if takes_args else {}))
  print(f"wrote {args.out / (args.name + '.png')}")
  return 0


def main(argv: Sequence[str] | None = None) -> int:
  """Entry point of the ``nnml-optax`` console script (and of ``python -m nnml_optax``)."""
  argv = list(sys.argv[1:] if argv is None else argv)
  ap = _parser()
  args = ap.parse_args(argv)
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  if args.command == "methods":
    from . import _compare

    for m in _compare.METHODS.values():
      grid = " x ".join(f"{k} in {list(v)}" for k, v in m.grid.items())
      print(f"{m.name:21s} {m.help}\n{'':21s} grid: {grid}")
    return 0
  if args.command == "compare":
    return _compare_cmd(ap, args, argv)
  if args.command == "demo":
    return _demo_cmd(ap, args)
  ap.error(f"unknown command {args.command!r}")  # pragma: no cover
  return 2


if __name__ == "__main__":
  raise SystemExit(main())
