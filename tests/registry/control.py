"""Registry entries: learning-rate control from the error (lecture 6a/6b): bold driver,
reduce-on-plateau and the fan-in scaled learning rate.

The bold driver and reduce-on-plateau multiply whatever they are fed, so on their own (``lr=``) they
are directions; on the zoo they run chained after an optimizer, as documented.
"""

import optax

import nnml_optax as nn

from . import VALUE, E


def NEG_VALUE(loss_fn, params) -> dict:
  """``value=`` for ``mode="max"``: minus the loss, a metric to maximise (like an accuracy)."""
  return {"value": -loss_fn(params)}


ENTRIES = [
  E(
    "bold_driver",
    nn.bold_driver,
    dict(increase=1.1, decrease=0.5, tolerance=0.0),
    extra=VALUE,
    zoo=lambda: optax.chain(nn.sgd(0.01), nn.bold_driver()),
    zoo_steps=2000,
  ),
  E(
    "bold_driver_no_undo",
    nn.bold_driver,
    dict(increase=1.05, decrease=0.5, undo=False),
    static=("undo",),
    extra=VALUE,
    # without undo a bad step is kept, so start from a rate that is stable on Rosenbrock
    zoo=lambda: optax.chain(nn.sgd(0.001), nn.bold_driver(1.05, 0.5, undo=False)),
    zoo_steps=2000,
  ),
  E(
    "bold_driver_momentum",
    nn.bold_driver,
    dict(increase=1.1, decrease=0.5, tolerance=0.01),
    extra=VALUE,
    zoo=lambda: optax.chain(nn.momentum(0.001, 0.9), nn.bold_driver()),
    zoo_steps=3000,
  ),
  E(
    "reduce_on_plateau",
    nn.reduce_on_plateau,
    dict(
      factor=0.5, patience=1, cooldown=1, min_scale=0.01, rtol=1e-4, atol=0.0, value_arg="value"
    ),
    static=("mode",),
    extra=VALUE,
    zoo=lambda: optax.chain(
      nn.momentum(0.001, 0.9), nn.reduce_on_plateau(0.5, patience=5, value_arg="value")
    ),
    zoo_steps=6000,
  ),
  E(
    "reduce_on_plateau_max",
    nn.reduce_on_plateau,
    dict(factor=0.1, patience=0, min_scale=0.0, rtol=0.0, atol=1e-3, mode="max", value_arg="value"),
    static=("mode",),
    extra=NEG_VALUE,
    zoo=lambda: optax.chain(
      nn.momentum(0.001, 0.9), nn.reduce_on_plateau(0.5, 5, mode="max", value_arg="value")
    ),
    zoo_steps=6000,
  ),
  # value-less updates: the epoch-level path (update_plateau) only; update just applies the scale
  E(
    "reduce_on_plateau_epochwise",
    nn.reduce_on_plateau,
    dict(factor=0.5, patience=2, value_arg=None),
    lr=0.001,
    zoo=lambda: optax.chain(nn.momentum(0.001, 0.9), nn.reduce_on_plateau(value_arg=None)),
    zoo_steps=6000,
  ),
  E(
    "scale_by_fan_in",
    nn.scale_by_fan_in,
    dict(power=0.5),
    zoo=lambda: optax.chain(nn.momentum(0.001, 0.9), nn.scale_by_fan_in()),
    zoo_steps=6000,
  ),
  E(
    "scale_by_fan_in_p1",
    nn.scale_by_fan_in,
    dict(power=1.0),
    zoo=lambda: optax.chain(nn.momentum(0.001, 0.9), nn.scale_by_fan_in(1.0)),
    zoo_steps=6000,
  ),
]
