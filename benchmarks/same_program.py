"""Whether two versions of the library compile the same step: XLA's optimized HLO, compared.

For every case of ``cases.py`` (or ``--only``), one jitted ``update`` + ``apply_updates`` on a
``--leaves``-leaf tree (7 shapes, as the compile-time benchmark) is compiled with this checkout's
``nnml_optax`` and with ``--against``'s; the optimized HLO modules are compared instruction by
instruction, with instruction names and source metadata left out. "same" means XLA runs the same
program: step time and memory cannot differ, only tracing and compile time can.

Usage::

    python benchmarks/same_program.py --against /path/to/other/checkout
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import optax

sys.path.insert(0, str(Path(__file__).resolve().parent))
from whole_step import case_factory, load_checkout

from cases import CASES


def program(tx, extra_fn, params) -> list[str]:
  """The optimized HLO of one step, instructions only, names and metadata stripped, sorted."""
  state = jax.eval_shape(tx.init, params)

  def step(params, grads, state):
    u, state = tx.update(grads, state, params, **extra_fn(params))
    return optax.apply_updates(params, u), state

  text = jax.jit(step).lower(params, params, state).compile().as_text()
  lines = [ln for ln in text.splitlines() if ln.startswith(("%", "  ", "ENTRY", "}"))]
  text = re.sub(r", metadata=\{[^}]*\}", "", "\n".join(lines))
  return sorted(ln.strip() for ln in re.sub(r"%[\w.\-]+", "%x", text).splitlines())


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  ap.add_argument("--against", required=True, help="the other checkout of the library")
  ap.add_argument("--only", action="append", default=[], help="exact case names")
  ap.add_argument("--leaves", type=int, default=60)
  args = ap.parse_args(argv)
  other = load_checkout(args.against)
  params = {f"l{i:05d}": jnp.zeros((4 + i % 7, 3), jnp.float32) for i in range(args.leaves)}
  differ = 0
  for case in CASES:
    if args.only and case.name not in args.only:
      continue
    a = program(case.ours(), case.extra, params)
    b = program(case_factory(case, other)(), case.extra, params)
    differ += a != b
    print(f"{case.name:28s} {'same' if a == b else 'DIFFERENT'} ({len(a)} / {len(b)} lines)")
  return 1 if differ else 0


if __name__ == "__main__":
  raise SystemExit(main())
