"""Reading an optimizer state in the training loop: every hyperparameter as its last update used it.

Each nnml_optax state records the hyperparameters its last update used (``hyperparams_used``, in
the order of the state class's ``HYPERPARAMS``); :func:`hyperparams` collects them, with the
controllers' scales, ``optax.inject_hyperparams``' values and summaries of the per-parameter
statistics, into one flat dict for a logger.
"""

from __future__ import annotations

import math
from typing import Any, cast

import jax
import jax.numpy as jnp
import optax

from . import _control, _core, _gains, _rprop, _vsgd

# fields of optax's wrapper states that only hold the wrapped state: left out of the keys
_WRAPPER_FIELDS = frozenset({"inner_state", "inner_opt_state"})
_LEARNING_RATE_STATES = (_core.ScaleByLearningRateState, _core.ScaleByScheduledLearningRateState)
_INJECTED = (optax.InjectHyperparamsState, optax.InjectStatefulHyperparamsState)
# per-parameter arrays summarised by their mean, min and max (per leaf)
_PER_PARAMETER = {
  _rprop.RpropState: ("step_sizes",),
  _gains.ScaleByLocalGainsState: ("gains",),
  _gains.ScaleByLocalGainsMomentumState: ("momentum_gains",),
  _gains.ScaleByDeltaBarDeltaState: ("rate_gains",),
  _vsgd.ScaleByVsgdState: ("tau",),
}


def _key_name(key: Any) -> str:
  for attr in ("key", "name", "idx"):
    if hasattr(key, attr):
      return str(getattr(key, attr))
  return str(key)


def _summaries(out: dict, prefix: tuple[str, ...], name: str, tree: Any) -> None:
  for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]:
    if x.size == 0:
      continue
    if jnp.iscomplexobj(x):  # one step size per real component
      x = jnp.stack([x.real, x.imag])
    where = (*prefix, name, *(_key_name(k) for k in path))
    for stat, fn in (("mean", jnp.mean), ("min", jnp.min), ("max", jnp.max)):
      out["/".join((*where, stat))] = fn(x)


def _vsgd_rates(state: _vsgd.ScaleByVsgdState) -> Any:
  """The per-parameter rates η the last update used (0 during the first ``n0`` updates)."""
  _, n0, eps, _, robust = state.hyperparams_used

  def rate(gbar, vbar, hbar, vhbar):
    r = jnp.clip(gbar * gbar / (vbar + eps), 0, 1)
    eta = jnp.where(robust > 0, r * hbar / (vhbar + eps), r / (hbar + eps))
    return jnp.where(state.count > n0, eta, 0)

  return jax.tree.map(rate, state.gbar, state.vbar, state.hbar, state.vhbar)


class _Walk:
  """One pass over a state: the values found and the scalar factors of the updates per scope (a
  partition label's path, or the root)."""

  def __init__(self, statistics: bool):
    self.statistics = statistics
    self.out: dict[str, jax.Array] = {}
    self.factors: dict[tuple[str, ...], list[jax.Array]] = {(): []}
    self.has_rate: dict[tuple[str, ...], bool] = {(): False}

  def emit(self, path: tuple[str, ...], name: str, value: Any) -> None:
    self.out["/".join((*path, name))] = jnp.asarray(value)

  def factor(self, scope: tuple[str, ...], value: Any, rate: bool = False) -> None:
    self.factors[scope].append(jnp.asarray(value))
    self.has_rate[scope] = self.has_rate[scope] or rate

  def visit(self, node: Any, path: tuple[str, ...], scope: tuple[str, ...]) -> None:
    if isinstance(node, _INJECTED):
      inner_rate = _contains(node.inner_state, _LEARNING_RATE_STATES)
      for name, value in node.hyperparams.items():
        if jnp.ndim(value) == 0:
          self.emit(path, name, value)
      if "learning_rate" in node.hyperparams and not inner_rate:
        self.factor(scope, node.hyperparams["learning_rate"], rate=True)
      self.visit(node.inner_state, path, scope)
    elif hasattr(type(node), "HYPERPARAMS") and hasattr(node, "hyperparams_used"):
      self.visit_ours(node, path, scope)
    elif isinstance(node, _control.ReduceOnPlateauState):
      self.emit(path, "plateau_scale", node.plateau_scale)
      self.factor(scope, node.plateau_scale)
      for name in ("factor", "min_scale", "rtol", "atol", "patience", "cooldown"):
        self.emit(path, name, getattr(node.rule, name))
    elif isinstance(node, optax.contrib.ReduceLROnPlateauState):
      self.emit(path, "scale", node.scale)
      self.factor(scope, node.scale)
    elif isinstance(node, optax.transforms.PartitionState):
      for label, inner in node.inner_states.items():
        sub = (*path, str(label))
        self.factors[sub], self.has_rate[sub] = [], False
        self.visit(inner, sub, sub)
    elif isinstance(node, tuple) and hasattr(node, "_fields"):  # another NamedTuple state
      for name in cast(Any, node)._fields:
        sub = path if name in _WRAPPER_FIELDS else (*path, name)
        self.visit(getattr(node, name), sub, scope)
    elif isinstance(node, tuple | list):  # optax.chain
      for i, inner in enumerate(node):
        self.visit(inner, (*path, str(i)), scope)
    elif isinstance(node, dict):  # optax.named_chain
      for name, inner in node.items():
        self.visit(inner, (*path, str(name)), scope)

  def visit_ours(self, node: Any, path: tuple[str, ...], scope: tuple[str, ...]) -> None:
    for name, value in zip(type(node).HYPERPARAMS, node.hyperparams_used, strict=True):
      self.emit(path, name, value)
    if isinstance(node, _LEARNING_RATE_STATES):
      self.factor(scope, node.hyperparams_used[0], rate=True)
    if isinstance(node, _control.BoldDriverState):
      self.emit(path, "driver_scale", node.driver_scale)
      self.factor(scope, node.driver_scale)
    if self.statistics:
      for field in _PER_PARAMETER.get(type(node), ()):
        _summaries(self.out, path, field, getattr(node, field))
      if isinstance(node, _vsgd.ScaleByVsgdState):
        _summaries(self.out, path, "learning_rate", _vsgd_rates(node))

  def effective(self) -> None:
    """The product of the factors over each innermost scope and the scopes that enclose it."""
    scopes = list(self.factors)
    for scope in scopes:
      if any(other[: len(scope)] == scope and other != scope for other in scopes):
        continue  # not innermost: its factors count in the scopes inside it
      enclosing = [s for s in scopes if scope[: len(s)] == s]
      if not any(self.has_rate[s] for s in enclosing):
        continue  # no learning rate seen: the multiplier would be a guess
      factors = [f for s in enclosing for f in self.factors[s]]
      self.emit(scope, "effective_learning_rate", math.prod(factors[1:], start=factors[0]))


def _contains(tree: Any, types: tuple[type, ...]) -> bool:
  found = jax.tree.leaves(tree, is_leaf=lambda x: isinstance(x, types))
  return any(isinstance(x, types) for x in found)


def hyperparams(opt_state: Any, *, statistics: bool = True) -> dict[str, jax.Array]:
  r"""Every hyperparameter of the nnml_optax transforms in an optimizer state, as last used.

  A flat dict for a logger, keyed by path: a chain's position or a ``named_chain`` name, a
  ``partition`` label, then the argument's name (``"0/momentum"``, ``"1/learning_rate"``;
  no prefix for a single transform). Schedules appear as evaluated at the last update (before
  the first, at step 0); ``optax.inject_hyperparams``' values under their names; the controllers'
  scales as ``driver_scale``, ``plateau_scale`` (and ``optax.contrib.reduce_on_plateau``'s
  ``scale``). ``effective_learning_rate`` is the product of every scalar factor the chain
  applies (learning rates and scales), per ``partition`` label when there are labels, left out
  when no learning rate is in the state (optax's own aliases keep none; inject theirs). With
  ``statistics``, per-parameter rates get ``mean``, ``min`` and ``max`` per leaf: Rprop's
  ``step_sizes``, the gains, vSGD's ``learning_rate`` and ``tau``.

  Works through ``chain``, ``named_chain``, ``inject_hyperparams``, ``masked``, ``partition``,
  ``MultiSteps``, ``apply_if_finite``, :func:`fuse_leaves` (statistics then per fused buffer), and
  on an ``nnx.Optimizer`` or its ``opt_state``. Jittable; returns scalar arrays.

  Args:
    opt_state: an optimizer state, an ``nnx.Optimizer`` or its ``opt_state``.
    statistics: include the per-parameter summaries (a reduction per leaf).

  Returns:
    ``dict[str, jax.Array]`` of scalars (float32, float64 for float64 parameters; ints for
    ``patience``/``cooldown``).

  Examples:
    >>> import jax.numpy as jnp, nnml_optax
    >>> from nnml_optax import schedules
    >>> tx = nnml_optax.nesterov(0.1, schedules.sutskever_momentum(0.99))
    >>> params = jnp.zeros(3); state = tx.init(params)
    >>> for _ in range(300):
    ...   _, state = tx.update(jnp.ones(3), state, params)
    >>> {k: round(float(v), 4) for k, v in nnml_optax.hyperparams(state).items()}
    {'0/learning_rate': 0.1, '1/momentum': 0.75, 'effective_learning_rate': 0.1}
  """
  walk = _Walk(statistics)
  walk.visit(_core.pure_state(opt_state), (), ())
  walk.effective()
  return walk.out
