"""nnml_optax: lecture 6 of Hinton's *Neural Networks for Machine Learning* as Optax transforms.

Every technique of "how to make the learning go faster" (6a-6e) and of Sutskever, Martens, Dahl &
Hinton (ICML 2013) as a composable ``optax.GradientTransformation``. The public namespaces
``schedules``, ``init``, ``preprocessing`` and ``data`` are attributes of this package. See the README
for the map from lecture sections to functions.
"""

import warnings as _warnings

# public namespaces (6a/6b/6c)
from . import data as data
from . import init as init
from . import preprocessing as preprocessing
from . import schedules as schedules

# 6a/6b learning-rate control
from ._control import BoldDriverState as BoldDriverState
from ._control import PlateauRule as PlateauRule
from ._control import ReduceOnPlateauState as ReduceOnPlateauState
from ._control import bold_driver as bold_driver
from ._control import reduce_on_plateau as reduce_on_plateau
from ._control import update_plateau as update_plateau

# 6b learning rate scaled by fan-in
from ._fan_in import ScaleByFanInState as ScaleByFanInState
from ._fan_in import scale_by_fan_in as scale_by_fan_in

# many leaves
from ._fuse import FuseLeavesState as FuseLeavesState
from ._fuse import fuse_leaves as fuse_leaves

# 6d per-connection adaptive rates
from ._gains import ScaleByDeltaBarDeltaState as ScaleByDeltaBarDeltaState
from ._gains import ScaleByLocalGainsMomentumState as ScaleByLocalGainsMomentumState
from ._gains import ScaleByLocalGainsState as ScaleByLocalGainsState
from ._gains import delta_bar_delta as delta_bar_delta
from ._gains import local_gains as local_gains
from ._gains import scale_by_delta_bar_delta as scale_by_delta_bar_delta
from ._gains import scale_by_local_gains as scale_by_local_gains
from ._gains import scale_by_local_gains_momentum as scale_by_local_gains_momentum

# 6c momentum
from ._momentum import ScaleByMomentumState as ScaleByMomentumState
from ._momentum import momentum as momentum
from ._momentum import nesterov as nesterov
from ._momentum import scale_by_momentum as scale_by_momentum
from ._momentum import sgd as sgd

# 6e rmsprop
from ._rmsprop import CenteredRmspropMomentumState as CenteredRmspropMomentumState
from ._rmsprop import RmspropMomentumState as RmspropMomentumState
from ._rmsprop import ScaleByCenteredRmsState as ScaleByCenteredRmsState
from ._rmsprop import ScaleByRmsState as ScaleByRmsState
from ._rmsprop import rmsprop as rmsprop
from ._rmsprop import scale_by_rms as scale_by_rms

# 6e the Rprop family
from ._rprop import RpropState as RpropState
from ._rprop import rprop as rprop
from ._rprop import scale_by_rprop as scale_by_rprop

# 6e vSGD, no more pesky learning rates
from ._vsgd import ScaleByVsgdState as ScaleByVsgdState
from ._vsgd import scale_by_vsgd as scale_by_vsgd
from ._vsgd import vsgd as vsgd

__version__ = "0.1.0"

# renamed in 0.2.0: the old names work until 0.3.0, with a DeprecationWarning
_RENAMED = {"ScaleByRpropState": ("RpropState", RpropState)}


def __getattr__(name: str) -> type:
  if name in _RENAMED:
    new, value = _RENAMED[name]
    _warnings.warn(
      f"nnml_optax.{name} is renamed nnml_optax.{new}; the old name goes in 0.3.0",
      DeprecationWarning,
      stacklevel=2,
    )
    return value
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
  "BoldDriverState",
  "CenteredRmspropMomentumState",
  "FuseLeavesState",
  "PlateauRule",
  "ReduceOnPlateauState",
  "RmspropMomentumState",
  "RpropState",
  "ScaleByCenteredRmsState",
  "ScaleByDeltaBarDeltaState",
  "ScaleByFanInState",
  "ScaleByLocalGainsMomentumState",
  "ScaleByLocalGainsState",
  "ScaleByMomentumState",
  "ScaleByRmsState",
  "ScaleByVsgdState",
  "bold_driver",
  "data",
  "delta_bar_delta",
  "fuse_leaves",
  "init",
  "local_gains",
  "momentum",
  "nesterov",
  "preprocessing",
  "reduce_on_plateau",
  "rmsprop",
  "rprop",
  "scale_by_delta_bar_delta",
  "scale_by_fan_in",
  "scale_by_local_gains",
  "scale_by_local_gains_momentum",
  "scale_by_momentum",
  "scale_by_rms",
  "scale_by_rprop",
  "scale_by_vsgd",
  "schedules",
  "sgd",
  "update_plateau",
  "vsgd",
]
