"""What XLA compiles a step into: loops, copies, bytes moved and temporaries, per leaf / parameter.

Deterministic, unlike timings on a shared machine: for each case of ``cases.py`` it compiles the
jitted ``update`` + ``apply_updates`` step of ``paired.py`` (16 leaves, 4M float32 parameters by
default) and reads the optimized HLO of the entry computation:

* loops: fusions and copies over full-size arrays, per leaf (XLA:CPU emits one loop per output);
* copies: XLA's copies of a donated array (a loop reads an old state array and no data dependency
  orders it before the loop that overwrites it), per leaf;
* bytes: the sum over those loops of the arrays each reads and writes, per parameter (an operand
  that LLVM proves unused is still counted);
* temp: XLA's temporary memory for the whole step (``memory_analysis``).

``--against PATH`` (repeatable) adds other checkouts of the library, imported under other names.

Usage::

    python benchmarks/hlo_traffic.py vsgd local_gains --against /path/to/old/checkout
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from whole_step import case_factory, load_checkout

import cases
from step_time import make_step, make_tree

_ITEMSIZE = {"pred": 1, "s8": 1, "u8": 1, "bf16": 2, "f16": 2, "s32": 4, "u32": 4, "f32": 4}
_ITEMSIZE |= {"s64": 8, "u64": 8, "f64": 8, "c64": 8, "c128": 16}


def _nbytes(shape: str) -> int:
  m = re.match(r"(\w+)\[([\d,]*)\]", shape)
  if not m:
    return 0
  dims = [int(d) for d in m.group(2).split(",") if d]
  return _ITEMSIZE.get(m.group(1), 4) * int(np.prod(dims, dtype=np.int64))


def analyse(tx, extra, params, grads, min_bytes: int = 1024) -> dict:
  state = tx.init(params)
  compiled = make_step(tx, extra).lower(params, grads, state).compile()
  text = compiled.as_text()
  entry = text[text.index("ENTRY") :]
  shapes = {}
  for line in entry.splitlines():
    m = re.match(r"\s*(?:ROOT )?%(\S+) = (\S+)", line)
    if m:
      shapes[m.group(1)] = m.group(2)
  loops = copies = moved = 0
  for line in entry.splitlines():
    m = re.match(r"\s*%(\S+) = (\S+) (fusion|copy)\((.*?)\)", line)
    if not m or _nbytes(m.group(2)) < min_bytes:
      continue
    loops += 1
    copies += m.group(3) == "copy"
    operands = set(re.findall(r"%([\w.\-]+)", m.group(4)))
    moved += _nbytes(m.group(2)) + sum(_nbytes(shapes.get(o, "")) for o in operands)
  analysis = compiled.memory_analysis()
  temp = None if analysis is None else analysis.temp_size_in_bytes
  return {"loops": loops, "copies": copies, "bytes": moved, "temp_bytes": temp}


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  ap.add_argument("names", nargs="*", help="case names (cases.py); all when none")
  ap.add_argument("--against", action="append", default=[], help="other checkouts to compare")
  ap.add_argument("--leaves", type=int, default=16)
  ap.add_argument("--params", type=int, default=4 << 20)
  args = ap.parse_args(argv)
  params, grads = make_tree(args.leaves, args.params)
  n = sum(int(x.size) for x in jax.tree.leaves(params))
  libs = {
    path: load_checkout(path, f"nnml_optax_against{i}") for i, path in enumerate(args.against)
  }
  for case in cases.CASES:
    if args.names and case.name not in args.names:
      continue
    versions = {"ours": case.ours} | {p: case_factory(case, lib) for p, lib in libs.items()}
    versions["optax"] = case.theirs
    cells = []
    for label, make in versions.items():
      r = analyse(make(), case.extra, params, grads)
      temp = "?" if r["temp_bytes"] is None else f"{r['temp_bytes'] / 2**20:.0f} MiB"
      cells.append(
        f"{label}: {r['bytes'] / n:.0f} B/param, {r['loops'] / args.leaves:g} loops and "
        f"{r['copies'] / args.leaves:g} copies per leaf, temp {temp}"
      )
    print(f"{case.name}\n  " + "\n  ".join(cells), flush=True)
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
