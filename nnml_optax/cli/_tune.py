"""A fair race: one method over a grid of hyperparameters x seeds, as one vmapped, jitted run.

Every run of a method (each grid point, each seed) trains the same Flax NNX MLP for the same budget
in *examples seen*: a mini-batch update costs ``batch_size`` examples, a full-batch update the whole
training set. The grid point with the best training loss is chosen (``pick``). Used by
``nnml-optax compare`` and by the demos that race full-batch methods.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import nnml_optax as nn

Hypers = Mapping[str, jax.Array]
EXTRA_ARGS = ("value", "grad", "value_fn", "grad_fn")


@dataclasses.dataclass(frozen=True)
class Method:
  """One contestant.

  Attributes:
    name: short name (a table row, a legend entry).
    help: one line: what it is and what its grid searches.
    make: ``make(hypers, updates) -> optax.GradientTransformation``; ``hypers`` maps every key of
      ``grid`` to a (traced) float32 scalar; ``updates`` is the run's number of updates (for
      schedules).
    grid: the values searched per hyperparameter; their product is the grid.
    full_batch: each update sees the whole training set (and costs it in the budget).
    extra_args: keyword arguments the update reads, from ``EXTRA_ARGS``: ``value`` (the batch loss
      at the parameters), ``grad`` (the gradient), ``value_fn`` / ``grad_fn`` (the batch loss /
      gradient as a function of the parameters).
    plateau: call ``nnml_optax.update_plateau(state, validation loss)`` at each evaluation.
  """

  name: str
  help: str
  make: Callable[[Hypers, int], optax.GradientTransformation]
  grid: Mapping[str, Sequence[float]]
  full_batch: bool = False
  extra_args: tuple[str, ...] = ()
  plateau: bool = False

  def __post_init__(self):
    bad = set(self.extra_args) - set(EXTRA_ARGS)
    if bad:
      raise ValueError(f"extra_args must be among {EXTRA_ARGS}; got {sorted(bad)}")
    if not self.grid or any(len(v) == 0 for v in self.grid.values()):
      raise ValueError(f"grid of {self.name!r} needs at least one value per hyperparameter")

  def points(self) -> list[dict[str, float]]:
    """The grid as a list of ``{hyperparameter: value}``, in ``itertools.product`` order."""
    keys = list(self.grid)
    return [dict(zip(keys, vs, strict=True)) for vs in itertools.product(*self.grid.values())]


@dataclasses.dataclass(frozen=True)
class Problem:
  """A classification problem and the MLP that learns it.

  Attributes:
    name: short name (``whitened``, ``raw``, ``data``).
    title: one line for tables and figures.
    train, val: ``(x, y)``: float32 ``(n, d)`` inputs and int32 ``(n,)`` labels in ``[0, classes)``.
    test: as ``train``, or ``None``.
    classes: number of classes.
    hidden: hidden layer widths of the fan-in initialised MLP.
    activation: ``"tanh"`` or ``"logistic"``.
    target: the training loss at which "to target" is counted.
  """

  name: str
  title: str
  train: tuple[np.ndarray, np.ndarray]
  val: tuple[np.ndarray, np.ndarray]
  test: tuple[np.ndarray, np.ndarray] | None
  classes: int
  hidden: tuple[int, ...] = (100,)
  activation: str = "tanh"
  target: float = 0.01

  @property
  def n_train(self) -> int:
    return len(self.train[0])

  @property
  def architecture(self) -> str:
    sizes = (self.train[0].shape[1], *self.hidden, self.classes)
    return "-".join(map(str, sizes)) + f" {self.activation}"


_ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
  "tanh": jnp.tanh,
  "logistic": jax.nn.sigmoid,
}


def make_model(problem: Problem, seed: int):
  """The problem's Flax NNX MLP, fan-in initialised (lecture 6b), zero biases."""
  from flax import nnx

  act = _ACTIVATIONS[problem.activation]
  sizes = (problem.train[0].shape[1], *problem.hidden, problem.classes)

  class MLP(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
      self.layers = nnx.List(
        [
          nnx.Linear(a, b, kernel_init=nn.init.fan_in(), rngs=rngs)
          for a, b in itertools.pairwise(sizes)
        ]
      )

    def __call__(self, x):
      for layer in self.layers[:-1]:
        x = act(layer(x))
      return self.layers[-1](x)

  return MLP(nnx.Rngs(seed))


@dataclasses.dataclass(frozen=True)
class Plan:
  """How a budget of examples becomes updates for one method.

  ``updates`` updates of ``per_update`` examples each, evaluated every ``chunk`` updates (about
  once per epoch, at most ``MAX_EVALS`` times) and after the last one.
  """

  updates: int
  per_update: int
  chunk: int

  @property
  def evals(self) -> int:
    return math.ceil(self.updates / self.chunk)

  def eval_updates(self) -> np.ndarray:
    """Updates done at each evaluation, 0 (the initial point) first."""
    return np.minimum(np.arange(self.evals + 1) * self.chunk, self.updates)


MAX_EVALS = 200


def plan(problem: Problem, method: Method, *, epochs: float, batch_size: int) -> Plan:
  """The updates that fit a budget of ``epochs * n_train`` examples.

  Every method sees at most the budget (a full-batch method at least one update, even when one
  update is over the budget; a mini-batch method at least one mini-batch).
  """
  n = problem.n_train
  per = n if method.full_batch else batch_size
  updates = max(1, math.floor(epochs * n / per + 1e-9))
  chunk = 1 if method.full_batch else math.ceil(n / batch_size)
  chunk = min(max(chunk, math.ceil(updates / MAX_EVALS)), updates)
  return Plan(updates=updates, per_update=per, chunk=chunk)


def _index_stream(seed: int, n: int, updates: int, batch: int) -> np.ndarray:
  """Mini-batch indices ``(updates, batch)``: fresh shuffles of ``range(n)`` laid end to end."""
  rng = np.random.default_rng(seed)
  need = updates * batch
  perms = [rng.permutation(n) for _ in range(math.ceil(need / n))]
  return np.concatenate(perms)[:need].reshape(updates, batch).astype(np.int32)


def tune(
  method: Method,
  problem: Problem,
  *,
  epochs: float,
  batch_size: int,
  seeds: Sequence[int],
) -> dict[str, Any]:
  """Trains ``method`` at every grid point x seed, as one ``jax.vmap``-ed, jitted run.

  Args:
    method: the contestant, with its grid.
    problem: the data and the MLP.
    epochs: the budget, in passes over the training set (examples seen / ``n_train``); > 0.
    batch_size: examples per mini-batch update, in ``[1, n_train]`` (ignored when full batch).
    seeds: model initialisation and mini-batch order, one run per seed (the data split is fixed).

  Returns:
    A dict of numpy arrays and numbers: ``points`` (the grid), ``seeds``, ``updates``,
    ``per_update`` (examples per update), ``eval_updates`` ``(K,)`` (updates done at each
    evaluation, 0 first), ``train_loss`` and ``val_accuracy`` ``(G, S, K)``, ``test_accuracy``
    ``(G, S)`` (NaN without a test set), ``state_bytes_per_param``, ``seconds_compile`` (set-up,
    tracing and compiling), ``seconds_train`` and ``chosen``: the index of ``pick``'s grid point.

  Raises:
    ValueError: ``batch_size`` or ``epochs`` out of range.
  """
  return prepare(method, problem, epochs=epochs, batch_size=batch_size, seeds=seeds)()


def prepare(
  method: Method,
  problem: Problem,
  *,
  epochs: float,
  batch_size: int,
  seeds: Sequence[int],
) -> Callable[[], dict[str, Any]]:
  """``tune`` in two halves: traces and compiles now (safe in a worker thread, so that the next
  method compiles while this one trains), returns the function that trains and returns the dict."""
  from flax import nnx

  if not 1 <= batch_size <= problem.n_train:
    raise ValueError(f"batch_size must be in [1, {problem.n_train}]; got {batch_size}")
  if not epochs > 0:
    raise ValueError(f"epochs must be > 0; got {epochs}")
  t0 = time.perf_counter()
  p = plan(problem, method, epochs=epochs, batch_size=batch_size)
  points = method.points()
  seeds = list(seeds)
  models = [make_model(problem, s) for s in seeds]
  graphdef, _ = nnx.split(models[0], nnx.Param)
  params0 = jax.tree.map(lambda *xs: jnp.stack(xs), *[nnx.split(m, nnx.Param)[1] for m in models])
  xtr, ytr = (jnp.asarray(a) for a in problem.train)
  xva, yva = (jnp.asarray(a) for a in problem.val)
  xte, yte = (jnp.asarray(a) for a in problem.test) if problem.test is not None else (xva, yva)
  n = problem.n_train
  total = (
    p.evals * p.chunk
  )  # updates computed, the budget's and the dropped tail of the last interval
  if method.full_batch:
    idx = np.zeros((len(seeds), total, 0), np.int32)  # only the scan length is read
  else:
    idx = np.stack([_index_stream(s, n, total, batch_size) for s in seeds])
  idx = jnp.asarray(idx.reshape(len(seeds), p.evals, p.chunk, -1))

  def loss_fn(params, x, y):
    logits = nnx.merge(graphdef, params)(x)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

  def evaluate(params, x, y):
    logits = nnx.merge(graphdef, params)(x)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss, jnp.mean(jnp.argmax(logits, -1) == y)

  def run(hypers, params, ix, data):
    (xtr, ytr), (xva, yva), (xte, yte) = data  # arguments, not constants baked into the program
    tx = method.make(hypers, p.updates)
    state = tx.init(params)

    def step(carry, ti):
      params, state = carry
      t, i = ti
      x, y = (xtr, ytr) if method.full_batch else (xtr[i], ytr[i])
      loss, g = jax.value_and_grad(loss_fn)(params, x, y)
      extra = {
        "value": loss,
        "grad": g,
        "value_fn": lambda q: loss_fn(q, x, y),
        "grad_fn": lambda q: jax.grad(loss_fn)(q, x, y),
      }
      u, new_state = tx.update(g, state, params, **{k: extra[k] for k in method.extra_args})
      new = (optax.apply_updates(params, u), new_state)
      # the last interval may be partial: updates past the budget are computed and dropped
      return jax.tree.map(lambda a, b: jnp.where(t < p.updates, a, b), new, carry), None

    def interval(carry, tixs):
      carry, _ = jax.lax.scan(step, carry, tixs)
      params, state = carry
      tl, _ = evaluate(params, xtr, ytr)
      vl, va = evaluate(params, xva, yva)
      if method.plateau:
        state = nn.update_plateau(state, vl)
      return (params, state), (tl, va)

    tl0, _ = evaluate(params, xtr, ytr)
    _, va0 = evaluate(params, xva, yva)
    ts = jnp.arange(p.evals * p.chunk, dtype=jnp.int32).reshape(p.evals, p.chunk)
    (params, state), (tl, va) = jax.lax.scan(interval, (params, state), (ts, ix))
    _, te = evaluate(params, xte, yte)
    return jnp.concatenate([tl0[None], tl]), jnp.concatenate([va0[None], va]), te, state

  hypers = {
    k: jnp.asarray([pt[k] for pt in points], jnp.float32) for k in method.grid
  }  # (G,) per hyperparameter
  over_seeds = jax.vmap(run, in_axes=(None, 0, 0, None))
  over_grid = jax.jit(jax.vmap(over_seeds, in_axes=(0, None, None, None)))
  data = ((xtr, ytr), (xva, yva), (xte, yte))
  compiled = over_grid.lower(hypers, params0, idx, data).compile()
  t2 = time.perf_counter()
  return lambda: _finish(
    method, problem, p, points, seeds, compiled, (hypers, params0, idx, data), t2 - t0
  )


def _finish(method, problem, p, points, seeds, compiled, args, seconds_compile) -> dict[str, Any]:
  t0 = time.perf_counter()
  tl, va, te, state = jax.block_until_ready(compiled(*args))
  params0 = args[1]
  one_state = jax.tree.map(lambda a: a[0, 0], state)
  one_params = jax.tree.map(lambda a: a[0], params0)
  nparams = sum(x.size for x in jax.tree.leaves(one_params))
  nbytes = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(one_state))
  out = {
    "method": method.name,
    "points": points,
    "seeds": seeds,
    "updates": p.updates,
    "per_update": p.per_update,
    "eval_updates": p.eval_updates(),
    "train_loss": np.asarray(tl, np.float64),
    "val_accuracy": np.asarray(va, np.float64),
    "test_accuracy": (
      np.asarray(te, np.float64) if problem.test is not None else np.full(te.shape, np.nan)
    ),
    "state_bytes_per_param": nbytes / nparams,
    "seconds_compile": seconds_compile,
    "seconds_train": time.perf_counter() - t0,
  }
  out["chosen"] = pick(out, problem.target)
  return out


def to_target(curve: np.ndarray, eval_updates: np.ndarray, target: float) -> int | None:
  """Updates done at the first evaluation whose training loss is <= ``target`` (None: never)."""
  hit = np.flatnonzero(curve <= target)
  return None if hit.size == 0 else int(eval_updates[hit[0]])


def pick(result: Mapping[str, Any], target: float) -> int:
  """The grid point with the best training loss over the seeds.

  Best: every seed reaches ``target`` and the mean number of updates to it is the smallest (ties go
  by the mean log final training loss); then, among the points where some seed does not reach it,
  the smallest mean log final training loss. A point where any seed ends non-finite comes last.
  """
  tl, ev = result["train_loss"], result["eval_updates"]
  keys = []
  for g in range(tl.shape[0]):
    final = tl[g, :, -1]
    if not np.all(np.isfinite(final)):
      keys.append((2, 0.0, 0.0, g))
      continue
    hits = [h for s in range(tl.shape[1]) if (h := to_target(tl[g, s], ev, target)) is not None]
    mean_log = float(np.mean(np.log(np.maximum(final, 1e-30))))
    if len(hits) == tl.shape[1]:
      keys.append((0, float(np.mean(hits)), mean_log, g))
    else:
      keys.append((1, 0.0, mean_log, g))
  return min(keys)[-1]


def at_edge(method: Method, chosen: Mapping[str, float]) -> list[str]:
  """The hyperparameters whose chosen value is the lowest or highest of a grid of >= 2 values."""
  return [k for k, vs in method.grid.items() if len(vs) >= 2 and chosen[k] in (min(vs), max(vs))]


def seconds_per_update(
  method: Method, problem: Problem, hypers: Mapping[str, float], *, batch_size: int, seed: int
) -> float:
  """Wall-clock seconds of one update of one model at ``hypers`` (jitted, after compiling; the
  median of 5 timings of 10 updates)."""
  from flax import nnx

  graphdef, params = nnx.split(make_model(problem, seed), nnx.Param)
  tx = method.make({k: jnp.float32(v) for k, v in hypers.items()}, 10)
  state = tx.init(params)
  xtr, ytr = (jnp.asarray(a) for a in problem.train)
  bs = problem.n_train if method.full_batch else batch_size
  x, y = xtr[:bs], ytr[:bs]

  def loss_fn(q):
    logits = nnx.merge(graphdef, q)(x)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

  @jax.jit
  def ten(params, state):
    def step(carry, _):
      params, state = carry
      loss, g = jax.value_and_grad(loss_fn)(params)
      extra = {"value": loss, "grad": g, "value_fn": loss_fn, "grad_fn": jax.grad(loss_fn)}
      u, state = tx.update(g, state, params, **{k: extra[k] for k in method.extra_args})
      return (optax.apply_updates(params, u), state), None

    return jax.lax.scan(step, (params, state), None, length=10)[0]

  jax.block_until_ready(ten(params, state))
  times = []
  for _ in range(5):
    t = time.perf_counter()
    jax.block_until_ready(ten(params, state))
    times.append((time.perf_counter() - t) / 10)
  return float(np.median(times))
