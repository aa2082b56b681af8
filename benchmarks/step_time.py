"""Step time, state memory and roofline fraction of every transform, side by side with optax.

For each case of ``benchmarks/cases.py`` it times a jitted ``update`` + ``apply_updates`` with donated
parameter and state buffers on a 64-leaf, 16M-parameter float32 tree (``--quick``: 16 leaves, 1M
parameters), and, in the same run:

* the optax equivalent's time and the ratio ours/optax (< 1 is faster);
* state bytes per parameter;
* the roofline fraction: the time of a trivial fused kernel with the same I/O (reads params, gradient
  and every state array, writes params and every state array: ``s' = s + g; p' = p + s'``) divided
  by the transform's time (1.0 = as fast as memory traffic allows);
* jit compile time on a 1000-leaf tree, ours/optax (``--compile-leaves``; 0 skips);
* XLA's memory analysis of the compiled step: temporaries allocated beyond inputs and outputs.

Usage::

    python benchmarks/step_time.py            # full run, writes benchmarks/results/<machine>.{json,md}
    python benchmarks/step_time.py --quick    # < 1 minute
    python benchmarks/step_time.py --only rprop --only rmsprop

Times are medians over ``--iters`` timed steps after warm-up; ratios are what to read, since both
sides run in the same process on the same machine.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cases import CASES, Case


def make_tree(n_leaves: int, n_params: int, dtype=jnp.float32, seed: int = 0):
  per = n_params // n_leaves
  side = int(np.sqrt(per))
  shapes = [(side, per // side) for _ in range(n_leaves)]
  keys = jax.random.split(jax.random.key(seed), n_leaves)
  params = {
    f"l{i:04d}": jax.random.normal(k, s, dtype)
    for i, (k, s) in enumerate(zip(keys, shapes, strict=False))
  }
  grads = {
    k: 0.01 * jax.random.normal(jax.random.fold_in(keys[i], 1), v.shape, dtype)
    for i, (k, v) in enumerate(params.items())
  }
  return params, grads


def n_params(tree) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def state_bytes(state) -> int:
  return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(state) if hasattr(x, "dtype"))


def _copy(tree):
  return jax.tree.map(lambda x: x.copy(), tree)


def make_step(tx, extra_fn):
  @functools.partial(jax.jit, donate_argnums=(0, 2))
  def step(params, grads, state):
    u, state = tx.update(grads, state, params, **extra_fn(params))
    return optax.apply_updates(params, u), state

  return step


def make_trivial(state_template, params):
  """The same-I/O trivial kernel: every param-shaped state array gets ``s + g``, params ``p + s'``."""
  pleaves, pdef = jax.tree.flatten(params)
  sizes = {x.shape for x in pleaves}

  @functools.partial(jax.jit, donate_argnums=(0, 2))
  def trivial(params, grads, state):
    gl = jax.tree.leaves(grads)
    sl, sdef = jax.tree.flatten(state)
    # pair each param-shaped state leaf with a gradient of that shape, round robin per shape
    by_shape: dict = {}
    for i, g in enumerate(gl):
      by_shape.setdefault(g.shape, []).append(i)
    cursor = {k: 0 for k in by_shape}
    acc = [jnp.zeros((), jnp.float32) for _ in gl]
    acc = list(gl)
    new_sl = []
    for s in sl:
      if hasattr(s, "shape") and s.shape in sizes:
        idx = by_shape[s.shape][cursor[s.shape] % len(by_shape[s.shape])]
        cursor[s.shape] += 1
        ns = (s.astype(jnp.float32) + gl[idx].astype(jnp.float32)).astype(s.dtype)
        acc[idx] = acc[idx] + ns.astype(acc[idx].dtype)
        new_sl.append(ns)
      else:
        new_sl.append(s)
    new_p = [p + a.astype(p.dtype) for p, a in zip(jax.tree.leaves(params), acc, strict=False)]
    return jax.tree.unflatten(pdef, new_p), jax.tree.unflatten(sdef, new_sl)

  del state_template
  return trivial


def add_clock_argument(ap: argparse.ArgumentParser) -> None:
  """``--clock wall|cpu``; :func:`clock_of` turns the parsed value into a timer."""
  ap.add_argument(
    "--clock",
    choices=("wall", "cpu"),
    default="wall",
    help="wall time, or the CPU time of this process (less sensitive to other jobs' load)",
  )


def clock_of(name: str):
  return time.process_time if name == "cpu" else time.perf_counter


def time_step(
  step, params, grads, state, iters: int, warmup: int = 3, clock=time.perf_counter
) -> float:
  """Median ms of ``iters`` steps. ``clock=time.process_time`` counts the CPU time of this
  process (all its threads) instead of wall time: on a loaded machine, time spent waiting for a
  core is then left out."""
  p, s = _copy(params), _copy(state)
  for _ in range(warmup):
    p, s = step(p, grads, s)
  jax.block_until_ready((p, s))
  times = []
  for _ in range(iters):
    t0 = clock()
    p, s = step(p, grads, s)
    jax.block_until_ready((p, s))
    times.append(clock() - t0)
  return statistics.median(times) * 1e3


def compile_time(tx, extra_fn, n_leaves: int, clock=time.perf_counter) -> float:
  params = {f"l{i:05d}": jnp.zeros((4 + i % 7, 3), jnp.float32) for i in range(n_leaves)}
  state = jax.eval_shape(tx.init, params)

  def step(params, grads, state):
    u, state = tx.update(grads, state, params, **extra_fn(params))
    return optax.apply_updates(params, u), state

  t0 = clock()
  jax.jit(step).lower(params, params, state).compile()
  return clock() - t0


def temp_bytes(step, params, grads, state) -> int | None:
  try:
    analysis = step.lower(params, grads, state).compile().memory_analysis()
    return int(analysis.temp_size_in_bytes)
  except Exception:
    return None


def bench_case(
  case: Case, params, grads, iters: int, compile_leaves: int, compile_repeats: int = 1
) -> dict:
  row: dict = {"name": case.name, "peer": case.peer, "same_math": case.same_math}
  try:
    ours, theirs = case.ours(), case.theirs()
  except (AttributeError, ImportError) as e:
    row["skipped"] = f"{type(e).__name__}: {e}"
    return row
  n = n_params(params)
  results = {}
  for label, tx in (("ours", ours), ("optax", theirs)):
    state = tx.init(params)
    step = make_step(tx, case.extra)
    results[label] = {
      "ms": time_step(step, params, grads, state, iters),
      "state_bytes_per_param": state_bytes(state) / n,
      "temp_bytes": temp_bytes(step, params, grads, state),
    }
    if label == "ours":
      trivial = make_trivial(state, params)
      results["trivial_ms"] = time_step(trivial, params, grads, state, iters)
  if compile_leaves:  # alternating ours / optax; the minimum (noise only ever adds time)
    times: dict[str, list[float]] = {"ours": [], "optax": []}
    for _ in range(compile_repeats):
      for label, tx in (("ours", ours), ("optax", theirs)):
        times[label].append(compile_time(tx, case.extra, compile_leaves))
    for label, ts in times.items():
      results[label]["compile_s"] = min(ts)
  row.update(
    ms=results["ours"]["ms"],
    optax_ms=results["optax"]["ms"],
    ratio=results["ours"]["ms"] / results["optax"]["ms"],
    state_bytes_per_param=results["ours"]["state_bytes_per_param"],
    optax_state_bytes_per_param=results["optax"]["state_bytes_per_param"],
    trivial_ms=results["trivial_ms"],
    roofline=min(results["trivial_ms"] / results["ours"]["ms"], 9.99),
    temp_mb=None
    if results["ours"]["temp_bytes"] is None
    else results["ours"]["temp_bytes"] / 2**20,
    optax_temp_mb=None
    if results["optax"]["temp_bytes"] is None
    else results["optax"]["temp_bytes"] / 2**20,
  )
  if compile_leaves:
    row.update(
      compile_s=results["ours"]["compile_s"],
      optax_compile_s=results["optax"]["compile_s"],
      compile_ratio=results["ours"]["compile_s"] / results["optax"]["compile_s"],
    )
  return row


def markdown(rows: list[dict], meta: dict) -> str:
  lines = [
    f"Measured {meta['date']} on {meta['machine']} ({meta['backend']}, {meta['cpu_count']} cores), "
    f"jax {meta['jax']}, optax {meta['optax']}; tree: {meta['leaves']} leaves, "
    f"{meta['params'] / 1e6:.1f}M float32 parameters; command: `{meta['command']}`.",
    "",
    "| transform | ms/step | optax peer | peer ms | ratio | state B/param | roofline | temp MiB (peer) "
    "| compile ratio |",
    "|---|---|---|---|---|---|---|---|---|",
  ]
  for r in rows:
    if "skipped" in r:
      lines.append(f"| {r['name']} | skipped: {r['skipped']} | | | | | | | |")
      continue
    temp = "" if r.get("temp_mb") is None else f"{r['temp_mb']:.0f} ({r['optax_temp_mb']:.0f})"
    comp = f"{r['compile_ratio']:.2f}" if "compile_ratio" in r else ""
    lines.append(
      f"| {r['name']} | {r['ms']:.2f} | {r['peer']} | {r['optax_ms']:.2f} | {r['ratio']:.2f} | "
      f"{r['state_bytes_per_param']:.2f} | {r['roofline']:.2f} | {temp} | {comp} |"
    )
  return "\n".join(lines) + "\n"


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  ap.add_argument("--quick", action="store_true", help="16 leaves, 4M parameters, fewer iterations")
  ap.add_argument("--only", action="append", default=[], help="substring of case names to run")
  ap.add_argument("--iters", type=int, default=None)
  ap.add_argument(
    "--compile-leaves",
    type=int,
    default=None,
    help="leaves of the compile-time tree (default 1000, --quick 0 = skip)",
  )
  ap.add_argument(
    "--compile-repeats",
    type=int,
    default=1,
    help="compile each transform this many times, alternating with its peer; keep the minimum",
  )
  ap.add_argument("--leaves", type=int, default=None, help="override the number of leaves")
  ap.add_argument("--params", type=int, default=None, help="override the number of parameters")
  ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
  ap.add_argument("--machine", default=os.environ.get("NNML_MACHINE", platform.node() or "machine"))
  args = ap.parse_args(argv)

  leaves, nparams = (16, 4 << 20) if args.quick else (64, 16 << 20)
  leaves, nparams = args.leaves or leaves, args.params or nparams
  iters = args.iters or (10 if args.quick else 20)
  compile_leaves = (
    args.compile_leaves if args.compile_leaves is not None else (0 if args.quick else 1000)
  )
  params, grads = make_tree(leaves, nparams)
  cases = [c for c in CASES if not args.only or any(o in c.name for o in args.only)]
  rows = []
  for case in cases:
    row = bench_case(case, params, grads, iters, compile_leaves, args.compile_repeats)
    rows.append(row)
    if "skipped" in row:
      print(f"{case.name:32s} skipped ({row['skipped']})", flush=True)
    else:
      print(
        f"{case.name:32s} {row['ms']:8.2f} ms  optax {row['optax_ms']:8.2f} ms  "
        f"ratio {row['ratio']:.2f}  state {row['state_bytes_per_param']:.2f} B/param  "
        f"roofline {row['roofline']:.2f}"
        + (f"  compile x{row['compile_ratio']:.2f}" if "compile_ratio" in row else ""),
        flush=True,
      )
  meta = {
    "date": time.strftime("%Y-%m-%d"),
    "machine": args.machine,
    "backend": jax.default_backend(),
    "devices": [str(d) for d in jax.devices()],
    "cpu_count": os.cpu_count(),
    "jax": jax.__version__,
    "optax": optax.__version__,
    "leaves": leaves,
    "params": n_params(params),
    "iters": iters,
    "compile_leaves": compile_leaves,
    "compile_repeats": args.compile_repeats,
    "command": "python benchmarks/step_time.py "
    + " ".join(argv if argv is not None else sys.argv[1:]),
  }
  args.out.mkdir(parents=True, exist_ok=True)
  suffix = "-quick" if args.quick else ""
  (args.out / f"{args.machine}{suffix}.json").write_text(
    json.dumps({"meta": meta, "rows": rows}, indent=1)
  )
  md = markdown(rows, meta)
  (args.out / f"{args.machine}{suffix}.md").write_text(md)
  print()
  print(md)
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
