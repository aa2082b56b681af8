"""One prepared GPU check (H100/H200, under 5 minutes): step time vs optax and achieved bandwidth.

For a 100M-parameter float32 tree (16 leaves of 6.25M), each case of ``benchmarks/cases.py`` is
timed (jitted update + apply, donated buffers) beside its optax peer, and its achieved bandwidth
(bytes read + written by the ideal fused kernel: params, gradient and state in, params and state out)
is reported as a fraction of the device-to-device copy bandwidth measured in the same run
(target >= 0.8).

Usage on the device machine::

    pip install -e . && python benchmarks/gpu.py --out $OUT

Writes ``gpu.json`` and ``gpu.md`` to ``--out`` (default ``benchmarks/results``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import optax

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cases import CASES
from step_time import make_step, state_bytes


def copy_bandwidth(n_bytes_leaf: int, leaves: int) -> float:
  xs = [jnp.ones(n_bytes_leaf // 4, jnp.float32) for _ in range(leaves)]
  copy = jax.jit(lambda xs: [x * 1.0 + 0.0 for x in xs])
  copy(xs)
  jax.block_until_ready(copy(xs))
  times = []
  for _ in range(20):
    t0 = time.perf_counter()
    jax.block_until_ready(copy(xs))
    times.append(time.perf_counter() - t0)
  return 2 * n_bytes_leaf * leaves / statistics.median(times)  # read + write


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  ap.add_argument("--params", type=int, default=100_000_000)
  ap.add_argument("--leaves", type=int, default=16)
  ap.add_argument("--iters", type=int, default=20)
  ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
  args = ap.parse_args(argv)
  per = args.params // args.leaves
  keys = jax.random.split(jax.random.key(0), args.leaves)
  params = {f"l{i:02d}": jax.random.normal(k, (per,), jnp.float32) for i, k in enumerate(keys)}
  grads = jax.tree.map(lambda p: 1e-3 * p, params)
  bw = copy_bandwidth(per * 4, args.leaves)
  print(f"device {jax.devices()[0]}; copy bandwidth {bw / 1e9:.0f} GB/s", flush=True)
  rows = []
  n = args.params
  for case in CASES:
    try:
      ours, theirs = case.ours(), case.theirs()
    except (AttributeError, ImportError) as e:
      rows.append({"name": case.name, "skipped": str(e)})
      continue
    row = {"name": case.name, "peer": case.peer}
    for label, tx in (("ours", ours), ("optax", theirs)):
      state = tx.init(params)
      step = make_step(tx, case.extra)
      p, s = jax.tree.map(jnp.copy, params), state
      for _ in range(3):
        p, s = step(p, grads, s)
      jax.block_until_ready((p, s))
      ts = []
      for _ in range(args.iters):
        t0 = time.perf_counter()
        p, s = step(p, grads, s)
        jax.block_until_ready((p, s))
        ts.append(time.perf_counter() - t0)
      t = statistics.median(ts)
      sb = state_bytes(state)
      moved = n * 4 * 3 + 2 * sb  # params r/w + grads r, state r/w
      row[f"{label}_ms"] = t * 1e3
      row[f"{label}_bw_fraction"] = moved / t / bw
      row[f"{label}_state_bytes_per_param"] = sb / n
      del p, s, state
    row["ratio"] = row["ours_ms"] / row["optax_ms"]
    rows.append(row)
    print(
      f"{case.name:30s} {row['ours_ms']:8.3f} ms vs {row['optax_ms']:8.3f} ms  ratio "
      f"{row['ratio']:.2f}  bandwidth {row['ours_bw_fraction']:.2f} of copy",
      flush=True,
    )
  meta = {
    "date": time.strftime("%Y-%m-%d"),
    "device": str(jax.devices()[0]),
    "jax": jax.__version__,
    "optax": optax.__version__,
    "params": n,
    "leaves": args.leaves,
    "copy_bandwidth_GBps": bw / 1e9,
  }
  args.out.mkdir(parents=True, exist_ok=True)
  (args.out / "gpu.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
  lines = [
    f"{meta['date']}, {meta['device']}, jax {meta['jax']}, optax {meta['optax']}, "
    f"{n / 1e6:.0f}M params; copy bandwidth {bw / 1e9:.0f} GB/s",
    "",
    "| transform | ms | optax ms | ratio | bandwidth / copy | state B/param |",
    "|---|---|---|---|---|---|",
  ]
  for r in rows:
    if "skipped" in r:
      lines.append(f"| {r['name']} | skipped | | | | |")
    else:
      lines.append(
        f"| {r['name']} | {r['ours_ms']:.3f} | {r['optax_ms']:.3f} | {r['ratio']:.2f} | "
        f"{r['ours_bw_fraction']:.2f} | {r['ours_state_bytes_per_param']:.2f} |"
      )
  (args.out / "gpu.md").write_text("\n".join(lines) + "\n")
  print("\n".join(lines))
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
