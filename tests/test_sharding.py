"""Every registry entry on parameters sharded over 8 fake CPU devices (tests/conftest.py sets
``--xla_force_host_platform_device_count=8`` before jax starts).

Checks that ``init`` creates each state leaf that mirrors a parameter with that parameter's sharding
(no gather onto one device) and that sharded updates equal unsharded ones.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from registry import ENTRIES, Entry, grads_of, loss, make_params

pytestmark = pytest.mark.skipif(
  len(jax.devices()) < 8, reason="needs 8 (fake) devices: XLA_FLAGS set too late"
)

SPECS = {"w": P("data", None), "b": P(), "s": P(), "k": P(None, None, "data")}


@pytest.fixture(scope="module")
def mesh():
  return Mesh(np.array(jax.devices()[:8]).reshape(4, 2), ("data", "model"))


def _shard(tree, mesh):
  return {k: jax.device_put(v, NamedSharding(mesh, SPECS[k])) for k, v in tree.items()}


def _mirrors(state, params):
  """Yields (state_leaf, param_leaf) for every subtree of ``state`` shaped like ``params``."""
  pdef = jax.tree.structure(params)
  pleaves = jax.tree.leaves(params)

  def visit(node):
    try:
      if jax.tree.structure(node) == pdef:
        leaves = jax.tree.leaves(node)
        if all(jnp.shape(a) == jnp.shape(b) for a, b in zip(leaves, pleaves, strict=True)):
          yield from zip(leaves, pleaves, strict=True)
          return
    except Exception:
      pass
    if isinstance(node, tuple | list):
      for child in node:
        yield from visit(child)
    elif isinstance(node, dict):
      for child in node.values():
        yield from visit(child)

  yield from visit(state)


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_sharded_equals_unsharded(entry: Entry, mesh):
  params = make_params()
  sparams = _shard(params, mesh)
  tx = entry.make()

  state = tx.init(sparams)
  found = 0
  for s_leaf, p_leaf in _mirrors(state, sparams):
    found += 1
    assert s_leaf.sharding.is_equivalent_to(p_leaf.sharding, p_leaf.ndim), (
      f"{entry.name}: state leaf {s_leaf.shape} has {s_leaf.sharding}, param has {p_leaf.sharding}"
    )

  def step(params, state):
    u, state = tx.update(grads_of(params), state, params, **entry.extras(loss, params))
    return optax.apply_updates(params, u), state, u

  step = jax.jit(step)
  p_ref, s_ref = params, tx.init(params)
  p_sh, s_sh = sparams, state
  for _ in range(3):
    p_ref, s_ref, u_ref = step(p_ref, s_ref)
    p_sh, s_sh, u_sh = step(p_sh, s_sh)
    for a, b in zip(jax.tree.leaves(u_ref), jax.tree.leaves(u_sh), strict=True):
      np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)
  for k, spec in SPECS.items():
    assert p_sh[k].sharding.is_equivalent_to(NamedSharding(mesh, spec), p_sh[k].ndim)
  del found
