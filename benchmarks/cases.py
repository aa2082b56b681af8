"""Benchmark cases: every public transform and alias, each beside its closest optax equivalent.

A case is ``(name, ours, theirs, extra)``: two zero-argument factories and the extra ``update``
arguments both receive (a constant ``value=``; a ``grad_fn`` for vSGD). ``theirs`` is the optax
algorithm with the same math where optax has it, else the closest chain of optax pieces (said in
``peer``). Factories are looked up lazily so that a case whose transform is missing is reported as
skipped rather than failing the run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import optax

import nnml_optax as nn

LR = 1e-3


@dataclasses.dataclass(frozen=True)
class Case:
  name: str
  ours: Callable[[], optax.GradientTransformation]
  theirs: Callable[[], optax.GradientTransformation]
  peer: str  # "same math" or a description of the closest optax chain
  extra: Callable[[Any], dict] = lambda params: {}
  same_math: bool = True


def _value(params):
  return {"value": jnp.asarray(1.0, jnp.float32)}


def _grad_fn(params):
  return {"grad_fn": lambda p: p}  # the gradient of 1/2|p|^2: cheap, elementwise (vSGD-fd)


def _curvature(params):
  return {"curvature": params}  # a diagonal estimate supplied by the caller (e.g. Gauss-Newton)


def _plateau():
  from optax import contrib

  return contrib.reduce_on_plateau()


CASES: list[Case] = [
  Case("sgd", lambda: nn.sgd(LR), lambda: optax.sgd(LR), "optax.sgd"),
  Case(
    "momentum", lambda: nn.momentum(LR, 0.9), lambda: optax.sgd(LR, 0.9), "optax.sgd(momentum=0.9)"
  ),
  Case(
    "nesterov",
    lambda: nn.nesterov(LR, 0.9),
    lambda: optax.sgd(LR, 0.9, nesterov=True),
    "optax.sgd(momentum=0.9, nesterov=True)",
  ),
  Case(
    "momentum(sutskever schedule)",
    lambda: nn.nesterov(LR, nn.schedules.sutskever_momentum(0.99)),
    lambda: optax.inject_hyperparams(optax.sgd)(LR, 0.9, nesterov=True),
    "inject_hyperparams(optax.sgd)",
  ),
  Case("rmsprop", lambda: nn.rmsprop(LR), lambda: optax.rmsprop(LR), "optax.rmsprop"),
  Case(
    "rmsprop(centered)",
    lambda: nn.rmsprop(LR, centered=True),
    lambda: optax.rmsprop(LR, centered=True),
    "optax.rmsprop(centered=True)",
  ),
  Case(
    "rmsprop(momentum)",
    lambda: nn.rmsprop(LR, momentum=0.9),
    lambda: optax.rmsprop(LR, momentum=0.9),
    "optax.rmsprop(momentum=0.9)",
  ),
  Case(
    "rmsprop(nesterov)",
    lambda: nn.rmsprop(LR, momentum=0.9, nesterov=True),
    lambda: optax.rmsprop(LR, momentum=0.9, nesterov=True),
    "optax.rmsprop(momentum=0.9, nesterov=True)",
  ),
  Case(
    "rmsprop(torch)",
    lambda: nn.rmsprop(LR, convention="torch"),
    lambda: optax.rmsprop(LR, decay=0.99, eps_in_sqrt=False),
    "optax.rmsprop(eps outside)",
  ),
  Case("rprop(irprop-)", lambda: nn.rprop(LR), lambda: optax.rprop(LR), "optax.rprop"),
  Case(
    "rprop(rprop-)", lambda: nn.rprop(LR, variant="rprop-"), lambda: optax.rprop(LR), "optax.rprop"
  ),
  Case(
    "rprop(rprop+)",
    lambda: nn.rprop(LR, variant="rprop+"),
    lambda: optax.rprop(LR),
    "optax.rprop",
    same_math=False,
  ),
  Case(
    "rprop(irprop+)",
    lambda: nn.rprop(LR, variant="irprop+"),
    lambda: optax.rprop(LR),
    "optax.rprop",
    extra=_value,
    same_math=False,
  ),
  Case(
    "local_gains",
    lambda: nn.local_gains(LR),
    lambda: optax.sgd(LR, 0.9),
    "optax.sgd(momentum) (no optax peer)",
    same_math=False,
  ),
  Case(
    "local_gains(momentum)",
    lambda: nn.local_gains(LR, momentum=0.9),
    lambda: optax.sgd(LR, 0.9),
    "optax.sgd(momentum) (no optax peer)",
    same_math=False,
  ),
  Case(
    "delta_bar_delta",
    lambda: nn.delta_bar_delta(LR),
    lambda: optax.sgd(LR, 0.9),
    "optax.sgd(momentum) (no optax peer)",
    same_math=False,
  ),
  Case(
    "rmsprop+local_gains",
    lambda: optax.chain(
      nn.scale_by_rms(), nn.scale_by_local_gains(), optax.scale_by_learning_rate(LR)
    ),
    lambda: optax.rmsprop(LR, momentum=0.9),
    "optax.rmsprop(momentum) (no optax peer)",
    same_math=False,
  ),
  Case(
    "vsgd",
    lambda: nn.vsgd(),
    lambda: optax.adam(LR),
    "optax.adam (no optax peer)",
    extra=_grad_fn,
    same_math=False,
  ),
  Case(
    "vsgd(curvature)",
    lambda: nn.vsgd(),
    lambda: optax.adam(LR),
    "optax.adam (no optax peer)",
    extra=_curvature,
    same_math=False,
  ),
  Case(
    "sgd+bold_driver",
    lambda: optax.chain(nn.sgd(LR), nn.bold_driver()),
    lambda: optax.chain(optax.sgd(LR), _plateau()),
    "optax.sgd + contrib.reduce_on_plateau (no optax peer)",
    extra=_value,
    same_math=False,
  ),
  Case(
    "sgd+reduce_on_plateau",
    lambda: optax.chain(nn.sgd(LR), nn.reduce_on_plateau(value_arg="value")),
    lambda: optax.chain(optax.sgd(LR), _plateau()),
    "optax.sgd + contrib.reduce_on_plateau",
    extra=_value,
  ),
  Case(
    "sgd+scale_by_fan_in",
    lambda: optax.chain(nn.sgd(LR), nn.scale_by_fan_in()),
    lambda: optax.sgd(LR),
    "optax.sgd (no optax peer)",
    same_math=False,
  ),
]
