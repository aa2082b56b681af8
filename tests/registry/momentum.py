"""Registry entries: momentum (lecture 6c)."""

import optax

import nnml_optax as nn
from nnml_optax import schedules

from . import E

ENTRIES = [
  E("sgd", nn.sgd, dict(learning_rate=0.05), zoo=lambda: nn.sgd(0.002), zoo_steps=20000),
  E(
    "momentum",
    nn.momentum,
    dict(learning_rate=0.05, momentum=0.9),
    zoo=lambda: nn.momentum(0.001, 0.9),
    zoo_steps=6000,
  ),
  E(
    "nesterov",
    nn.nesterov,
    dict(learning_rate=0.05, momentum=0.9),
    zoo=lambda: nn.nesterov(0.001, 0.9),
    zoo_steps=6000,
  ),
  E(
    "momentum_nesterov_flag",
    nn.momentum,
    dict(learning_rate=0.05, momentum=0.5, nesterov=True),
    static=("nesterov",),
    zoo=lambda: nn.momentum(0.001, 0.9, nesterov=True),
    zoo_steps=6000,
  ),
  E(
    "momentum_sutskever",
    nn.nesterov,
    dict(learning_rate=0.01, momentum=schedules.sutskever_momentum(0.99, period=2)),
    zoo=lambda: nn.nesterov(0.001, schedules.sutskever_momentum(0.99, period=50)),
    zoo_steps=6000,
  ),
  E("scale_by_momentum", nn.scale_by_momentum, dict(momentum=0.9), lr=0.001, zoo_steps=6000),
  E(
    "scale_by_momentum_nesterov",
    nn.scale_by_momentum,
    dict(momentum=0.9, nesterov=True),
    static=("nesterov",),
    lr=0.001,
    zoo_steps=6000,
  ),
  E(
    "scale_by_momentum_ramp",
    nn.scale_by_momentum,
    dict(momentum=schedules.momentum_ramp(0.5, 0.9, transition_steps=2)),
    lr=0.001,
    zoo_steps=6000,
  ),
]

del optax
