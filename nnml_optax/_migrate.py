"""Carrying optimizer states saved by nnml_optax 0.1.0 over to 0.2.0."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

# 0.1.0 field name -> 0.2.0 field name (the same array under another name)
_RENAMED = {"momentum_buffer": "velocity"}


def _field(path: tuple) -> str:
  """The state field a leaf belongs to: the first key of its path that is a name, not a
  position in a chain's tuple."""
  for key in path:
    if isinstance(key, jax.tree_util.SequenceKey | jax.tree_util.FlattenedIndexKey):
      continue
    name = getattr(key, "name", getattr(key, "key", None))
    if not (isinstance(name, str) and name.isdigit()):
      return str(name)
  raise ValueError(f"not an nnml_optax optimizer state: a leaf at {jax.tree_util.keystr(path)}")


def _fields(state: Any) -> dict[str, list[Any]]:
  """Leaves of a 0.1.0 optimizer state grouped by state field (``"count"``, ``"mean_square"``...).

  The state is a chain's tuple of states (a list once restored without a target), each a
  NamedTuple (a dict) of fields, each a scalar or a tree shaped like the parameters.
  """
  out: dict[str, list[Any]] = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
    field = _field(path)
    out.setdefault(_RENAMED.get(field, field), []).append(leaf)
  return out


def migrate_0_1_state(restored: Any, template: optax.OptState) -> optax.OptState:
  """Turns an optimizer state saved by nnml_optax 0.1.0 into the 0.2.0 state of that optimizer.

  In 0.2.0 every state records the hyperparameters its last update used (a
  ``hyperparams_used`` field, read by :func:`~nnml_optax.hyperparams`), the aliases' learning
  rate has a state of its own, and :func:`~nnml_optax.rmsprop` is a chain of
  :func:`~nnml_optax.scale_by_rms`, the learning rate and :func:`~nnml_optax.scale_by_momentum`
  (0.1.0: one fused state). The arrays are the same (``momentum_buffer`` is now ``velocity``;
  every ``count`` is the step count); the recorded hyperparameters are taken from ``template``
  (their values at step 0) until the next update records the ones it uses.

  Args:
    restored: the 0.1.0 state of one optimizer, as orbax restores it without a target (dicts and
      lists) or as 0.1.0 built it (tuples of NamedTuples).
    template: ``tx.init(params)`` (or its ``jax.eval_shape``) for the same optimizer in 0.2.0.

  Returns:
    A state with the structure and dtypes of ``template`` holding the values of ``restored``.

  Raises:
    ValueError: ``restored`` lacks a field that ``template`` needs, or an array's shape differs.

  Examples:
    >>> import jax.numpy as jnp, nnml_optax
    >>> params = {"w": jnp.zeros(3)}
    >>> old = [{"count": jnp.asarray(5), "mean_square": {"w": jnp.ones(3)},
    ...         "momentum_buffer": {"w": jnp.full(3, -0.1)}}]  # restored from a 0.1.0 checkpoint
    >>> tx = nnml_optax.rmsprop(0.01, momentum=0.9)
    >>> state = nnml_optax.migrate_0_1_state(old, tx.init(params))
    >>> print(state[2].velocity["w"], state[2].count)
    [-0.1 -0.1 -0.1] 5
  """
  old = _fields(restored)
  counts = old.pop("count", [])
  if len({int(c) for c in counts}) > 1:
    raise ValueError(f"the restored state holds different step counts: {counts}")
  taken = {name: iter(leaves) for name, leaves in old.items()}

  def fill(path, like):
    field = _field(path)
    if field == "hyperparams_used":  # not in 0.1.0: the template's, until the next update
      return like
    if field == "count":
      if not counts:
        raise ValueError("the restored state has no step count; the template needs one")
      value = counts[0]
    else:
      try:
        value = next(taken[field])
      except (KeyError, StopIteration):
        where = jax.tree_util.keystr(path)
        raise ValueError(f"the restored state has no (more) {field!r} for {where}") from None
    if jnp.shape(value) != like.shape:
      where = jax.tree_util.keystr(path)
      raise ValueError(f"{where}: restored shape {jnp.shape(value)}, template's {like.shape}")
    return jnp.asarray(value, like.dtype)

  state = jax.tree_util.tree_map_with_path(fill, template)
  left = sorted(name for name, rest in taken.items() if next(rest, None) is not None)
  if left:
    raise ValueError(f"the restored state's {left} have no place in the template")
  return state


class RmspropMomentumState(NamedTuple):
  """0.1.0's state of ``rmsprop(..., momentum=...)`` (0.2.0 returns a chain's states instead)."""

  count: jax.Array  # pyright: ignore[reportIncompatibleMethodOverride] (optax's name)
  mean_square: optax.Updates
  momentum_buffer: optax.Updates


class CenteredRmspropMomentumState(NamedTuple):
  """0.1.0's state of ``rmsprop(..., centered=True, momentum=...)``."""

  count: jax.Array  # pyright: ignore[reportIncompatibleMethodOverride] (optax's name)
  variance: optax.Updates
  mean_grad: optax.Updates
  momentum_buffer: optax.Updates
