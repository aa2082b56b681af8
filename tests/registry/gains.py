"""Registry entries: local gains, gains with momentum, delta-bar-delta (lecture 6d; Jacobs 1988).

Zoo learning rates: the gains multiply the global rate by up to ``max_gain`` (10), so the global
rate is kept at 0.001 to leave the Rosenbrock valley (curvature ~1000 at the minimum) stable; all
entries meet the default tolerances in the default 2000 steps.
"""

import optax

import nnml_optax as nn

from . import E

_GAINS = dict(additive_increase=0.05, multiplicative_decrease=0.95, min_gain=0.1, max_gain=10.0)


def rmsprop_local_gains(learning_rate, decay=0.9, additive_increase=0.05):
  """The lecture's "rmsprop with adaptive rates" (6e) as the documented chain."""
  return optax.chain(
    nn.scale_by_rms(decay),
    nn.scale_by_local_gains(additive_increase),
    optax.scale_by_learning_rate(learning_rate),
  )


ENTRIES = [
  E(
    "local_gains",
    nn.local_gains,
    dict(learning_rate=0.05, **_GAINS),
    zoo=lambda: nn.local_gains(0.001),
  ),
  E(
    "local_gains_momentum",
    nn.local_gains,
    dict(learning_rate=0.02, momentum=0.9, **_GAINS),
    zoo=lambda: nn.local_gains(0.001, momentum=0.9),
  ),
  E("scale_by_local_gains", nn.scale_by_local_gains, dict(_GAINS), lr=0.001),
  E(
    "scale_by_local_gains_momentum",
    nn.scale_by_local_gains_momentum,
    dict(momentum=0.9, **_GAINS),
    lr=0.001,
  ),
  E(
    "rmsprop_local_gains",
    rmsprop_local_gains,
    dict(learning_rate=0.01, decay=0.9, additive_increase=0.05),
    zoo=lambda: rmsprop_local_gains(0.001),
    not_applicable={
      "bf16_scalar_kinds": "a user's chain ending in optax.scale_by_learning_rate, which "
      "multiplies bf16 updates by a strongly typed float32 rate into float32 (not an alias)",
      "hyperparams": "a user's chain ending in optax.scale_by_learning_rate, whose state keeps no "
      "rate (the two nnml_optax parts are checked in their own entries)",
    },
  ),
  E(
    "delta_bar_delta",
    nn.delta_bar_delta,
    dict(learning_rate=0.05, kappa=0.05, phi=0.05, theta=0.7),
    zoo=lambda: nn.delta_bar_delta(0.001),
  ),
  E(
    "delta_bar_delta_max_gain",
    nn.delta_bar_delta,
    dict(learning_rate=0.05, kappa=0.2, phi=0.5, theta=0.5, max_gain=10.0),
    zoo=lambda: nn.delta_bar_delta(0.001, kappa=0.2, phi=0.5, max_gain=10.0),
  ),
  E(
    "scale_by_delta_bar_delta",
    nn.scale_by_delta_bar_delta,
    dict(kappa=0.05, phi=0.05, theta=0.7),
    lr=0.001,
  ),
]
