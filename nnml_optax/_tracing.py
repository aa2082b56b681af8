"""The one workaround the update rules do not see: a rule is traced once per leaf signature.

Every transform applies its per-leaf rule with :func:`map_leaves` instead of ``jax.tree.map``
(a bare scaling, such as the aliases' learning rate, stays a ``jax.tree.map``: one operation has
nothing to gain from a nested ``jit``).
Under a trace (``jit``, ``grad``, ``vmap``), when leaves share a shape and dtype, it wraps the
rule in ``jax.jit``, so JAX traces it once per distinct (shapes, dtypes) of its arguments rather
than once per leaf; a 1,000-leaf model has a handful of signatures. XLA inlines the calls before
optimizing, so the compiled update is the same program and gives the same bits
(``benchmarks/same_program.py``); what changes is the time spent tracing and lowering the Python
rule, which otherwise grows with the number of leaves times the number of ``jnp`` operations in
the rule. Eagerly the rule is applied as it is (op by op): a jitted closure made anew at every
update would compile at every update.

Measured in ``benchmarks/results/compile-1000-leaves-cpu-2core.md`` (trace, lowering and compile
of one step on 1,000 leaves: without it the rmsprop family took 1.3-1.5x 0.1.0's time).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.core
import jax.numpy as jnp


def map_leaves(rule: Callable[..., Any], tree: Any, *rest: Any) -> Any:
  """``jax.tree.map(rule, tree, *rest)``, the rule traced once per leaf signature under a trace
  (when some leaves share one: otherwise there is nothing to reuse)."""
  leaves = jax.tree.leaves(tree)
  signatures = {(jnp.shape(x), jnp.result_type(x)) for x in leaves}
  if len(signatures) < len(leaves) and any(isinstance(x, jax.core.Tracer) for x in leaves):
    rule = jax.jit(rule)
  return jax.tree.map(rule, tree, *rest)
