"""The lecture's methods racing each other on one Flax NNX MLP (the library part of
``nnml-optax compare``; the CLI in :mod:`nnml_optax.cli` only parses arguments and prints).

Uses only the public API of nnml_optax plus flax (and matplotlib for the figure), both from the
``examples`` extra.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import nnml_optax as nn


@dataclasses.dataclass(frozen=True)
class Method:
  """One contestant: how to build its optimizer and how to feed it."""

  name: str
  help: str
  make: Callable[[int, int], optax.GradientTransformation]  # (total steps, steps per epoch) -> tx
  full_batch: bool = False
  value: bool = False  # update(..., value=loss)
  grad_fn: bool = False  # update(..., grad_fn=...)
  plateau: bool = False  # nn.update_plateau(state, validation loss) once per epoch


def _methods() -> dict[str, Method]:
  ms = [
    Method("sgd", "mini-batch SGD, lr 0.1", lambda n, e: nn.sgd(0.1)),
    Method(
      "momentum",
      "classical momentum, lr 0.05, momentum ramped 0.5 -> 0.9 over the first 20% of steps",
      lambda n, e: nn.momentum(
        0.05, nn.schedules.momentum_ramp(0.5, 0.9, transition_steps=max(1, n // 5))
      ),
    ),
    Method(
      "nesterov",
      "Nesterov, lr 0.05, Sutskever's schedule mu_max=0.99 (period n/20), final 10% at 0.9",
      lambda n, e: nn.nesterov(
        0.05,
        nn.schedules.sutskever_momentum(
          0.99, period=max(1, n // 20), total_steps=n, final_steps=n // 10
        ),
      ),
    ),
    Method(
      "local_gains",
      "full batch, lr 0.5, Hinton's gains (+0.05, x0.95, [0.1, 10])",
      lambda n, e: nn.local_gains(0.5),
      full_batch=True,
    ),
    Method(
      "local_gains_momentum",
      "full batch, lr 0.3, gains with momentum 0.9 (Jacobs: a gain grows while g opposes v)",
      lambda n, e: nn.local_gains(0.3, momentum=0.9),
      full_batch=True,
    ),
    Method(
      "irprop-",
      "full batch iRprop- (torch's Rprop), initial step 0.01",
      lambda n, e: nn.rprop(0.01, variant="irprop-"),
      full_batch=True,
    ),
    Method("rmsprop", "rmsprop, lr 0.002, decay 0.9", lambda n, e: nn.rmsprop(0.002)),
    Method(
      "rmsprop_nesterov",
      "rmsprop + Nesterov (RMS divides the correction), lr 0.001, momentum 0.9",
      lambda n, e: nn.rmsprop(0.001, momentum=0.9, nesterov=True),
    ),
    Method(
      "vsgd",
      "vSGD-fd: no learning rate to tune (finite-difference curvature on the same batch)",
      lambda n, e: nn.vsgd(),
      grad_fn=True,
    ),
    Method(
      "bold_driver",
      "full batch gradient descent, lr 0.5, with the bold driver (x1.1 / x0.5 and undo)",
      lambda n, e: optax.chain(nn.sgd(0.5), nn.bold_driver()),
      full_batch=True,
      value=True,
    ),
    Method(
      "plateau",
      "mini-batch SGD, lr 0.2, x0.5 when the validation loss stalls for 2 epochs",
      lambda n, e: optax.chain(nn.sgd(0.2), nn.reduce_on_plateau(0.5, patience=2)),
      plateau=True,
    ),
  ]
  return {m.name: m for m in ms}


METHODS = _methods()
DEFAULT_STEPS = 1500
DEFAULT_BATCH = 100
DEFAULT_TARGET = 0.01


def make_model(seed: int, hidden: int = 100, d_in: int = 64, classes: int = 10):
  """A fan-in initialised tanh MLP (lecture 6b: small random weights ~ 1/sqrt(fan-in))."""
  from flax import nnx

  class MLP(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
      self.hidden = nnx.Linear(d_in, hidden, kernel_init=nn.init.fan_in(), rngs=rngs)
      self.out = nnx.Linear(hidden, classes, kernel_init=nn.init.fan_in(), rngs=rngs)

    def __call__(self, x):
      return self.out(jnp.tanh(self.hidden(x)))

  return MLP(nnx.Rngs(seed))


def load_data(seed: int, method: str = "pca"):
  """Digits, whitened per lecture 6b (default PCA keeping 99% of the variance; fit on train only)."""
  (xtr, ytr), (xva, yva), (xte, yte) = nn.data.load_digits(seed=seed)
  w = nn.preprocessing.fit_whitening(xtr, method, keep=0.99 if method == "pca" else None)
  f = jax.jit(lambda x: nn.preprocessing.whiten(w, x))
  return (np.asarray(f(xtr)), ytr), (np.asarray(f(xva)), yva), (np.asarray(f(xte)), yte)


def state_bytes_per_param(state, params) -> float:
  n = sum(x.size for x in jax.tree.leaves(params))
  b = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(state) if hasattr(x, "dtype"))
  return b / n


def train_one(
  method: Method,
  data,
  *,
  steps: int,
  batch_size: int,
  seed: int,
  target: float,
  eval_every: int,
  progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
  from flax import nnx

  (xtr, ytr), (xva, yva), (xte, yte) = data
  model = make_model(seed, d_in=xtr.shape[1])
  graphdef, params = nnx.split(model, nnx.Param)
  steps_per_epoch = max(1, math.ceil(len(xtr) / batch_size))
  tx = method.make(steps, steps_per_epoch)
  opt_state = tx.init(params)

  def loss_fn(p, x, y):
    logits = nnx.merge(graphdef, p)(x)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

  @jax.jit
  def step(p, s, x, y):
    loss, g = jax.value_and_grad(loss_fn)(p, x, y)
    extra = {}
    if method.value:
      extra["value"] = loss
    if method.grad_fn:
      extra["grad_fn"] = lambda q: jax.grad(loss_fn)(q, x, y)
    u, s = tx.update(g, s, p, **extra)
    return optax.apply_updates(p, u), s, loss

  @jax.jit
  def evaluate(p, x, y):
    logits = nnx.merge(graphdef, p)(x)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss, jnp.mean(jnp.argmax(logits, -1) == y)

  plateau = jax.jit(nn.update_plateau) if method.plateau else None
  key = jax.random.key(seed)
  xtr_j, ytr_j = jnp.asarray(xtr), jnp.asarray(ytr)

  def batches():
    epoch = 0
    while True:
      yield from nn.data.minibatches(
        jax.random.fold_in(key, epoch),
        xtr,
        ytr,
        batch_size,
        balanced=True,
        drop_remainder=True,
      )
      epoch += 1
      yield None  # end of epoch marker

  curve_steps, train_loss, val_acc = [], [], []
  reached = None
  it = batches()
  t0 = time.perf_counter()
  for t in range(1, steps + 1):
    if method.full_batch:
      xb, yb = xtr_j, ytr_j
    else:
      b = next(it)
      if b is None:  # an epoch ended: the plateau rule sees the validation loss
        if plateau is not None:
          vloss, _ = evaluate(params, xva, yva)
          opt_state = plateau(opt_state, vloss)
        b = next(it)
      xb, yb = b
    params, opt_state, _ = step(params, opt_state, xb, yb)
    if t % eval_every == 0 or t == steps or t == 1:
      tl, _ = evaluate(params, xtr_j, ytr_j)
      _, va = evaluate(params, xva, yva)
      tl, va = float(tl), float(va)
      curve_steps.append(t)
      train_loss.append(tl)
      val_acc.append(va)
      if reached is None and tl <= target:
        reached = t
      if progress is not None:
        progress(t)
  wall = time.perf_counter() - t0
  final_loss, _ = evaluate(params, xtr_j, ytr_j)
  _, vacc = evaluate(params, xva, yva)
  _, tacc = evaluate(params, xte, yte)
  return {
    "method": method.name,
    "description": method.help,
    "final_train_loss": float(final_loss),
    "val_accuracy": float(vacc),
    "test_accuracy": float(tacc),
    "steps_to_target": reached,
    "wall_time_s": wall,
    "state_bytes_per_param": state_bytes_per_param(opt_state, params),
    "curve": {"step": curve_steps, "train_loss": train_loss, "val_accuracy": val_acc},
    "full_batch": method.full_batch,
  }


def plot(results: list[dict], path, title: str) -> None:
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  # One colour per contestant, the same in every run whatever subset is plotted (tab10, then black:
  # the default cycle repeats after ten).
  palette = [*plt.get_cmap("tab10").colors, "black"]
  names = list(METHODS)
  fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
  for i, r in enumerate(results):
    c = r["curve"]
    k = names.index(r["method"]) if r["method"] in names else i
    kw = dict(color=palette[k % len(palette)], label=r["method"])
    style = "--" if r["full_batch"] else "-"
    ax1.plot(c["step"], c["train_loss"], style, **kw)
    ax2.plot(c["step"], c["val_accuracy"], style, **kw)
  ax1.set_yscale("log")
  ax1.set_ylim(bottom=1e-5)  # full-batch methods reach round-off; keep the interesting range
  ax1.set_xlabel("update")
  ax1.set_ylabel("training loss (cross-entropy)")
  ax1.set_title("training loss (dashed: full batch)")
  ax2.set_xlabel("update")
  ax2.set_ylabel("validation accuracy")
  ax2.set_ylim(0.8, 1.0)
  ax2.set_title("validation accuracy")
  ax1.legend(fontsize=8, ncol=2)
  fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)


def table(results: list[dict], target: float) -> str:
  w = max([18, *(len(r["method"]) for r in results)])
  head = (
    f"{'method':{w}s} {'train loss':>10s} {'val acc':>8s} {'test acc':>8s} "
    f"{'steps to ' + format(target, 'g'):>14s} {'wall s':>7s} {'state B/param':>13s}"
  )
  lines = [head, "-" * len(head)]
  for r in results:
    reached = "-" if r["steps_to_target"] is None else str(r["steps_to_target"])
    lines.append(
      f"{r['method']:{w}s} {r['final_train_loss']:10.4f} {r['val_accuracy']:8.4f} "
      f"{r['test_accuracy']:8.4f} {reached:>14s} {r['wall_time_s']:7.1f} "
      f"{r['state_bytes_per_param']:13.2f}"
    )
  return "\n".join(lines)
