"""nnml_optax: lecture 6 of Hinton's *Neural Networks for Machine Learning* as Optax transforms.

Every technique of "how to make the learning go faster" (6a-6e) and of Sutskever, Martens, Dahl &
Hinton (ICML 2013) as a composable ``optax.GradientTransformation``. See the README for the map
from lecture sections to functions.
"""

from . import schedules as schedules

# -- momentum (6c) --
from ._momentum import ScaleByMomentumState as ScaleByMomentumState
from ._momentum import momentum as momentum
from ._momentum import nesterov as nesterov
from ._momentum import scale_by_momentum as scale_by_momentum
from ._momentum import sgd as sgd

# -- rmsprop (6e) --

# -- gains (6d) --

# -- rprop (6e) --

# -- vsgd (6e) --

# -- control (6a/6b) --

# -- bag of tricks namespaces (6a/6b) --

__version__ = "0.1.0"

__all__ = sorted(
    name
    for name, value in list(globals().items())
    if not name.startswith("_") and name not in {"annotations"}
)
