"""Data-parallel training over several devices with ``jax.sharding``; optimizer state sharded like
the parameters. Runs on 8 fake CPU devices here (``--xla_force_host_platform_device_count=8``).

The batch is split over a ``data`` axis; the hidden layer's parameters are split over a ``model``
axis (a 4 x 2 mesh). Nothing in the transforms changes: ``tx.init`` on sharded parameters creates
each state array with its parameter's sharding (no gather onto one device), and ``jax.jit``
propagates the shardings through ``update``. Multi-host runs are the same program after
``jax.distributed.initialize()`` (one process per host; build the mesh from ``jax.devices()``, feed
each process its shard with ``jax.make_array_from_process_local_data``).

Run: ``python examples/data_parallel.py --steps 200``.
"""

from __future__ import annotations

import os

if "jax" not in __import__("sys").modules and "device_count" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
  ).strip()

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import nnml_optax as nn

try:
  from _common import digits
except ImportError:
  from examples._common import digits


def main(steps: int = 200, seed: int = 0, batch_size: int = 128) -> dict:
  devices = jax.devices()
  if len(devices) < 8:
    raise RuntimeError(
      "needs 8 devices: set XLA_FLAGS=--xla_force_host_platform_device_count=8 "
      "before jax is imported"
    )
  mesh = Mesh(np.array(devices[:8]).reshape(4, 2), ("data", "model"))
  (xtr, ytr), (xva, yva), _ = digits(seed)
  d, h = xtr.shape[1], 128
  init = nn.init.fan_in()
  keys = jax.random.split(jax.random.key(seed), 2)
  specs = {"w1": P(None, "model"), "b1": P("model"), "w2": P("model", None), "b2": P()}
  params = {
    "w1": init(keys[0], (d, h)),
    "b1": jnp.zeros(h),
    "w2": init(keys[1], (h, 10)),
    "b2": jnp.zeros(10),
  }
  params = {k: jax.device_put(v, NamedSharding(mesh, specs[k])) for k, v in params.items()}
  tx = nn.rmsprop(1e-3, momentum=0.9, nesterov=True)
  opt_state = tx.init(params)  # created sharded: no gather
  state_specs = (
    {k: v.sharding.spec for k, v in optax.tree.get(opt_state, "nu", {}).items()}
    if optax.tree.get(opt_state, "nu") is not None
    else {}
  )

  def loss_fn(p, x, y):
    logits = jnp.tanh(x @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

  @jax.jit
  def step(p, s, x, y):
    loss, g = jax.value_and_grad(loss_fn)(p, x, y)
    u, s = tx.update(g, s, p)
    return optax.apply_updates(p, u), s, loss

  data_sharding = NamedSharding(mesh, P("data"))
  batches = nn.data.minibatches(
    jax.random.key(seed), xtr, ytr, batch_size, drop_remainder=True, num_epochs=None
  )
  for _, (xb, yb) in zip(range(steps), batches, strict=False):
    xb, yb = jax.device_put(xb, data_sharding), jax.device_put(yb, data_sharding)
    params, opt_state, loss = step(params, opt_state, xb, yb)
  same = all(
    s.sharding.is_equivalent_to(params[k].sharding, params[k].ndim)
    for leaf in jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, dict) and "w1" in x)
    if isinstance(leaf, dict) and set(leaf) == set(params)
    for k, s in leaf.items()
  )
  acc = float(
    jnp.mean(
      jnp.argmax(jnp.tanh(xva @ params["w1"] + params["b1"]) @ params["w2"] + params["b2"], -1)
      == yva
    )
  )
  print(
    f"mesh {dict(mesh.shape)}; w1 sharding {params['w1'].sharding.spec}; optimizer state "
    f"sharded like the params: {same}; final batch loss {float(loss):.4f}; val acc {acc:.4f}"
  )
  del state_specs
  return {"state_sharded_like_params": same, "val_accuracy": acc, "loss": float(loss)}


if __name__ == "__main__":
  ap = argparse.ArgumentParser(description=__doc__)
  ap.add_argument("--steps", type=int, default=200)
  ap.add_argument("--seed", type=int, default=0)
  a = ap.parse_args()
  main(steps=a.steps, seed=a.seed)
