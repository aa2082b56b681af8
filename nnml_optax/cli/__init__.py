"""The ``nnml-optax`` command: the lecture's methods racing each other, and the lecture's demos.

::

    nnml-optax compare [--methods sgd,rmsprop,...] [--steps 1500] [--batch-size 100] [--seed 0]
                       [--out ./nnml-optax-results] [--no-plot] [--target-loss 0.01]
    nnml-optax demo {ravine,rprop-minibatch,whitening,momentum-schedule} [--out DIR] [--steps N]
    nnml-optax methods

Needs the ``examples`` extra (flax, scikit-learn, matplotlib, tqdm):
``pip install 'nnml-optax[examples]'``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

DEMOS = ("ravine", "rprop-minibatch", "whitening", "momentum-schedule")


def _number(name: str, kind: type, lo: float, *, strict: bool = False):
  """An argparse type: ``kind(text)`` that is >= ``lo`` (> ``lo`` when ``strict``), else a message
  naming the option and its range (argparse turns it into exit code 2)."""
  what = f"{'an integer' if kind is int else 'a number'} {'>' if strict else '>='} {lo:g}"

  def parse(text):
    try:
      value = kind(text)
    except ValueError:
      raise argparse.ArgumentTypeError(f"{name} must be {what}; got {text!r}") from None
    if value < lo or (strict and value == lo) or value != value:
      raise argparse.ArgumentTypeError(f"{name} must be {what}; got {value}")
    return value

  return parse


def _positive_int(name):
  return _number(name, int, 1)


_nonneg_int = _number("--seed", int, 0)
_positive_float = _number("--target-loss", float, 0, strict=True)


def _parser() -> argparse.ArgumentParser:
  from . import _compare

  methods_help = "\n".join(f"  {m.name:17s} {m.help}" for m in _compare.METHODS.values())
  ap = argparse.ArgumentParser(
    prog="nnml-optax",
    description="Hinton's lecture 6 methods as optax transforms: race them, see the demos.",
  )
  sub = ap.add_subparsers(dest="command", required=True)
  cmp = sub.add_parser(
    "compare",
    formatter_class=argparse.RawDescriptionHelpFormatter,
    help="train one Flax NNX MLP on the bundled digits with every method",
    description=(
      "Trains the same fan-in initialised tanh MLP (64-100-10) on scikit-learn's bundled 8x8\n"
      "digits (PCA-whitened, lecture 6b) once per method; prints a table, writes results.json\n"
      "and compare.png (training loss vs update, log scale, and validation accuracy).\n\n"
      f"methods (defaults):\n{methods_help}"
    ),
  )
  cmp.add_argument(
    "--methods",
    default=",".join(_compare.METHODS),
    help="comma-separated subset of the methods (default: all)",
  )
  cmp.add_argument(
    "--steps",
    type=_positive_int("--steps"),
    default=_compare.DEFAULT_STEPS,
    help=f"updates per method (default {_compare.DEFAULT_STEPS})",
  )
  cmp.add_argument(
    "--batch-size",
    type=_positive_int("--batch-size"),
    default=_compare.DEFAULT_BATCH,
    help=f"mini-batch size (default {_compare.DEFAULT_BATCH}; full-batch methods "
    "use the whole training set)",
  )
  cmp.add_argument(
    "--seed", type=_nonneg_int, default=0, help="seed (default 0): same seed, same numbers"
  )
  cmp.add_argument(
    "--out",
    type=Path,
    default=Path("nnml-optax-results"),
    help="output directory (default ./nnml-optax-results/)",
  )
  cmp.add_argument("--no-plot", action="store_true", help="do not write compare.png")
  cmp.add_argument(
    "--target-loss",
    type=_positive_float,
    default=_compare.DEFAULT_TARGET,
    help=f"training loss for 'steps to target' (default {_compare.DEFAULT_TARGET})",
  )
  cmp.add_argument(
    "--eval-every",
    type=_positive_int("--eval-every"),
    default=25,
    help="evaluate every N updates (default 25)",
  )
  cmp.add_argument("--quiet", action="store_true", help="no progress bars")

  demo = sub.add_parser("demo", help="one of the lecture's demonstrations (writes a PNG)")
  demo.add_argument("name", choices=DEMOS)
  demo.add_argument("--out", type=Path, default=Path("nnml-optax-results"))
  demo.add_argument(
    "--steps", type=_positive_int("--steps"), default=None, help="updates (default: the demo's own)"
  )
  demo.add_argument("--seed", type=_nonneg_int, default=0)

  sub.add_parser("methods", help="list the methods of 'compare' with their settings")
  return ap


def _check_out(ap: argparse.ArgumentParser, out: Path) -> None:
  try:
    out.mkdir(parents=True, exist_ok=True)
    probe = out / ".nnml-optax-write-test"
    probe.write_text("")
    probe.unlink()
  except OSError as e:
    ap.error(f"--out {str(out)!r} is not a writable directory: {e.strerror or e}")


def _compare_cmd(ap, args) -> int:
  from . import _compare

  names = [m.strip() for m in args.methods.split(",") if m.strip()]
  unknown = [m for m in names if m not in _compare.METHODS]
  if unknown or not names:
    ap.error(
      f"--methods: unknown method(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
      f"choose from {', '.join(_compare.METHODS)}"
    )
  _check_out(ap, args.out)
  try:
    from tqdm import tqdm
  except ImportError:  # pragma: no cover - tqdm is in the examples extra
    tqdm = None

  data = _compare.load_data(args.seed)
  results = []
  t0 = time.perf_counter()
  for name in names:
    method = _compare.METHODS[name]
    bar = None
    if tqdm is not None and not args.quiet:
      bar = tqdm(
        total=args.steps,
        desc=f"{name:17s}",
        unit="step",
        leave=True,
        file=sys.stderr,
        dynamic_ncols=True,
      )
    last = [0]

    def progress(t, bar=bar, last=last):
      if bar is not None:
        bar.update(t - last[0])
        last[0] = t

    r = _compare.train_one(
      method,
      data,
      steps=args.steps,
      batch_size=args.batch_size,
      seed=args.seed,
      target=args.target_loss,
      eval_every=args.eval_every,
      progress=progress,
    )
    if bar is not None:
      bar.close()
    results.append(r)
  total = time.perf_counter() - t0
  text = _compare.table(results, args.target_loss)
  print(text)
  print(
    f"\n{len(results)} methods, {args.steps} updates each, batch {args.batch_size}, "
    f"seed {args.seed}: {total:.1f} s"
  )
  meta = {
    "command": "nnml-optax compare " + " ".join(sys.argv[2:]),
    "steps": args.steps,
    "batch_size": args.batch_size,
    "seed": args.seed,
    "target_loss": args.target_loss,
    "dataset": "scikit-learn digits (8x8), PCA-whitened (99% variance), 60/20/20 split",
    "model": "Flax NNX MLP 64-100-10, tanh, fan-in initialisation",
  }
  (args.out / "results.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
  (args.out / "results.txt").write_text(text + "\n")
  print(f"wrote {args.out / 'results.json'}")
  if not args.no_plot:
    png = args.out / "compare.png"
    _compare.plot(
      results, png, f"nnml-optax compare: digits MLP, {args.steps} updates, batch {args.batch_size}"
    )
    print(f"wrote {png}")
  return 0


def main(argv: list[str] | None = None) -> int:
  """Entry point of the ``nnml-optax`` console script."""
  ap = _parser()
  args = ap.parse_args(argv)
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  if args.command == "methods":
    from . import _compare

    for m in _compare.METHODS.values():
      print(f"{m.name:17s} {m.help}")
    return 0
  if args.command == "compare":
    return _compare_cmd(ap, args)
  if args.command == "demo":
    from . import _demos

    _check_out(ap, args.out)
    return _demos.run(args.name, args.out, steps=args.steps, seed=args.seed)
  ap.error(f"unknown command {args.command!r}")  # pragma: no cover
  return 2


if __name__ == "__main__":
  raise SystemExit(main())
