"""The one workaround the update rules do not see: a rule is traced once per leaf signature.

Every transform applies its per-leaf rule with :func:`map_leaves` instead of ``jax.tree.map``.
Under a trace (``jit``, ``grad``, ``vmap``) it wraps the rule in ``jax.jit``, so JAX traces it
once per distinct (shapes, dtypes) of its arguments rather than once per leaf; a 1,000-leaf
model has a handful of signatures. XLA inlines the calls before optimizing, so the compiled
update is the same program and gives the same bits; what changes is the time spent tracing and
lowering the Python rule, which otherwise grows with the number of leaves times the number of
``jnp`` operations in the rule. Eagerly the rule is applied as it is (op by op): a jitted closure
made anew at every update would compile at every update.

Measured in ``benchmarks/results/rules-perf-cpu-2core.md`` (trace + lower + compile of one step
on 1,000 leaves).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.core


def map_leaves(rule: Callable[..., Any], tree: Any, *rest: Any) -> Any:
  """``jax.tree.map(rule, tree, *rest)``, the rule traced once per leaf signature under a trace."""
  if any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(tree)):
    rule = jax.jit(rule)
  return jax.tree.map(rule, tree, *rest)
