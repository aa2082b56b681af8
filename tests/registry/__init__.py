"""The registry every public transform and alias of nnml_optax joins with one line.

Each technique has a module in this package (``tests/registry/<technique>.py``) with a list
``ENTRIES`` of :class:`Entry`; this ``__init__`` discovers them all (no central list to edit), and
``tests/test_registry.py`` / ``tests/test_sharding.py`` cross every entry with every check.

One line, e.g.::

    E("momentum", nnml_optax.momentum, dict(learning_rate=0.05, momentum=0.9), lr=0.001),
    E("scale_by_rms", nnml_optax.scale_by_rms, dict(decay=0.9), lr=0.01),      # a direction
    E("rprop+", nnml_optax.rprop, dict(learning_rate=0.01, variant="irprop+"), extra=VALUE),

The zoo runs the entry itself (``make``), with ``lr`` as its learning rate: passed as
``learning_rate`` to an alias, chained after a direction.

Fields of :class:`Entry`:
  name: unique test id.
  factory: the public function.
  kwargs: the arguments used everywhere; every ``float`` among them is also tried as a schedule and
    under ``optax.inject_hyperparams`` (unless listed in ``fixed``).
  extra: ``(loss_fn, params) -> dict`` of extra ``update`` arguments (``VALUE``, ``GRAD_FN``, ...).
  lr: the zoo's learning rate: for a ``scale_by_*`` direction the rate chained after it, for an
    alias its ``learning_rate`` there.
  static: kwargs that ``inject_hyperparams`` must treat as static (ints...); bool and str kwargs
    are static without being listed.
  fixed: float kwargs that are documented as read once (not schedulable).
  zoo: ``() -> GradientTransformation`` to run on the zoo instead of the entry (for wrappers whose
    zoo settings cannot be expressed by ``lr``).
  zoo_steps: steps on each zoo problem.
  not_applicable: check name -> why that registry check cannot apply to this entry (the check is
    skipped with that reason; e.g. a line search's ``value_fn`` contract, as for ``optax.lbfgs``).
  zoo_tol: overrides of the per-problem tolerance (``{"rosenbrock": 1e-2}``), documented in a comment.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest


@dataclasses.dataclass(frozen=True)
class Entry:
  name: str
  factory: Callable[..., optax.GradientTransformation]
  kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  extra: Callable[[Callable, Any], dict] | None = None
  lr: float | None = None
  static: tuple[str, ...] = ()
  fixed: tuple[str, ...] = ()
  zoo: Callable[[], optax.GradientTransformation] | None = None
  zoo_steps: int = 2000
  zoo_tol: Mapping[str, float] = dataclasses.field(default_factory=dict)
  not_applicable: Mapping[str, str] = dataclasses.field(default_factory=dict)

  def make(self, **overrides) -> optax.GradientTransformation:
    return self.factory(**{**self.kwargs, **overrides})

  def static_args(self) -> tuple[str, ...]:
    """``static`` plus every bool and str kwarg (``inject_hyperparams`` would trace a bool)."""
    flags = [k for k, v in self.kwargs.items() if isinstance(v, bool | str)]
    return (*self.static, *(k for k in flags if k not in self.static))

  def float_hyperparams(self) -> list[str]:
    return [
      k
      for k, v in self.kwargs.items()
      if isinstance(v, float) and k not in self.fixed and k not in self.static_args()
    ]

  def extras(self, loss_fn, params) -> dict:
    return {} if self.extra is None else dict(self.extra(loss_fn, params))

  def zoo_optimizer(self) -> optax.GradientTransformation:
    if self.zoo is not None:
      return self.zoo()
    if self.lr is None:
      return self.make()
    if getattr(self.factory, "__name__", "").startswith("scale_by_"):  # a direction
      return optax.chain(self.make(), optax.scale_by_learning_rate(self.lr))
    return self.make(learning_rate=self.lr)

  def __repr__(self) -> str:  # short pytest ids
    return self.name


E = Entry


# ---------------------------------------------------------------------------------------------
# extra-argument builders
# ---------------------------------------------------------------------------------------------


def VALUE(loss_fn, params) -> dict:
  """``value=``: the loss at the current parameters (irprop+, bold driver, plateau...)."""
  return {"value": loss_fn(params)}


def GRAD_FN(loss_fn, params) -> dict:
  """``grad_fn=``: the gradient function on the same mini-batch (vSGD-fd)."""
  del params
  return {"grad_fn": jax.grad(loss_fn)}


# ---------------------------------------------------------------------------------------------
# the canonical small pytree and its separable loss
# ---------------------------------------------------------------------------------------------

SHAPES = {"w": (8, 3), "b": (3,), "s": (), "k": (2, 2, 4)}


def make_params(dtype=jnp.float32, seed: int = 0) -> dict:
  rng = np.random.default_rng(seed)
  return {k: jnp.asarray(rng.normal(size=s), dtype=dtype) for k, s in SHAPES.items()}


def _leaf_loss(x):
  c = 1.0 + (jnp.arange(x.size, dtype=jnp.float32).reshape(x.shape) % 3.0)
  xf = x.astype(jnp.float32)
  return 0.5 * jnp.sum(c * (xf - 0.5) ** 2)


def loss(params) -> jax.Array:
  """A separable quadratic: any subtree (masked, split) has the same per-leaf terms."""
  return sum((_leaf_loss(x) for x in jax.tree.leaves(params)), jnp.zeros([], jnp.float32))


def grads_of(params):
  g = jax.grad(loss)(params)
  return jax.tree.map(lambda gi, p: gi.astype(p.dtype), g, params)


# ---------------------------------------------------------------------------------------------
# the shared reference run
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Run:
  """The jitted reference run of an entry: ``updates[i]``, ``states[i]``, ``params[i]`` after
  step ``i + 1``; ``state0`` the initial state; ``traces`` how often the step was traced;
  ``step`` the compiled step, ``(params, state) -> (params, state, updates)``, for checks that
  continue a run from a state of their own."""

  updates: list
  states: list
  params: list
  state0: Any
  traces: int
  step: Any


_RUNS: dict[tuple[str, str], Run] = {}


def reference_run(entry: Entry, dtype=jnp.float32) -> Run:
  """``entry.make()`` for 3 steps of one jitted step on :func:`loss`, run once per entry and
  dtype in a test process and shared by the checks that compare against it (they only read it;
  :func:`group` keeps an entry's checks on one pytest-xdist worker)."""
  key = (entry.name, jnp.dtype(dtype).name)
  if key not in _RUNS:
    tx = entry.make()
    params = make_params(dtype)
    state0 = tx.init(params)
    traces = []

    @jax.jit
    def step(params, state):
      traces.append(1)
      u, state = tx.update(grads_of(params), state, params, **entry.extras(loss, params))
      return optax.apply_updates(params, u), state, u

    p, s, out = params, state0, Run([], [], [], state0, 0, step)
    for _ in range(3):
      p, s, u = step(p, s)
      out.updates.append(u)
      out.states.append(s)
      out.params.append(p)
    _RUNS[key] = dataclasses.replace(out, traces=len(traces))
  return _RUNS[key]


def group(entry: Entry) -> pytest.MarkDecorator:
  """The ``xdist_group`` of an entry's checks (``pytest -n 2 --dist loadgroup``: one worker)."""
  return pytest.mark.xdist_group(f"registry-{entry.name}")


# ---------------------------------------------------------------------------------------------
# the convergence zoo (optimistix-style): problem name -> (loss, initial params, tolerance)
# ---------------------------------------------------------------------------------------------


def _quadratic(p):
  return 0.5 * sum(jnp.sum(x**2) for x in jax.tree.leaves(p))


_H = jnp.logspace(0.0, 2.0, 8)  # curvatures 1..100: condition number 100


def _ill_conditioned(p):
  return 0.5 * jnp.sum(_H * p["x"] ** 2)


def _rosenbrock(p):
  x, y = p["x"], p["y"]
  return (1.0 - x) ** 2 + 100.0 * (y - x**2) ** 2


ZOO: dict[str, tuple[Callable, Callable[[], Any], float]] = {
  # name: (loss, params0, tolerance on the final loss)
  "quadratic": (
    _quadratic,
    lambda: {"a": jnp.ones((3,)), "b": -jnp.ones((2, 2)), "c": jnp.asarray(0.5)},
    1e-4,
  ),
  "ill_conditioned": (_ill_conditioned, lambda: {"x": jnp.ones((8,))}, 1e-3),
  "rosenbrock": (
    _rosenbrock,
    lambda: {"x": jnp.asarray(-1.2), "y": jnp.asarray(1.0)},
    1e-2,
  ),
}


def run_zoo(entry: Entry) -> dict[str, float]:
  """Final loss of ``entry.zoo_optimizer()`` after ``entry.zoo_steps`` steps on each problem, all
  problems in one program (one compilation instead of one per problem)."""
  txs = {problem: entry.zoo_optimizer() for problem in ZOO}

  def one(problem: str, carry):
    fn, tx = ZOO[problem][0], txs[problem]

    def body(carry, _):
      params, state = carry
      g = jax.grad(fn)(params)
      u, state = tx.update(g, state, params, **entry.extras(fn, params))
      return (optax.apply_updates(params, u), state), None

    (params, _), _ = jax.lax.scan(body, carry, None, length=entry.zoo_steps)
    return fn(params)

  starts = {}
  for problem, (_, p0, _) in ZOO.items():
    params = p0()
    starts[problem] = (params, txs[problem].init(params))
  finals = jax.jit(lambda starts: {k: one(k, c) for k, c in starts.items()})(starts)
  return {problem: float(v) for problem, v in finals.items()}


# ---------------------------------------------------------------------------------------------
# discovery
# ---------------------------------------------------------------------------------------------


def all_entries() -> list[Entry]:
  entries: list[Entry] = []
  for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    module = importlib.import_module(f"{__name__}.{info.name}")
    entries.extend(getattr(module, "ENTRIES", []))
  names = [e.name for e in entries]
  dupes = {n for n in names if names.count(n) > 1}
  if dupes:
    raise ValueError(f"duplicate registry names: {sorted(dupes)}")
  return entries


ENTRIES = all_entries()
