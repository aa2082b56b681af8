"""Every registry entry on parameters sharded over 8 fake CPU devices (tests/conftest.py sets
``--xla_force_host_platform_device_count=8`` before jax starts).

Checks that ``init`` creates each state array that mirrors a parameter with that parameter's
sharding, and every other state array replicated (no gather onto one device), that the state keeps
that placement over steps, and that sharded updates equal unsharded ones.
"""

from __future__ import annotations

import jax
import numpy as np
import optax
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from registry import ENTRIES, Entry, grads_of, group, loss, make_params, reference_run

pytestmark = pytest.mark.skipif(
  len(jax.devices()) < 8, reason="needs 8 (fake) devices: XLA_FLAGS set too late"
)

SPECS = {"w": P("data", None), "b": P(), "s": P(), "k": P(None, None, "data")}


@pytest.fixture(scope="module")
def mesh():
  return Mesh(np.array(jax.devices()[:8]).reshape(4, 2), ("data", "model"))


def _shard(tree, mesh):
  return {k: jax.device_put(v, NamedSharding(mesh, SPECS[k])) for k, v in tree.items()}


def _check_placement(name, state, params) -> int:
  """Asserts where ``init`` put each state array; returns how many mirror a partitioned parameter.

  A state array with the shape of a partitioned parameter (here ``w`` and ``k``, whose shapes no
  other array has) mirrors it and must have its sharding; every other array (a scalar, or a
  ``fuse_leaves`` buffer of the replicated leaves) must be replicated, never gathered onto one
  device. Each partitioned parameter must be mirrored the same number of times.
  """
  partitioned = {p.shape: p for p in jax.tree.leaves(params) if not p.sharding.is_fully_replicated}
  mirrored = dict.fromkeys(partitioned, 0)
  for leaf in jax.tree.leaves(state):
    p = partitioned.get(leaf.shape)
    if p is not None:
      mirrored[leaf.shape] += 1
      assert leaf.sharding.is_equivalent_to(p.sharding, p.ndim), (
        f"{name}: state array {leaf.shape} has {leaf.sharding}, its parameter {p.sharding}"
      )
    elif leaf.ndim > 0:
      assert leaf.sharding.is_fully_replicated, f"{name}: {leaf.shape} has {leaf.sharding}"
  counts = set(mirrored.values())
  assert len(counts) == 1, f"{name}: partitioned parameters mirrored {mirrored} times"
  return counts.pop()


@pytest.mark.parametrize(
  "entry", [pytest.param(e, marks=group(e)) for e in ENTRIES], ids=lambda e: e.name
)
def test_sharded_equals_unsharded(entry: Entry, mesh):
  params = make_params()
  sparams = _shard(params, mesh)
  tx = entry.make()

  state = tx.init(sparams)
  # as many mirrors as the unsharded state has numbers per parameter number (in arrays; with
  # fuse_leaves in its buffers); rounded: the scalar parameter's state is a scalar unless fused
  size = sum(x.size for x in jax.tree.leaves(params))
  per_param = sum(x.size for x in jax.tree.leaves(tx.init(params)) if x.ndim > 0) / size
  assert _check_placement(entry.name, state, sparams) == round(per_param)

  def step(params, state):
    u, state = tx.update(grads_of(params), state, params, **entry.extras(loss, params))
    return optax.apply_updates(params, u), state, u

  step = jax.jit(step)
  # the unsharded steps: the registry's jitted reference run (shared with test_registry.py)
  p_sh, s_sh = sparams, state
  for u_ref in reference_run(entry).updates:
    p_sh, s_sh, u_sh = step(p_sh, s_sh)
    for a, b in zip(jax.tree.leaves(u_ref), jax.tree.leaves(u_sh), strict=True):
      np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)
  for k, spec in SPECS.items():
    assert p_sh[k].sharding.is_equivalent_to(NamedSharding(mesh, spec), p_sh[k].ndim)
  _check_placement(entry.name, s_sh, p_sh)  # and the same placement after three steps


def test_placement_check_catches_a_gathered_state(mesh):
  """The check above fails on a state that gathers a partitioned parameter onto one device."""
  sparams = _shard(make_params(), mesh)
  gathered = {k: jax.device_put(v, jax.devices()[0]) for k, v in sparams.items()}
  with pytest.raises(AssertionError):
    _check_placement("gathered", (gathered,), sparams)
  assert _check_placement("params", (sparams, sparams), sparams) == 2
