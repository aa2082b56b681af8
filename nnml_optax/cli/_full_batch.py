"""``nnml-optax demo full-batch``: the summary slide's full-batch methods racing on the digits MLP.

Lecture 6e's summary: for small or non-redundant data sets use "a full-batch method: conjugate
gradient or L-BFGS, or adaptive learning rates, or rprop". The compare MLP trains on the whole
digits training set with conjugate gradient, L-BFGS (``optax.lbfgs``), iRprop-, local gains with
momentum and plain gradient descent; every method gets the same budget of **gradient evaluations**
(a line search's evaluations included); rates are chosen by a short grid over two seeds.
"""

from __future__ import annotations

import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

import nnml_optax as nn

from . import _compare, _tune

# name -> (optimizer of the rate, the grid of rates tried)
_RATED = {
  "gradient descent": (lambda lr: nn.sgd(lr), (3.0, 10.0, 30.0)),
  "local gains + momentum": (lambda lr: nn.local_gains(lr, momentum=0.9), (0.1, 0.3, 1.0)),
  "iRprop-": (lambda lr: nn.rprop(lr, variant="irprop-"), (0.001, 0.01)),
}
# conjugate gradient's line search started from the previous step instead of 1 (Nocedal & Wright
# advise a guess from the previous step for directions that are not well scaled)
_KEEP = optax.scale_by_zoom_linesearch(20, curv_rtol=0.1, initial_guess_strategy="keep")
_LINESEARCH = {
  "conjugate gradient": nn.conjugate_gradient,
  "CG, search from last step": lambda: nn.conjugate_gradient(linesearch=_KEEP),
  "L-BFGS": optax.lbfgs,
}
PREDICTION = {
  "conjugate gradient": "full-batch method: fast on small data, no rate to tune",
  "CG, search from last step": "full-batch method: fast on small data, no rate to tune",
  "L-BFGS": "full-batch method: fast on small data, no rate to tune",
  "iRprop-": "full batch: rprop works (signs only)",
  "local gains + momentum": "full batch: adaptive rates help",
  "gradient descent": "the baseline the others should beat",
}


def _problem(seed: int):
  from flax import nnx

  problem = _compare.load_problem("whitened", seed)  # digits PCA-whitened, MLP 64-100-10 tanh
  x, y = jnp.asarray(problem.train[0]), jnp.asarray(problem.train[1])
  graphdef, _ = nnx.split(_tune.make_model(problem, seed), nnx.Param)

  def loss(p):
    logits = nnx.merge(graphdef, p)(x)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

  def params(s: int):
    return nnx.split(_tune.make_model(problem, s), nnx.Param)[1]

  return loss, params, int(x.shape[0])


def _run_rated(make, loss, p0, lr, budget: int):
  """``budget`` updates of a rate-driven method: one gradient each. Returns the loss curve."""
  tx = make(lr)

  def body(carry, _):
    p, s = carry
    v, g = jax.value_and_grad(loss)(p)
    u, s = tx.update(g, s, p, value=v)
    return (optax.apply_updates(p, u), s), v

  (p, _), curve = jax.lax.scan(body, (p0, tx.init(p0)), None, length=budget)
  return jnp.append(curve, loss(p))  # curve[k]: the loss after k gradient evaluations


def _run_linesearch(tx, loss, p0, budget: int):
  """Iterations of a line-search method until ``budget`` gradient evaluations are spent.

  Returns ``(evals, values)``: after iteration i, ``evals[i]`` evaluations (the line search's
  included) were spent and the loss was ``values[i]``; unused slots hold ``-1`` and ``nan``.
  """
  vg = optax.value_and_grad_from_state(loss)

  def cond(c):
    return (c[2] < budget) & (c[3] < budget)

  def body(c):
    p, s, evals, i, ev, vals = c
    v, g = vg(p, state=s)
    u, s = tx.update(g, s, p, value=v, grad=g, value_fn=loss)
    evals = evals + optax.tree.get(s, "num_linesearch_steps")
    return (
      optax.apply_updates(p, u),
      s,
      evals,
      i + 1,
      ev.at[i].set(evals),
      vals.at[i].set(optax.tree.get(s, "value")),
    )

  ev0 = jnp.full((budget,), -1, jnp.int32)
  v0 = jnp.full((budget,), jnp.nan, jnp.float32)
  init = (p0, tx.init(p0), jnp.ones([], jnp.int32), jnp.zeros([], jnp.int32), ev0, v0)
  *_, ev, vals = jax.lax.while_loop(cond, body, init)
  return ev, vals


def _curve_on_evals(ev, vals, v_start, budget: int) -> np.ndarray:
  """Best loss reached after k = 0..budget evaluations (a step function of the evaluations)."""
  out = np.full(budget + 1, float(v_start))
  ev, vals = np.asarray(ev), np.asarray(vals)
  for e, v in zip(ev[ev > 0], vals[ev > 0], strict=True):
    out[min(int(e), budget) :] = np.minimum(out[min(int(e), budget) :], v)
  return out


def _seconds(fn, *args) -> float:
  """Wall-clock seconds of one call of an already compiled ``fn``."""
  t0 = time.perf_counter()
  jax.block_until_ready(fn(*args))
  return time.perf_counter() - t0


def _first(curve: np.ndarray, target: float) -> int | None:
  hit = np.flatnonzero(curve <= target)
  return int(hit[0]) if hit.size else None


def demo(out: Path, steps: int | None = None, seed: int = 0) -> dict:
  """``nnml-optax demo full-batch``: the race with a budget of ``steps`` gradient evaluations."""
  return run_demo(out, seed=seed, budget=steps)


def run_demo(
  out_dir: Path | str,
  *,
  seed: int = 0,
  quick: bool = False,
  budget: int | None = None,
  target: float = 1e-3,
) -> dict:
  """Runs the race, prints the table, writes ``full-batch.png`` into ``out_dir``; returns the
  numbers (per method: chosen rate, mean final loss, evaluations and seconds to ``target``)."""
  out = Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  budget = budget or (40 if quick else 200)
  seeds = (seed, seed + 1)
  loss, params_of, n_train = _problem(seed)
  p_seeds = [params_of(s) for s in seeds]
  results: dict[str, dict] = {}

  for name, (make, grid) in _RATED.items():
    grid = grid[-2:] if quick else grid
    fn = jax.jit(lambda p, lr, make=make: _run_rated(make, loss, p, lr, budget))
    curves = np.asarray([[fn(p0, jnp.float32(lr)) for p0 in p_seeds] for lr in grid])
    finals = np.where(np.isfinite(curves[:, :, -1]), curves[:, :, -1], np.inf).mean(axis=1)
    k = int(np.argmin(finals))
    wall = _seconds(fn, p_seeds[0], jnp.float32(grid[k]))
    results[name] = dict(rate=grid[k], curves=curves[k], wall_s=wall, grid=list(grid))

  for name, factory in _LINESEARCH.items():
    fn = jax.jit(lambda p, factory=factory: _run_linesearch(factory(), loss, p, budget))
    curves = []
    for p0 in p_seeds:
      evals, values = fn(p0)
      curves.append(_curve_on_evals(evals, values, loss(p0), budget))
    results[name] = dict(
      rate=None, curves=np.stack(curves), wall_s=_seconds(fn, p_seeds[0]), grid=[]
    )

  summary = {}
  for name, r in results.items():
    mean = np.nanmean(r["curves"], axis=0)
    reach = [h for h in (_first(c, target) for c in r["curves"]) if h is not None]
    summary[name] = {
      "rate": r["rate"],
      "grid": r["grid"],
      "final_loss": float(mean[-1]),
      "evals_to_target": float(np.mean(reach)) if len(reach) == len(r["curves"]) else None,
      "wall_s": r["wall_s"],
      "prediction": PREDICTION[name],
      "curve": mean.tolist(),
    }
  gd = summary["gradient descent"]["evals_to_target"]
  head = (
    f"{'method':26s} {'rate':>6s} {'loss @' + str(budget):>10s} {'evals to ' + format(target, 'g'):>13s}"
    f" {'x GD':>6s} {'wall s':>7s}  the summary slide predicts"
  )
  lines = [head, "-" * len(head)]
  for name, s in summary.items():
    e = s["evals_to_target"]
    ratio = "-" if e is None or gd is None else f"{e / gd:.2f}"
    rate = "-" if s["rate"] is None else f"{s['rate']:g}"
    lines.append(
      f"{name:26s} {rate:>6s} {s['final_loss']:10.2e} {'-' if e is None else f'{e:.0f}':>13s} "
      f"{ratio:>6s} {s['wall_s']:7.2f}  {s['prediction']}"
    )
  text = "\n".join(lines)
  print(text)
  print(
    f"\ndigits MLP, full batch ({n_train} examples), {budget} gradient evaluations each, "
    f"mean of seeds {list(seeds)}; wall s: one run of the whole budget, compiled, seed {seed}"
  )
  _plot(summary, out / "full-batch.png", budget, n_train)
  return {
    "budget": budget,
    "target": target,
    "seeds": list(seeds),
    "table": text,
    "methods": summary,
  }


def _plot(summary: dict, path: Path, budget: int, n_train: int) -> None:
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(figsize=(7, 4.5))
  for name, s in summary.items():
    label = name if s["rate"] is None else f"{name} (rate {s['rate']:g})"
    ax.plot(np.arange(budget + 1), s["curve"], label=label)
  ax.set_yscale("log")
  ax.set_xlabel("gradient evaluations (full batch, line-search evaluations included)")
  ax.set_ylabel("training loss (cross-entropy)")
  ax.set_title(f"full-batch methods on the digits MLP ({n_train} training examples)")
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)
