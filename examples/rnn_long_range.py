"""Recurrent nets on the long-range problems with Nesterov momentum (Sutskever et al. 2013, s. 4).

A 100-unit tanh RNN (Flax NNX, scanned over time) with Table 4's initialization -- input weights
0.001 N(0, 1) (0.1 for memorization), recurrent weights ``nnml_optax.init.echo_state(1.1, 15)``,
output weights 0.1 N(0, 1), output bias the mean target -- trained on mini-batches of 100 by
``nnml_optax.nesterov`` / ``nnml_optax.momentum`` with mu = 0.9 for 1,000 updates, then mu_0.
Every (configuration, learning rate, seed) is a lane of one ``jax.vmap``-ed, jitted run.

Run::

    python examples/rnn_long_range.py                      # reduced: T=20, 3,000 updates
    python examples/rnn_long_range.py --full --workdir ckpt   # Table 5's addition T=80 setting
    python examples/rnn_long_range.py --full --workdir ckpt  # again: resumes from the checkpoint

``--full`` is 50,000 updates of 4 seeds x 2 rates x 7 configurations; ``--workdir`` keeps an
orbax checkpoint every 500 updates, so an interrupted run continues where it stopped. Results
(table, curves, JSON) go to ``--out``. See docs/rnn.md for the measured numbers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nnml_optax.cli import _rnn as rnn


def main(
  steps: int | None = None,
  seed: int = 0,
  *,
  full: bool = False,
  task: str = "addition",
  T: int | None = None,
  configs: str | None = None,
  lrs: str | None = None,
  seeds: int | None = None,
  out: str = "rnn-results",
  workdir: str | None = None,
  chunk: int | None = None,
  quiet: bool = False,
) -> dict:
  """Trains the grid and writes ``rnn.{json,png}`` and ``progress.json`` under ``out``."""
  out_dir = Path(out)
  out_dir.mkdir(parents=True, exist_ok=True)
  result = rnn.run_demo(
    out_dir,
    full=full,
    seed=seed,
    task=task,
    T=T,
    updates=steps,
    configs=configs,
    lrs=lrs,
    seeds=seeds,
    checkpoint_dir=None if workdir is None else Path(workdir),
    quiet=quiet,
    chunk=chunk,
    progress_path=out_dir / "progress.json",
  )
  return result


if __name__ == "__main__":
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  rnn.add_arguments(ap)
  ap.add_argument("--steps", type=int, default=None, help="updates (demo 3,000; --full 50,000)")
  ap.add_argument("--seed", type=int, default=0, help="first seed")
  ap.add_argument("--out", default="rnn-results", help="folder for the table, PNG and JSON")
  ap.add_argument("--chunk", type=int, default=None, help="updates between checkpoints (500)")
  a = ap.parse_args()
  r = main(
    a.steps,
    a.seed,
    full=a.full,
    task=a.task,
    T=a.T,
    configs=a.configs,
    lrs=a.lrs,
    seeds=a.seeds,
    out=a.out,
    workdir=a.workdir,
    chunk=a.chunk,
  )
  print(json.dumps(r["table"], indent=1))
