"""Recurrent nets on long-range problems with momentum (Sutskever, Martens, Dahl & Hinton 2013, s. 4).

A 100-unit tanh RNN (Flax NNX, scanned over time with ``jax.lax.scan``) with the paper's Table 4
initialization, trained on :func:`nnml_optax.data.addition` (or ``multiplication``,
``memorization``) by :func:`nnml_optax.momentum` / :func:`nnml_optax.nesterov` under the paper's
momentum schedule: mu = 0.9 for the first 1,000 updates, then mu_0. Every (configuration, learning
rate, seed) is one *lane*; the lanes of one momentum kind are ``jax.vmap``-ed and all kinds advance
together inside one jitted ``lax.scan`` chunk, so a whole grid is one run. Between chunks the run
can be checkpointed with orbax and resumed.

This is the engine behind ``nnml-optax demo rnn`` (:func:`run_demo`) and
``examples/rnn_long_range.py`` (:func:`train`). Flax, orbax and matplotlib are imported inside the
functions that need them (the ``[examples]`` extra).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import itertools
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import nnml_optax as nn

#: Table 5's columns (mu_0 and N(esterov) / M(omentum, classical)), "0" being classical.
PAPER_CONFIGS = ("0", "0.9N", "0.98N", "0.995N", "0.9M", "0.98M", "0.995M")
#: Sutskever et al. (2013), Table 5, zero-one loss on the addition problem with T = 80.
PAPER_TABLE5_ADDITION_T80 = {
  "biases": 0.82,
  "0": 0.39,
  "0.9N": 0.02,
  "0.98N": 0.21,
  "0.995N": 0.00025,
  "0.9M": 0.43,
  "0.98M": 0.62,
  "0.995M": 0.036,
}
SWITCH_STEP = 1000  # mu = 0.9 for the first 1,000 updates (section 4)


@dataclasses.dataclass(frozen=True)
class Task:
  """A long-range problem: its generator, channels, Table 4's input scale and its losses."""

  generate: Callable[..., tuple[jax.Array, jax.Array, jax.Array]]
  n_in: int
  n_out: int
  in_scale: float
  classification: bool


TASKS = {
  "addition": Task(nn.data.addition, 2, 1, 0.001, False),
  "multiplication": Task(nn.data.multiplication, 2, 1, 0.001, False),
  "memorization": Task(nn.data.memorization, 4, 2, 0.1, True),  # 5 bits
}


@functools.cache
def _jit_generator(generate: Callable) -> Callable:
  return jax.jit(generate, static_argnums=(1, 2))


def _generate(
  task: Task, key: jax.Array, num: int, T: int
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """``task.generate(key, num, T)`` compiled once per shape (eagerly it dispatches op by op)."""
  return _jit_generator(task.generate)(key, num, T)


def parse_config(label: str) -> tuple[float, bool]:
  """``"0.995N"`` -> ``(0.995, True)``; ``"0.9M"`` -> ``(0.9, False)``; ``"0"`` -> ``(0.0, False)``."""
  text = label.strip()
  nesterov = text.endswith("N")
  body = text[:-1] if text[-1:] in ("N", "M") else text
  try:
    mu0 = float(body)
  except ValueError:
    raise ValueError(f"config must look like 0, 0.9N or 0.995M; got {label!r}") from None
  if not 0.0 <= mu0 < 1.0:
    raise ValueError(f"config's momentum must be in [0, 1); got {label!r}")
  return mu0, nesterov


def momentum_schedule(mu0: Any) -> optax.Schedule:
  """Section 4's schedule: mu = 0.9 for the first 1,000 updates, then ``mu0`` (may be traced)."""
  return optax.join_schedules(
    [optax.constant_schedule(0.9), optax.constant_schedule(mu0)], [SWITCH_STEP]
  )


def make_optimizer(learning_rate: Any, mu0: Any, nesterov: bool) -> optax.GradientTransformation:
  """``nnml_optax.nesterov`` or ``nnml_optax.momentum`` with :func:`momentum_schedule`."""
  alias = nn.nesterov if nesterov else nn.momentum
  return alias(learning_rate, momentum_schedule(mu0))


@functools.cache
def _rnn_class() -> type:
  from flax import nnx

  class RNN(nnx.Module):
    """h_t = tanh(x_t W_in + h_{t-1} W_hh + b_h), y_t = h_t W_out + b_out, h_0 = 0 (Table 4)."""

    def __init__(self, task: Task, hidden: int, out_bias: float, *, rngs: nnx.Rngs):
      normal = jax.nn.initializers.normal
      self.w_in = nnx.Linear(task.n_in, hidden, kernel_init=normal(task.in_scale), rngs=rngs)
      self.w_hh = nnx.Linear(
        hidden, hidden, use_bias=False, kernel_init=nn.init.echo_state(1.1, 15), rngs=rngs
      )
      self.w_out = nnx.Linear(
        hidden,
        task.n_out,
        kernel_init=normal(0.1),
        bias_init=jax.nn.initializers.constant(out_bias),
        rngs=rngs,
      )

    def __call__(self, x: jax.Array) -> jax.Array:  # (batch, time, n_in) -> (batch, time, n_out)
      drive = self.w_in(x).swapaxes(0, 1)  # the input terms of all steps at once
      w_hh = self.w_hh.kernel[...]

      def step(h, d):
        h = jnp.tanh(d + h @ w_hh)
        return h, h

      h0 = jnp.zeros(drive.shape[1:], drive.dtype)
      _, hs = jax.lax.scan(step, h0, drive)
      return self.w_out(hs.swapaxes(0, 1))

  return RNN


@functools.cache
def mean_target(task: Task, T: int, num: int = 10_000) -> float:
  """Table 4's output bias: the mean target (of the masked steps) over ``num`` sequences.

  For memorization, whose outputs are softmax scores, the bias is 0 (every symbol equally likely).
  """
  if task.classification:
    return 0.0
  _, y, m = _generate(task, jax.random.key(2013), num, T)
  return float((y[..., 0] * m).sum() / m.sum())


def make_model(task: Task, T: int, hidden: int, key: jax.Array, out_bias: float | None = None):
  """A fresh RNN (an ``nnx.Module``) for ``task`` with Table 4's initialization."""
  from flax import nnx

  bias = mean_target(task, T) if out_bias is None else out_bias
  return _rnn_class()(task, hidden, bias, rngs=nnx.Rngs(params=key))


def _losses(task: Task, out: jax.Array, y: jax.Array, m: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(training loss, zero-one loss) of one batch.

  The training loss is *summed* over the sequences of the batch (squared error, or cross-entropy
  summed over the recall steps), so that the paper's learning-rate grid 1e-3 ... 1e-6 applies as
  written; a batch-mean loss needs rates ``batch_size`` times larger.
  """
  if task.classification:
    ce = optax.softmax_cross_entropy_with_integer_labels(out, y)
    return (ce * m).sum(), nn.data.recall_error(out, y, m)
  sq = (out[..., 0] - y[..., 0]) ** 2
  return (sq * m).sum(), nn.data.threshold_error(out, y, m)


@dataclasses.dataclass
class Lanes:
  """The grid, one lane per (config, learning rate, seed), grouped by momentum kind."""

  configs: tuple[str, ...]
  lrs: tuple[float, ...]
  seeds: tuple[int, ...]

  def group(self, nesterov: bool) -> list[tuple[str, float, int]]:
    return [
      (c, lr, s)
      for c, lr, s in itertools.product(self.configs, self.lrs, self.seeds)
      if parse_config(c)[1] == nesterov
    ]

  def kinds(self) -> list[bool]:
    return [k for k in (False, True) if self.group(k)]


@functools.lru_cache(maxsize=8)
def _programs(task_name: str, T: int, hidden: int, batch_size: int, kinds: tuple[bool, ...]):
  """The jitted init, training chunk and evaluation of one set-up, built once per process.

  Cached so that repeated :func:`train` calls (a resumed run, a grid split over calls) reuse the
  compiled programs; the lanes' learning rates, momenta and keys are arguments, not constants.
  """
  from flax import nnx

  task = TASKS[task_name]
  out_bias = mean_target(task, T)
  graphdef, _ = nnx.split(
    nnx.eval_shape(lambda: make_model(task, T, hidden, jax.random.key(0), out_bias))
  )

  @functools.partial(jax.jit, static_argnums=0)
  def init_lanes(nesterov: bool, keys, lr, mu0):
    def one(k, lr_, mu0_):
      key = jax.random.wrap_key_data(k)
      params = nnx.state(make_model(task, T, hidden, jax.random.fold_in(key, 1), out_bias))
      return params, make_optimizer(lr_, mu0_, nesterov).init(params)

    return jax.vmap(one)(keys, lr, mu0)

  def init_group(nesterov: bool, group: list[tuple[str, float, int]]):
    keys = jnp.stack([jax.random.key_data(jax.random.key(s)) for _, _, s in group])
    lr = jnp.asarray([lr for _, lr, _ in group], jnp.float32)
    mu0 = jnp.asarray([parse_config(c)[0] for c, _, _ in group], jnp.float32)
    params, opt_state = init_lanes(nesterov, keys, lr, mu0)
    return {"params": params, "opt_state": opt_state, "key": keys, "lr": lr, "mu0": mu0}

  def lane_step(nesterov, params, opt_state, k, lr_, mu0_, t):
    x, y, m = task.generate(jax.random.fold_in(jax.random.wrap_key_data(k), t), batch_size, T)

    def loss_fn(p):
      return _losses(task, nnx.merge(graphdef, p)(x), y, m)[0]

    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = make_optimizer(lr_, mu0_, nesterov).update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  @functools.partial(jax.jit, static_argnums=2, donate_argnums=0)
  def run_chunk(state, start, n):
    def body(state, t):
      new, losses = {}, {}
      for kind in kinds:
        g = state[kind]
        p, o, loss = jax.vmap(functools.partial(lane_step, kind), in_axes=(0, 0, 0, 0, 0, None))(
          g["params"], g["opt_state"], g["key"], g["lr"], g["mu0"], t
        )
        new[kind] = {**g, "params": p, "opt_state": o}
        losses[kind] = loss
      return new, losses

    state, losses = jax.lax.scan(body, state, start + jnp.arange(n))
    return state, {k: v.mean(axis=0) for k, v in losses.items()}

  @jax.jit
  def evaluate(state, x, y, m):
    out = {}
    for kind in kinds:

      def one(p):
        return _losses(task, nnx.merge(graphdef, p)(x), y, m)

      out[kind] = jax.vmap(one)(state[kind]["params"])
    return out

  return init_group, run_chunk, evaluate


def train(
  task_name: str = "addition",
  *,
  T: int = 80,
  steps: int = 50_000,
  configs: Sequence[str] = ("0", "0.995N", "0.995M"),
  lrs: Sequence[float] = (1e-4,),
  seeds: Sequence[int] = (0,),
  batch_size: int = 100,
  hidden: int = 100,
  chunk: int = 500,
  eval_size: int = 1000,
  final_eval_size: int | None = None,
  checkpoint_dir: str | Path | None = None,
  progress: Callable[[dict], None] | None = None,
) -> dict:
  """Trains every lane of the grid for ``steps`` updates; returns the results as a dict.

  Every ``chunk`` updates each lane's zero-one loss is measured on one fixed evaluation set of
  ``eval_size`` sequences (the same for all lanes), ``progress`` is called with the partial results
  and, with a ``checkpoint_dir``, the whole state is saved with orbax; a later call with the same
  arguments resumes from the last checkpoint. The data of seed ``s`` at update ``t`` is drawn from
  ``fold_in(key(s), t)``: every configuration sees the same sequences. At the end the zero-one loss
  is measured on ``final_eval_size`` (default ``eval_size``) fresh sequences.
  """
  task = TASKS[task_name]
  lanes = Lanes(tuple(configs), tuple(float(r) for r in lrs), tuple(int(s) for s in seeds))
  for c in lanes.configs:
    parse_config(c)
  if chunk < 1 or steps % chunk:
    raise ValueError(f"steps ({steps}) must be a multiple of chunk ({chunk})")
  kinds = lanes.kinds()
  init_group, run_chunk, evaluate = _programs(task_name, T, hidden, batch_size, tuple(kinds))

  eval_x, eval_y, eval_m = _generate(task, jax.random.key(10**6), eval_size, T)
  state = {kind: init_group(kind, lanes.group(kind)) for kind in kinds}
  history: dict[str, Any] = {"step": [], "train_loss": {}, "zero_one": {}}
  start = 0
  ckpt = None
  if checkpoint_dir is not None:
    import orbax.checkpoint as ocp

    ckpt = ocp.CheckpointManager(
      Path(checkpoint_dir).absolute(), options=ocp.CheckpointManagerOptions(max_to_keep=1)
    )
    if (latest := ckpt.latest_step()) is not None:
      start = int(latest)
      abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
      restored = ckpt.restore(
        start,
        args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract), history=ocp.args.JsonRestore()
        ),
      )
      state, history = restored["state"], restored["history"]
      if start > steps or (steps - start) % chunk:
        raise ValueError(
          f"the checkpoint is at update {start}: steps ({steps}) must be at least that and "
          f"steps - {start} a multiple of chunk ({chunk})"
        )

  names = {kind: [f"{c} lr={lr:g} seed={s}" for c, lr, s in lanes.group(kind)] for kind in kinds}
  t0 = time.perf_counter()
  for begin in range(start, steps, chunk):
    state, train_loss = run_chunk(state, jnp.int32(begin), chunk)
    zero_one = evaluate(state, eval_x, eval_y, eval_m)
    history["step"].append(begin + chunk)
    for kind in kinds:
      for i, name in enumerate(names[kind]):
        history["train_loss"].setdefault(name, []).append(float(train_loss[kind][i]))
        history["zero_one"].setdefault(name, []).append(float(zero_one[kind][1][i]))
    if ckpt is not None:
      import orbax.checkpoint as ocp

      ckpt.save(
        begin + chunk,
        args=ocp.args.Composite(
          state=ocp.args.StandardSave(state), history=ocp.args.JsonSave(history)
        ),
      )
    if progress is not None:
      progress({"step": begin + chunk, "seconds": time.perf_counter() - t0, "history": history})
  if ckpt is not None:
    ckpt.wait_until_finished()
    ckpt.close()

  n_final = final_eval_size or eval_size
  fx, fy, fm = _generate(task, jax.random.key(10**6 + 1), n_final, T)
  final = evaluate(state, fx, fy, fm)
  per_lane = {}
  for kind in kinds:
    for i, (c, lr, s) in enumerate(lanes.group(kind)):
      per_lane[f"{c} lr={lr:g} seed={s}"] = {
        "config": c,
        "lr": lr,
        "seed": s,
        "zero_one": float(final[kind][1][i]),
        "loss": float(final[kind][0][i]),
      }
  return {
    "task": task_name,
    "T": T,
    "steps": steps,
    "batch_size": batch_size,
    "hidden": hidden,
    "configs": list(lanes.configs),
    "lrs": list(lanes.lrs),
    "seeds": list(lanes.seeds),
    "final_eval_size": n_final,
    "biases_only": biases_only_error(task, T),
    "lanes": per_lane,
    "table": summarize(per_lane, lanes),
    "history": history,
  }


@functools.cache
def biases_only_error(task: Task, T: int, num: int = 100_000) -> float:
  """The zero-one loss of predicting the mean target: what a biases-only net converges to."""
  x, y, m = _generate(task, jax.random.key(7), num, T)
  del x
  if task.classification:
    return float(1.0 - 1.0 / task.n_out)
  out = jnp.full(y.shape, mean_target(task, T), y.dtype)
  return float(jax.jit(nn.data.threshold_error)(out, y, m))


def summarize(per_lane: dict, lanes: Lanes) -> dict:
  """Per config: the learning rate with the lowest seed-mean zero-one loss, and that mean."""
  table = {}
  for c in lanes.configs:
    by_lr = {}
    for lr in lanes.lrs:
      vals = [v["zero_one"] for v in per_lane.values() if v["config"] == c and v["lr"] == lr]
      by_lr[lr] = (float(np.mean(vals)), vals)
    best = min(by_lr, key=lambda r: by_lr[r][0])
    table[c] = {"zero_one": by_lr[best][0], "lr": best, "per_seed": by_lr[best][1]}
  return table


def format_table(result: dict) -> str:
  """A Markdown table of the measured zero-one losses (beside Table 5 where it applies)."""
  paper = PAPER_TABLE5_ADDITION_T80 if (result["task"], result["T"]) == ("addition", 80) else {}
  lines = [
    "| config | zero-one loss (ours) | learning rate | per seed | Table 5 |",
    "|---|---|---|---|---|",
    f"| biases only | {result['biases_only']:.3f} | - | - | {paper.get('biases', '-')} |",
  ]
  for c, row in result["table"].items():
    seeds = ", ".join(f"{v:.3f}" for v in row["per_seed"])
    lines.append(f"| {c} | {row['zero_one']:.4f} | {row['lr']:g} | {seeds} | {paper.get(c, '-')} |")
  return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
  """Zero-one loss against updates, one line per configuration at its chosen rate (seed mean)."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  hist = result["history"]
  fig, ax = plt.subplots(figsize=(6.4, 4.0))
  for c, row in result["table"].items():
    curves = [
      hist["zero_one"][f"{c} lr={row['lr']:g} seed={s}"]
      for s in result["seeds"]
      if f"{c} lr={row['lr']:g} seed={s}" in hist["zero_one"]
    ]
    ax.plot(hist["step"], np.mean(curves, axis=0), label=f"{c} (lr {row['lr']:g})")
  ax.axhline(result["biases_only"], color="grey", ls=":", label="biases only")
  ax.axvline(SWITCH_STEP, color="grey", ls="--", lw=0.8)
  ax.set_xlabel("updates")
  ax.set_ylabel("zero-one loss")
  ax.set_ylim(0, 1)
  ax.set_title(f"{result['task']}, T = {result['T']} (mu = 0.9 until update {SWITCH_STEP})")
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


DEMO = {"T": 20, "steps": 3000, "configs": ("0", "0.995N"), "lrs": (1e-4,), "seeds": (0,)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Adds the ``demo rnn`` options (all optional; the defaults are the reduced demo).

  The number of updates and the first seed are left to the caller's ``--steps`` and ``--seed``;
  pass them to :func:`run_from_args`.
  """
  parser.add_argument("--task", choices=sorted(TASKS), default="addition", help="rnn: problem")
  parser.add_argument("--T", type=int, default=None, help="rnn: sequence length (demo 20)")
  parser.add_argument(
    "--configs", default=None, help="rnn: comma-separated, e.g. 0,0.995N,0.995M (demo 0,0.995N)"
  )
  parser.add_argument("--lrs", default=None, help="rnn: comma-separated learning rates (1e-4)")
  parser.add_argument("--seeds", type=int, default=None, help="rnn: number of seeds (demo 1)")
  parser.add_argument(
    "--full", action="store_true", help="rnn: Table 5's setting, T=80, 50,000 updates, 4 seeds"
  )
  parser.add_argument("--workdir", default=None, help="rnn: orbax checkpoint folder (resumes)")


def run_from_args(
  out_dir: str | Path, args: argparse.Namespace, *, steps: int | None = None, seed: int = 0
) -> dict:
  """:func:`run_demo` with the options of :func:`add_arguments`."""
  return run_demo(
    out_dir,
    full=args.full,
    seed=seed,
    task=args.task,
    T=args.T,
    updates=steps,
    configs=args.configs,
    lrs=args.lrs,
    seeds=args.seeds,
    checkpoint_dir=args.workdir,
  )


def demo(
  out: Path, steps: int | None = None, seed: int = 0, args: argparse.Namespace | None = None
) -> dict:
  """``nnml-optax demo rnn``: :func:`run_demo` with the command line's options (writes ``rnn.png``)."""
  if args is None:
    return run_demo(out, seed=seed, updates=steps)
  return run_from_args(out, args, steps=steps, seed=seed)


def run_demo(
  out_dir: str | Path,
  *,
  full: bool = False,
  seed: int = 0,
  task: str = "addition",
  T: int | None = None,
  updates: int | None = None,
  configs: Sequence[str] | str | None = None,
  lrs: Sequence[float] | str | None = None,
  seeds: int | None = None,
  checkpoint_dir: str | Path | None = None,
  quiet: bool = False,
  progress_path: str | Path | None = None,
  eval_size: int = 2000,
  chunk: int | None = None,
) -> dict:
  """Runs the reduced demo (or ``full``: Table 5's setting), prints a table, writes a PNG + JSON."""
  if isinstance(configs, str):
    configs = [c for c in configs.split(",") if c]
  if isinstance(lrs, str):
    lrs = [float(r) for r in lrs.split(",") if r]
  base = (
    {"T": 80, "steps": 50_000, "configs": PAPER_CONFIGS, "lrs": (1e-4, 1e-5), "seeds": range(4)}
    if full
    else DEMO
  )
  n_seeds = seeds if seeds is not None else len(base["seeds"])
  kwargs = {
    "T": T or base["T"],
    "steps": updates or base["steps"],
    "configs": tuple(configs or base["configs"]),
    "lrs": tuple(lrs or base["lrs"]),
    "seeds": tuple(range(seed, seed + n_seeds)),
  }
  chunk = chunk or (500 if kwargs["steps"] % 500 == 0 else kwargs["steps"])
  out = Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  t0 = time.perf_counter()

  def progress(p):
    if progress_path is not None:
      Path(progress_path).write_text(json.dumps({"args": kwargs, **p}, indent=1))
    if not quiet:
      last = {k: f"{v[-1]:.3f}" for k, v in p["history"]["zero_one"].items()}
      print(f"  update {p['step']}: zero-one {last} ({p['seconds']:.0f} s)", flush=True)

  result = train(
    task,
    chunk=chunk,
    eval_size=eval_size,
    final_eval_size=10 * eval_size if full else eval_size,
    checkpoint_dir=checkpoint_dir,
    progress=progress,
    **kwargs,
  )
  result["seconds"] = time.perf_counter() - t0
  table = format_table(result)
  if not quiet:
    print(f"\n{task}, T = {result['T']}, {result['steps']} updates, batch {result['batch_size']}:")
    print(table)
  verdict = _verdict(result)
  if not quiet:
    print(verdict)
  plot(result, out / "rnn.png")
  (out / "rnn.json").write_text(json.dumps(result, indent=1))
  result["verdict"] = verdict
  return result


def _verdict(result: dict) -> str:
  table = result["table"]
  nag = [c for c in table if c.endswith("N") and parse_config(c)[0] >= 0.99]
  zero = [c for c in table if parse_config(c)[0] == 0.0]
  if not nag or not zero:
    return ""
  best_nag = min(table[c]["zero_one"] for c in nag)
  mu0 = min(table[c]["zero_one"] for c in zero)
  if best_nag < 0.5 * mu0 and best_nag < 0.5 * result["biases_only"]:
    return (
      f"high-mu Nesterov reaches a zero-one loss of {best_nag:.3f} where mu = 0 stays at "
      f"{mu0:.3f} (biases only: {result['biases_only']:.3f}), as in Table 5."
    )
  return (
    f"this setting does not separate them (high-mu Nesterov {best_nag:.3f}, mu = 0 {mu0:.3f}); "
    "run the paper's setting with --full (examples/rnn_long_range.py --full)."
  )
