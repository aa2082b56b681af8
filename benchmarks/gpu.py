"""One prepared GPU check (H100/H200, under 5 minutes): step time vs optax and achieved bandwidth.

For a 100M-parameter float32 tree (16 leaves of 6.25M), each case of ``benchmarks/cases.py`` is
compiled and timed (jitted update + apply, donated buffers) beside its optax peer, alternating the
two in ``--reps`` rounds of ``--iters`` back-to-back steps (one device sync per round, so host
dispatch overlaps the kernels as in a training loop; the best round's mean counts). Its achieved
bandwidth is the bytes the ideal fused kernel moves (params read and written, gradient read, state
read and written) over that time, as a fraction of the device-to-device copy bandwidth measured the
same way in the same run (target >= 0.8). ``--leaves-compile N`` adds ``scale.py``'s many-leaves
comparison (compile and step time of ``fuse_leaves`` vs ``optax.rmsprop(momentum=0.9)``) on the
device for an ``N``-leaf tree.

Usage on the device machine (the package on ``PYTHONPATH``, nothing installed)::

    PYTHONPATH=. python benchmarks/gpu.py --out $OUT

Writes ``gpu.json`` and ``gpu.md`` to ``--out`` (default ``benchmarks/results``), rewriting both
after every case so that a run cut short still leaves its rows.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import optax

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cases import CASES
from step_time import make_step, state_bytes


def _rounds(fn, carry, iters: int, reps: int):
  """Best mean seconds per call of ``carry = fn(carry)`` over ``reps`` rounds of ``iters`` calls."""
  for _ in range(3):
    carry = fn(carry)
  jax.block_until_ready(carry)
  best = math.inf
  for _ in range(reps):
    t0 = time.perf_counter()
    for _ in range(iters):
      carry = fn(carry)
    jax.block_until_ready(carry)
    best = min(best, (time.perf_counter() - t0) / iters)
  return best, carry


def copy_bandwidth(n_leaf: int, leaves: int, iters: int, reps: int) -> float:
  """Bytes read + written per second by a jitted elementwise copy of the same tree shape."""
  xs = [jnp.ones(n_leaf, jnp.float32) for _ in range(leaves)]
  copy = jax.jit(lambda xs: [x + 1.0 for x in xs], donate_argnums=0)
  t, xs = _rounds(copy, xs, iters, reps)
  del xs
  return 2 * 4 * n_leaf * leaves / t


def _write(out: Path, meta: dict, rows: list, scale_rows: list) -> None:
  out.mkdir(parents=True, exist_ok=True)
  (out / "gpu.json").write_text(
    json.dumps({"meta": meta, "rows": rows, "many_leaves": scale_rows}, indent=1)
  )
  lines = [
    f"{meta['date']}, {meta['device']}, jax {meta['jax']}, optax {meta['optax']}, "
    f"{meta['params'] / 1e6:.0f}M float32 params in {meta['leaves']} leaves; device-to-device copy "
    f"{meta['copy_bandwidth_GBps']:.0f} GB/s (read + write). Command: `{meta['command']}`",
    "",
    "| transform | optax peer | ms | optax ms | ratio | bandwidth / copy | optax bandwidth / copy "
    "| state B/param | compile s | optax compile s |",
    "|---|---|---|---|---|---|---|---|---|---|",
  ]
  for r in rows:
    if "skipped" in r:
      lines.append(f"| {r['name']} | skipped: {r['skipped']} | | | | | | | | |")
      continue
    lines.append(
      f"| {r['name']} | {r['peer']} | {r['ours_ms']:.3f} | {r['optax_ms']:.3f} | {r['ratio']:.2f} | "
      f"{r['ours_bw_fraction']:.2f} | {r['optax_bw_fraction']:.2f} | "
      f"{r['ours_state_bytes_per_param']:.2f} | {r['ours_compile_s']:.2f} | "
      f"{r['optax_compile_s']:.2f} |"
    )
  if scale_rows:
    lines += ["", "Many small leaves (`scale.py` on the device):", ""]
    lines += ["| leaves | transform | compile s | step ms |", "|---|---|---|---|"]
    lines += [
      f"| {r['leaves']} | {r['transform']} | {r['compile_s']:.2f} | {r['ms']:.3f} |"
      for r in scale_rows
    ]
  (out / "gpu.md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  ap.add_argument("--params", type=int, default=100_000_000)
  ap.add_argument("--leaves", type=int, default=16)
  ap.add_argument("--iters", type=int, default=20, help="steps per timed round")
  ap.add_argument("--reps", type=int, default=5, help="timed rounds per transform")
  ap.add_argument("--only", nargs="*", default=None, help="case names to run (default: all)")
  ap.add_argument("--leaves-compile", type=int, default=0, help="also run scale.py for N leaves")
  ap.add_argument("--hlo", type=Path, default=None, help="append every compiled step's HLO here")
  ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
  args = ap.parse_args(argv)
  per = args.params // args.leaves
  n = per * args.leaves
  keys = jax.random.split(jax.random.key(0), args.leaves)
  params = {f"l{i:02d}": jax.random.normal(k, (per,), jnp.float32) for i, k in enumerate(keys)}
  grads = jax.tree.map(lambda p: 1e-3 * p, params)
  bw = copy_bandwidth(per, args.leaves, args.iters, args.reps)
  meta = {
    "date": time.strftime("%Y-%m-%d"),
    "device": str(jax.devices()[0].device_kind),
    "jax": jax.__version__,
    "optax": optax.__version__,
    "params": n,
    "leaves": args.leaves,
    "iters": args.iters,
    "reps": args.reps,
    "copy_bandwidth_GBps": bw / 1e9,
    "command": "python benchmarks/gpu.py " + " ".join(sys.argv[1:] if argv is None else argv),
  }
  print(f"device {meta['device']}; copy bandwidth {bw / 1e9:.0f} GB/s", flush=True)
  rows: list = []
  scale_rows: list = []
  for case in CASES:
    if args.only and case.name not in args.only:
      continue
    try:
      pair = (("ours", case.ours()), ("optax", case.theirs()))
    except (AttributeError, ImportError) as e:
      rows.append({"name": case.name, "skipped": str(e)})
      continue
    row = {"name": case.name, "peer": case.peer}
    for label, tx in pair:
      state = tx.init(params)
      p = jax.tree.map(jnp.copy, params)
      t0 = time.perf_counter()
      step = make_step(tx, case.extra).lower(p, grads, state).compile()
      row[f"{label}_compile_s"] = time.perf_counter() - t0
      if args.hlo:
        with args.hlo.open("a") as f:
          f.write(f"\n\n######## {case.name} / {label}\n{step.as_text()}")
      sb = state_bytes(state)
      t, carry = _rounds(
        lambda c, step=step, g=grads: step(c[0], g, c[1]), (p, state), args.iters, 1
      )
      row[f"{label}_state_bytes_per_param"] = sb / n
      row[f"_{label}"] = (step, carry, sb)
      del state, p
    # alternate the two in rounds, so drift of clocks or temperature hits both alike
    best = {"ours": math.inf, "optax": math.inf}
    for _ in range(args.reps):
      for label in ("ours", "optax"):
        step, carry, sb = row[f"_{label}"]
        t, carry = _rounds(lambda c, step=step, g=grads: step(c[0], g, c[1]), carry, args.iters, 1)
        row[f"_{label}"] = (step, carry, sb)
        best[label] = min(best[label], t)
    for label in ("ours", "optax"):
      sb = row.pop(f"_{label}")[2]
      moved = n * 4 * 3 + 2 * sb  # params read + written, gradient read, state read + written
      row[f"{label}_ms"] = best[label] * 1e3
      row[f"{label}_bw_fraction"] = moved / best[label] / bw
    row["ratio"] = row["ours_ms"] / row["optax_ms"]
    rows.append(row)
    print(
      f"{case.name:30s} {row['ours_ms']:8.3f} ms vs {row['optax_ms']:8.3f} ms  ratio "
      f"{row['ratio']:.2f}  bandwidth {row['ours_bw_fraction']:.2f} (optax "
      f"{row['optax_bw_fraction']:.2f}) of copy  compile {row['ours_compile_s']:.2f} s vs "
      f"{row['optax_compile_s']:.2f} s",
      flush=True,
    )
    _write(args.out, meta, rows, scale_rows)
  del params, grads
  if args.leaves_compile:
    import scale

    scale_rows = scale.many_leaves(args.leaves_compile)
  _write(args.out, meta, rows, scale_rows)
  print((args.out / "gpu.md").read_text())
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
