"""The race behind ``nnml-optax compare``: the contestants, the problems, the table and the figure.

Every method is tuned the same way (``_tune.tune``: a grid of learning rates, and of the plateau /
driver settings where they apply, x seeds, one vmapped run) for the same budget in examples seen.
Uses only the public API of nnml_optax, plus flax and matplotlib (the ``examples`` extra).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import optax

import nnml_optax as nn

from ._tune import Method, Problem, at_edge, to_target


def _methods() -> dict[str, Method]:
  lr = lambda *v: {"lr": v}  # noqa: E731
  ms = [
    Method("sgd", "mini-batch SGD", lambda h, n: nn.sgd(h["lr"]), lr(0.3, 1.0, 3.0, 10.0, 30.0)),
    Method(
      "momentum",
      "classical momentum, ramped 0.5 -> 0.9 over the first 20% of updates",
      lambda h, n: nn.momentum(
        h["lr"], nn.schedules.momentum_ramp(0.5, 0.9, transition_steps=max(1, n // 5))
      ),
      lr(0.1, 0.3, 1.0, 3.0, 10.0),
    ),
    Method(
      "nesterov",
      "Nesterov, Sutskever's schedule mu_max 0.99 (period n/20), final 10% of updates at 0.9",
      lambda h, n: nn.nesterov(
        h["lr"],
        nn.schedules.sutskever_momentum(
          0.99, period=max(1, n // 20), total_steps=n, final_steps=n // 10
        ),
      ),
      lr(0.1, 0.3, 1.0, 3.0, 10.0),
    ),
    Method(
      "local_gains",
      "full batch, Hinton's gains (+0.05, x0.95, [0.1, 10])",
      lambda h, n: nn.local_gains(h["lr"]),
      lr(0.3, 1.0, 3.0, 10.0, 30.0),
      full_batch=True,
    ),
    Method(
      "local_gains_momentum",
      "full batch, gains with momentum 0.9 (Jacobs: a gain grows while g opposes v)",
      lambda h, n: nn.local_gains(h["lr"], momentum=0.9),
      lr(0.03, 0.1, 0.3, 1.0, 3.0),
      full_batch=True,
    ),
    Method(
      "irprop-",
      "full batch iRprop- (torch's Rprop); lr = initial step",
      lambda h, n: nn.rprop(h["lr"], variant="irprop-"),
      lr(0.003, 0.01, 0.03, 0.1, 0.3),
      full_batch=True,
    ),
    Method(
      "rmsprop",
      "rmsprop, decay 0.9",
      lambda h, n: nn.rmsprop(h["lr"]),
      lr(0.001, 0.003, 0.01, 0.03, 0.1),
    ),
    Method(
      "rmsprop_nesterov",
      "rmsprop + Nesterov momentum 0.9 (RMS divides the correction)",
      lambda h, n: nn.rmsprop(h["lr"], momentum=0.9, nesterov=True),
      lr(0.0003, 0.001, 0.003, 0.01, 0.03),
    ),
    Method(
      "vsgd",
      "vSGD-fd: no learning rate to tune (finite-difference curvature on the same batch)",
      lambda h, n: nn.vsgd(h["lr"]),
      lr(1.0),
      extra_args=("grad_fn",),
    ),
    Method(
      "bold_driver",
      "full batch gradient descent with the bold driver (x increase / x0.5 and undo)",
      lambda h, n: optax.chain(nn.sgd(h["lr"]), nn.bold_driver(h["increase"])),
      {"lr": (0.5, 2.0, 8.0), "increase": (1.05, 1.2)},
      full_batch=True,
      extra_args=("value",),
    ),
    Method(
      "plateau",
      "mini-batch SGD, x factor when the validation loss stalls for 2 epochs",
      lambda h, n: optax.chain(
        nn.sgd(h["lr"]), nn.reduce_on_plateau(h["factor"], patience=2, value_arg=None)
      ),
      {"lr": (0.3, 1.0, 3.0, 10.0), "factor": (0.5, 0.2)},
      plateau=True,
    ),
  ]
  return {m.name: m for m in ms}


METHODS = _methods()
PROBLEMS = ("whitened", "raw")
DEFAULT_BATCH = 100
DEFAULT_SEEDS = 2
# Per problem: the budget in epochs and the training loss counted as "reached".
BUDGET = {"whitened": (10.0, 0.01), "raw": (40.0, 0.1), "data": (10.0, 0.01)}


def whitened_problem(parts, name: str, title: str, classes: int) -> Problem:
  """PCA-whitened inputs (99% of the variance, fitted on the training part; lecture 6b) and the
  one-hidden-layer tanh MLP."""
  import jax

  (xtr, ytr), (xva, yva), test = parts
  w = nn.preprocessing.fit_whitening(xtr, "pca", keep=0.99)
  f = jax.jit(lambda x: nn.preprocessing.whiten(w, x))
  white = lambda x: np.asarray(f(x), np.float32)  # noqa: E731
  target = BUDGET["data" if name == "data" else "whitened"][1]
  return Problem(
    name,
    title,
    (white(xtr), ytr),
    (white(xva), yva),
    None if test is None else (white(test[0]), test[1]),
    classes,
    hidden=(100,),
    activation="tanh",
    target=target,
  )


def load_problem(name: str, seed: int) -> Problem:
  """``whitened``: digits PCA-whitened, MLP 64-100-10 tanh. ``raw``: the lecture's hard case,
  digits pixels / 16 (not centred, not decorrelated), deep logistic MLP 64-100-100-100-10."""
  parts = nn.data.load_digits(seed=seed)
  if name == "whitened":
    return whitened_problem(
      parts, "whitened", "digits, PCA-whitened (99% variance), MLP 64-100-10 tanh", 10
    )
  if name == "raw":
    scaled = tuple((np.asarray(x, np.float32) / 16.0, y) for x, y in parts)
    return Problem(
      "raw",
      "digits, raw pixels / 16, deep logistic MLP 64-100-100-100-10",
      scaled[0],
      scaled[1],
      scaled[2],
      10,
      hidden=(100, 100, 100),
      activation="logistic",
      target=BUDGET["raw"][1],
    )
  raise ValueError(f"problem must be one of {PROBLEMS}; got {name!r}")


_KEYS = {"x", "y", "x_val", "y_val", "x_test", "y_test"}


def load_npz(path, seed: int) -> Problem:
  """The user's classification data from an ``.npz`` (read with ``allow_pickle=False``).

  Arrays: ``x`` ``(n, d)`` real numbers, ``y`` ``(n,)`` integer labels in ``[0, classes)``;
  optional ``x_val``/``y_val`` (else 20% of ``x`` is held out, by ``seed``) and ``x_test``/
  ``y_test``. Raises ValueError with a message naming what is wrong.
  """
  import zipfile

  try:
    with open(path, "rb"):
      pass
    if not zipfile.is_zipfile(path):
      raise ValueError("is not an .npz archive (save one with numpy.savez(path, x=..., y=...))")
    with np.load(path, allow_pickle=False) as f:
      names = set(f.files)
      unknown = names - _KEYS
      if unknown:
        raise ValueError(
          f"unexpected array(s) {sorted(unknown)}; allowed: x, y, x_val, y_val, x_test, y_test"
        )
      missing = {"x", "y"} - names
      if missing:
        raise ValueError(f"missing array(s) {sorted(missing)} (found {sorted(names) or 'none'})")
      arrays = {}
      for k in sorted(names):
        try:
          arrays[k] = f[k]
        except ValueError as e:
          if "allow_pickle" in str(e):
            raise ValueError(
              f"array {k!r} holds Python objects (pickled); only numeric arrays are read"
            ) from None
          raise
  except ValueError:
    raise
  except OSError as e:
    raise ValueError(f"cannot be read ({e.strerror or e})") from None
  except Exception as e:  # zipfile.BadZipFile and friends: a corrupt archive
    raise ValueError(f"cannot be read as an .npz archive ({type(e).__name__}: {e})") from None
  for a, b in (("x_val", "y_val"), ("x_test", "y_test")):
    if (a in arrays) != (b in arrays):
      raise ValueError(f"{a} and {b} come together; got only {a if a in arrays else b}")
  d = None
  for k in ("x", "x_val", "x_test"):
    if k not in arrays:
      continue
    x = arrays[k]
    if x.dtype.kind not in "iuf":
      raise ValueError(f"{k} must hold real numbers (int or float); got dtype {x.dtype}")
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
      raise ValueError(f"{k} must be 2-D (examples, features), non-empty; got shape {x.shape}")
    if d is not None and x.shape[1] != d:
      raise ValueError(f"{k} has {x.shape[1]} features; x has {d}")
    d = x.shape[1]
    bad = ~np.isfinite(x)
    if bad.any():
      i, j = np.argwhere(bad)[0]
      raise ValueError(f"{k} has {int(bad.sum())} non-finite entries (first at [{i}, {j}])")
  for k in ("y", "y_val", "y_test"):
    if k not in arrays:
      continue
    y, x = arrays[k], arrays["x" + k[1:]]
    if y.dtype.kind not in "iu":
      raise ValueError(f"{k} must hold integer class labels; got dtype {y.dtype}")
    if y.shape != (x.shape[0],):
      raise ValueError(f"{k} must have shape ({x.shape[0]},) like x{k[1:]}'s rows; got {y.shape}")
    if y.min() < 0:
      raise ValueError(f"{k} holds a negative label ({int(y.min())}); labels are 0, 1, ...")
  classes = int(arrays["y"].max()) + 1
  if classes < 2:
    raise ValueError("y must hold at least 2 classes")
  for k in ("y_val", "y_test"):
    if k in arrays and int(arrays[k].max()) >= classes:
      raise ValueError(f"{k} holds label {int(arrays[k].max())}, unseen in y (0..{classes - 1})")
  x, y = arrays["x"].astype(np.float32), arrays["y"].astype(np.int32)
  if "x_val" in arrays:
    train, val = (x, y), (arrays["x_val"].astype(np.float32), arrays["y_val"].astype(np.int32))
  else:
    if len(x) < 10:
      raise ValueError(f"x needs at least 10 examples to hold out a validation part; got {len(x)}")
    perm = np.random.default_rng(seed).permutation(len(x))
    k = max(1, round(0.2 * len(x)))
    val, train = (x[perm[:k]], y[perm[:k]]), (x[perm[k:]], y[perm[k:]])
  test = None
  if "x_test" in arrays:
    test = (arrays["x_test"].astype(np.float32), arrays["y_test"].astype(np.int32))
  if len(train[0]) < 2:
    raise ValueError("x needs at least 2 training examples")
  title = f"{path}: {len(train[0])} training examples, {d} features, {classes} classes"
  return whitened_problem((train, val, test), "data", title, classes)


# ---------------------------------------------------------------- summarising a tuned race


def summarize(method: Method, problem: Problem, r: Mapping[str, Any]) -> dict[str, Any]:
  """One table row (and curve) from ``_tune.tune``'s result: the chosen grid point over seeds."""
  g = r["chosen"]
  tl, va = r["train_loss"][g], r["val_accuracy"][g]  # (S, K)
  ev = r["eval_updates"]
  finals = tl[:, -1]
  hits = [to_target(tl[s], ev, problem.target) for s in range(tl.shape[0])]
  reached = [h for h in hits if h is not None]
  n = problem.n_train
  chosen = r["points"][g]
  with np.errstate(invalid="ignore"):
    curve = {
      "updates": ev.tolist(),
      "examples": (ev * r["per_update"]).tolist(),
      "train_loss_mean": _clean(np.mean(tl, 0)),
      "train_loss_min": _clean(np.nanmin(np.where(np.isfinite(tl), tl, np.nan), 0)),
      "train_loss_max": _clean(np.max(tl, 0)),
      "val_accuracy_mean": _clean(np.mean(va, 0)),
      "val_accuracy_min": _clean(np.min(va, 0)),
      "val_accuracy_max": _clean(np.max(va, 0)),
    }
  grid = []
  for i, pt in enumerate(r["points"]):
    f = r["train_loss"][i, :, -1]
    hs = [to_target(r["train_loss"][i, s], ev, problem.target) for s in range(len(f))]
    grid.append(
      {
        **pt,
        "final_train_loss_mean": _num(np.mean(f)),
        "updates_to_target": hs,
      }
    )
  return {
    "method": method.name,
    "description": method.help,
    "full_batch": method.full_batch,
    "hypers": chosen,
    "at_grid_edge": at_edge(method, chosen),
    "seeds": list(r["seeds"]),
    "updates": r["updates"],
    "examples_per_update": r["per_update"],
    "epochs": r["updates"] * r["per_update"] / n,
    "final_train_loss": {
      "mean": _num(np.mean(finals)),
      "min": _num(np.min(finals)),
      "max": _num(np.max(finals)),
    },
    "val_accuracy": _num(np.mean(va[:, -1])),
    "test_accuracy": _num(np.nanmean(r["test_accuracy"][g]))
    if np.isfinite(r["test_accuracy"][g]).any()
    else None,
    "updates_to_target": hits,  # per seed
    "epochs_to_target": (
      None if len(reached) < len(hits) else float(np.mean(reached)) * r["per_update"] / n
    ),
    "diverged": bool(not np.all(np.isfinite(tl))),
    "spike": _spike(np.mean(tl, 0)),
    "state_bytes_per_param": r["state_bytes_per_param"],
    "seconds_compile": r["seconds_compile"],
    "seconds_train": r["seconds_train"],
    "grid": grid,
    "curve": curve,
  }


def _num(x) -> float | None:
  x = float(x)
  return x if math.isfinite(x) else None


def _clean(a: np.ndarray) -> list[float | None]:
  return [_num(v) for v in a]


def _spike(mean_loss: np.ndarray) -> int | None:
  """Index of the first evaluation where the loss jumps above 10x its best so far (None: none)."""
  best = np.inf
  for i, v in enumerate(mean_loss):
    if not np.isfinite(v):
      return None  # a divergence, reported as such
    if i > 0 and v > 10 * best:
      return i
    best = min(best, v)
  return None


def x_of(row: Mapping[str, Any], x: str, n_train: int) -> list[float]:
  """The row's evaluation points in the unit of ``--x``: epochs, updates or seconds."""
  c = row["curve"]
  if x == "updates":
    return [float(v) for v in c["updates"]]
  if x == "seconds":
    return [v * row["seconds_per_update"] for v in c["updates"]]
  return [v / n_train for v in c["examples"]]


def to_target_in(row: Mapping[str, Any], x: str, n_train: int) -> float | None:
  """The mean over seeds of the first evaluation at the target, in the unit of ``--x`` (None when
  a seed does not reach it)."""
  hits = row["updates_to_target"]
  if any(h is None for h in hits):
    return None
  u = float(np.mean(hits))
  if x == "updates":
    return u
  if x == "seconds":
    return u * row["seconds_per_update"]
  return u * row["examples_per_update"] / n_train


UNITS = {"epochs": "epochs", "updates": "updates", "seconds": "s"}


def _hypers(h: Mapping[str, float]) -> str:
  return " ".join(f"{k}={v:g}" for k, v in h.items())


def table(rows: Sequence[Mapping[str, Any]], problem: Problem, x: str) -> str:
  """The results of one problem as a text table (mean over seeds; final loss min-max)."""
  unit = UNITS[x]
  head = (
    f"{'method':26s} {'chosen':22s} {'final train loss [min, max]':31s} {'val acc':>7s} "
    f"{'test acc':>8s} {unit + ' to ' + format(problem.target, 'g'):>16s}  notes"
  )
  lines = [f"{problem.name}: {problem.title}", head, "-" * len(head)]
  for r in rows:
    f = r["final_train_loss"]
    loss = (
      "diverged" if f["mean"] is None else f"{f['mean']:9.3g} [{f['min']:.3g}, {_fmt(f['max'])}]"
    )
    hit = to_target_in(r, x, problem.n_train)
    reached = sum(h is not None for h in r["updates_to_target"])
    hit_s = f"{hit:.3g}" if hit is not None else f"- ({reached}/{len(r['seeds'])})"
    notes = []
    if r["full_batch"]:
      notes.append("full batch")
    if r["at_grid_edge"]:
      notes.append("edge of grid: " + ",".join(r["at_grid_edge"]))
    if r["diverged"]:
      notes.append("diverged")
    if r["spike"] is not None:
      notes.append("spike")
    ta = "-" if r["test_accuracy"] is None else f"{r['test_accuracy']:.4f}"
    va = "-" if r["val_accuracy"] is None else f"{r['val_accuracy']:.4f}"
    name = r["method"] + (" (fb)" if r["full_batch"] else "")
    lines.append(
      f"{name:26s} {_hypers(r['hypers']):22s} {loss:31s} {va:>7s} {ta:>8s} {hit_s:>16s}  "
      + "; ".join(notes)
    )
  return "\n".join(lines)


def _fmt(v) -> str:
  return "nan" if v is None else f"{v:.3g}"


def advice(problems: Sequence[Problem], rows_by: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
  """The lecture's summary slide (6e) beside what this run measured, in a few lines."""
  lines = [
    "Lecture 6e, summary slide: for small data sets (e.g. 10,000 cases) or bigger ones without",
    "much redundancy, use a full-batch method (conjugate gradient, L-BFGS, adaptive learning rates,",
    "Rprop); for big, redundant data sets use mini-batches (gradient descent with momentum,",
    "rmsprop, LeCun's latest recipe).",
    "Measured here (epochs of training examples to the target, mean over seeds):",
  ]
  for p in problems:
    rows = rows_by.get(p.name, [])
    done = [(to_target_in(r, "epochs", p.n_train), r) for r in rows]
    done = [(e, r) for e, r in done if e is not None]
    if not done:
      lines.append(f"  {p.name} ({p.n_train} training cases): no method reached loss {p.target:g}.")
      continue
    best_e, best = min(done, key=lambda t: t[0])
    fb = [(e, r) for e, r in done if r["full_batch"]]
    mb = [(e, r) for e, r in done if not r["full_batch"]]
    sgd = [e for e, r in done if r["method"] == "sgd"]
    parts = [f"fastest {best['method']} {best_e:.3g}"]
    if fb:
      e, r = min(fb, key=lambda t: t[0])
      parts.append(f"best full batch {r['method']} {e:.3g}")
    if mb:
      e, r = min(mb, key=lambda t: t[0])
      parts.append(f"best mini-batch {r['method']} {e:.3g}")
    parts.append(f"SGD {sgd[0]:.3g}" if sgd else "SGD did not reach it")
    verdict = (
      "a full-batch method was fastest: as the slide advises for a small data set"
      if best["full_batch"]
      else "a mini-batch method was fastest: the slide's full-batch advice does not show here"
    )
    lines.append(
      f"  {p.name} ({p.n_train} training cases, loss {p.target:g}): "
      + ", ".join(parts)
      + f"; {verdict}."
    )
  return "\n".join(lines)


# ---------------------------------------------------------------- the figure


def plot(rows: Sequence[Mapping[str, Any]], problem: Problem, x: str, path, title: str) -> None:
  """Training loss (log) and validation accuracy against ``x``: mean over seeds, min-max band;
  one legend for both panels; divergences (x) and spikes (^) marked."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  from matplotlib.lines import Line2D

  palette = [*map(tuple, plt.get_cmap("tab10")(np.arange(10)).tolist()), "black"]
  names = list(METHODS)
  fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5.2))
  positive = []
  for r in rows:
    for k in ("train_loss_min", "train_loss_mean"):
      positive += [v for v in r["curve"][k] if v is not None and v > 0]
  floor = min(positive) / 2 if positive else 1e-8
  handles = []
  for i, r in enumerate(rows):
    c = r["curve"]
    k = names.index(r["method"]) if r["method"] in names else i
    color = palette[k % len(palette)]
    xs = np.asarray(x_of(r, x, problem.n_train))
    arr = lambda key: np.asarray([np.nan if v is None else v for v in c[key]])  # noqa: E731
    mean, lo, hi = arr("train_loss_mean"), arr("train_loss_min"), arr("train_loss_max")
    mean, lo, hi = (np.where(a <= 0, floor, a) for a in (mean, lo, hi))  # 0 in float32: the floor
    style = "--" if r["full_batch"] else "-"
    (h,) = ax1.plot(xs, mean, style, color=color, lw=1.4)
    ax1.fill_between(xs, lo, hi, color=color, alpha=0.15, lw=0)
    va = arr("val_accuracy_mean")
    ax2.plot(xs, va, style, color=color, lw=1.4)
    ax2.fill_between(xs, arr("val_accuracy_min"), arr("val_accuracy_max"), color=color, alpha=0.15)
    if r["diverged"]:
      ok = np.flatnonzero(np.isfinite(mean))
      j = ok[-1] if ok.size else 0
      ax1.plot(xs[j], mean[j] if ok.size else floor, "x", color=color, ms=10, mew=2)
    if r["spike"] is not None:
      j = r["spike"]
      ax1.plot(xs[j], mean[j], "^", color=color, ms=9, mfc="none", mew=1.5)
    label = f"{r['method']} ({_hypers(r['hypers'])})" + (" full batch" if r["full_batch"] else "")
    handles.append((h, label))
  ax1.set_yscale("log")
  top = max([v for r in rows for v in r["curve"]["train_loss_max"] if v is not None] or [10.0])
  ax1.set_ylim(floor / 1.5, top * 1.5)
  xlabel = {
    "epochs": f"examples processed (epochs of {problem.n_train} training examples)",
    "updates": "updates",
    "seconds": "seconds (updates x measured time of one update)",
  }[x]
  for ax in (ax1, ax2):
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.3)
  ax1.axhline(problem.target, color="0.5", lw=0.8, ls=":")
  ax1.set_ylabel("training loss (cross-entropy, nats)")
  ax1.set_title(f"training loss (dotted: target {problem.target:g})")
  ax2.set_ylabel("validation accuracy")
  ax2.set_title("validation accuracy")
  lo_acc = min(
    [v for r in rows for v in r["curve"]["val_accuracy_min"][1:] if v is not None] or [0.0]
  )
  ax2.set_ylim(max(0.0, lo_acc - 0.02), 1.0)
  marks = [
    Line2D([], [], color="0.3", ls="-", label="solid: mini-batch; dashed: full batch"),
    Line2D([], [], color="0.3", marker="x", ls="", ms=8, label="x: diverged (NaN) after here"),
    Line2D([], [], color="0.3", marker="^", ls="", mfc="none", label="^: spike (>10x its best)"),
  ]
  fig.legend(
    [h for h, _ in handles] + marks,
    [lab for _, lab in handles] + [m.get_label() for m in marks],
    loc="lower center",
    ncol=3,
    fontsize=8,
    frameon=False,
  )
  fig.suptitle(title + "\nlines: mean over seeds; bands: min-max", fontsize=10)
  fig.tight_layout(rect=(0, 0.06 + 0.028 * math.ceil((len(handles) + 3) / 3), 1, 1))
  fig.savefig(path, dpi=90)
  plt.close(fig)
