"""nnml_optax: lecture 6 of Hinton's *Neural Networks for Machine Learning* as Optax transforms.

Every technique of "how to make the learning go faster" (6a-6e) and of Sutskever, Martens, Dahl &
Hinton (ICML 2013) as a composable ``optax.GradientTransformation``. The public namespaces
``schedules``, ``init``, ``preprocessing`` and ``data`` are attributes of this package. See the README
for the map from lecture sections to functions.
"""

# public namespaces (6a/6b/6c)
from . import data as data
from . import init as init
from . import preprocessing as preprocessing
from . import schedules as schedules

# 6a/6e summary slide: full-batch methods (conjugate gradient; L-BFGS is optax.lbfgs)
from ._cg import ScaleByConjugateGradientState as ScaleByConjugateGradientState
from ._cg import conjugate_gradient as conjugate_gradient
from ._cg import scale_by_conjugate_gradient as scale_by_conjugate_gradient

# 6a/6b learning-rate control
from ._control import BoldDriverState as BoldDriverState
from ._control import PlateauRule as PlateauRule
from ._control import ReduceOnPlateauState as ReduceOnPlateauState
from ._control import bold_driver as bold_driver
from ._control import reduce_on_plateau as reduce_on_plateau
from ._control import update_plateau as update_plateau

# the learning rate the aliases chain (its state records the rate used)
from ._core import ScaleByLearningRateState as ScaleByLearningRateState
from ._core import ScaleByScheduledLearningRateState as ScaleByScheduledLearningRateState

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

# the training loop: every hyperparameter as last used
from ._hyperparams import hyperparams as hyperparams

# 0.1.0 -> 0.2.0
from ._migrate import migrate_0_1_state as migrate_0_1_state

# 6c momentum
from ._momentum import ScaleByMomentumState as ScaleByMomentumState
from ._momentum import momentum as momentum
from ._momentum import nesterov as nesterov
from ._momentum import scale_by_momentum as scale_by_momentum
from ._momentum import sgd as sgd

# 6e rmsprop
from ._rmsprop import CenteredRmsState as CenteredRmsState
from ._rmsprop import RmsState as RmsState
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

__version__ = "0.2.0"

__all__ = [
  "BoldDriverState",
  "CenteredRmsState",
  "FuseLeavesState",
  "PlateauRule",
  "ReduceOnPlateauState",
  "RmsState",
  "RpropState",
  "ScaleByConjugateGradientState",
  "ScaleByDeltaBarDeltaState",
  "ScaleByFanInState",
  "ScaleByLearningRateState",
  "ScaleByLocalGainsMomentumState",
  "ScaleByLocalGainsState",
  "ScaleByMomentumState",
  "ScaleByScheduledLearningRateState",
  "ScaleByVsgdState",
  "bold_driver",
  "conjugate_gradient",
  "data",
  "delta_bar_delta",
  "fuse_leaves",
  "hyperparams",
  "init",
  "local_gains",
  "migrate_0_1_state",
  "momentum",
  "nesterov",
  "preprocessing",
  "reduce_on_plateau",
  "rmsprop",
  "rprop",
  "scale_by_conjugate_gradient",
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

# Names of 0.1.0, importable for one release (0.2.x) with a DeprecationWarning.
_DEPRECATED = {
  "ScaleByRmsState": ("_rmsprop", "RmsState"),  # optax.ScaleByRmsState has other fields
  "ScaleByCenteredRmsState": ("_rmsprop", "CenteredRmsState"),
  "ScaleByRpropState": ("_rprop", "RpropState"),  # optax.ScaleByRpropState has other fields
  "RmspropMomentumState": ("_migrate", "RmspropMomentumState"),  # no 0.2.0 state
  "CenteredRmspropMomentumState": ("_migrate", "CenteredRmspropMomentumState"),  # no 0.2.0 state
}


def __getattr__(name: str):
  if name in _DEPRECATED:
    import importlib
    import warnings

    module, new = _DEPRECATED[name]
    hint = (
      f"use nnml_optax.{new}"
      if module != "_migrate"
      else "rmsprop's state is now a chain's tuple (see nnml_optax.migrate_0_1_state)"
    )
    warnings.warn(
      f"nnml_optax.{name} is deprecated since 0.2.0 and will be removed in 0.3.0; {hint}",
      DeprecationWarning,
      stacklevel=2,
    )
    return getattr(importlib.import_module(f"{__name__}.{module}"), new)
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
