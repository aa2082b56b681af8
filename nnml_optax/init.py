"""Initializers from lecture 6b and Sutskever et al. (2013): fan-in, sparse and echo-state init.

All return ordinary JAX initializers, ``init(key, shape, dtype) -> array``, that plug into Flax as
``nnx.Linear(..., kernel_init=nnml_optax.init.sparse())`` or ``nn.Dense(..., kernel_init=...)``.
Kernels use Flax's layout: ``(in, out)`` for dense layers and ``(*window, in, out)`` for
convolutions, whose fan-in is the receptive field times the input channels.

* :func:`fan_in`: "small random weights, scaled by 1/sqrt(fan-in)" (lecture 6b; the slide's
  "proportional to sqrt(fan-in)" means 1/sqrt(fan-in)). A validated front end to
  ``jax.nn.initializers.variance_scaling``.
* :func:`sparse`: Martens' (2010) sparse initialization as used by Sutskever, Martens, Dahl & Hinton
  (2013, section 3): every unit receives exactly 15 non-zero incoming weights from N(0, 1).
* :func:`echo_state`: Sutskever et al.'s (2013, section 4, Table 4) hidden-to-hidden matrix of a
  recurrent net: sparse, then rescaled to a given spectral radius, as in echo-state networks.

Zero-sized shapes: a kernel with no units (a zero last axis) is an empty array; a kernel whose units
have no inputs (fan-in 0) has no defined scale and raises ``ValueError`` naming the shape.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Literal, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from . import _core

__all__ = ["echo_state", "fan_in", "sparse"]

_DISTRIBUTIONS = ("normal", "truncated_normal", "uniform")


class Initializer(Protocol):
  """What the functions here return: ``init(key, shape, dtype=None) -> jax.Array``, the call that
  Flax makes of a ``kernel_init`` (``jax.nn.initializers.Initializer`` without ``out_sharding``)."""

  def __call__(self, key: jax.Array, shape: Any, dtype: Any = None) -> jax.Array: ...


def fan_in(
  scale: float = 1.0, distribution: Literal["normal", "truncated_normal", "uniform"] = "normal"
) -> Initializer:
  r"""Small random weights with standard deviation ``scale / sqrt(fan_in)`` (lecture 6b).

  .. math::

    w_{ij} \sim \mathcal{D}\!\left(0,\ \sigma^2\right), \qquad
    \sigma = \frac{\text{scale}}{\sqrt{\text{fan-in}}}

  "If a hidden unit has a big fan-in, small changes on many of its incoming weights can cause the
  learning to overshoot", so units with many inputs get smaller initial weights. The fan-in of a
  kernel of shape ``(*window, in, out)`` is ``prod(window) * in``. With ``scale=1`` and a normal
  distribution this is LeCun-normal; ``scale=sqrt(2)`` is He-normal. Implemented by
  ``jax.nn.initializers.variance_scaling(scale**2, "fan_in", distribution)``: note that ``scale``
  here is a *standard deviation* multiplier, the square root of ``variance_scaling``'s ``scale``.

  Args:
    scale: the standard deviation times ``sqrt(fan_in)``, a Python float ``> 0``.
    distribution: ``"normal"``, ``"truncated_normal"`` (cut at two standard deviations, rescaled so
      that the standard deviation is still ``scale / sqrt(fan_in)``) or ``"uniform"``.

  Returns:
    An initializer ``init(key, shape, dtype=None) -> jax.Array`` (``None``: jax's default float)
    for kernels with at least two axes; a zero last axis (no units) gives an empty array.

  Raises:
    ValueError: ``scale`` is not a finite number ``> 0``, or ``distribution`` is unknown; when the
      initializer is called, a ``shape`` with fewer than two axes or a zero fan-in.

  Examples:
    >>> import jax, nnml_optax
    >>> init = nnml_optax.init.fan_in(scale=1.0)
    >>> w = init(jax.random.key(0), (400, 300))  # fan-in 400: std 1/20
    >>> round(float(w.std()), 2)
    0.05

  References:
    Hinton, Srivastava & Swersky, Neural Networks for Machine Learning, lecture 6b, 2012.
    LeCun, Bottou, Orr & Müller, "Efficient BackProp", 1998.
  """
  _core.check_range("scale", scale, 0.0, None, lo_open=True, schedule=False)
  _core.check_choice("distribution", distribution, _DISTRIBUTIONS)
  inner = jax.nn.initializers.variance_scaling(
    float(scale) ** 2, "fan_in", distribution, in_axis=-2, out_axis=-1
  )

  def init(key: jax.Array, shape: Any, dtype: Any = None) -> jax.Array:
    shape, dtype = _kernel_shape("fan_in", shape), _float_dtype(dtype)
    if shape[-1] == 0:  # no units: variance_scaling would divide by the zero-sized receptive field
      return jnp.zeros(shape, dtype)
    return inner(key, shape, dtype)

  return init


def _kernel_shape(name: str, shape: Any) -> tuple[int, ...]:
  """The shape as a tuple of ints, checked to be a kernel ``(*window, in, out)`` with inputs."""
  shape = tuple(int(d) for d in shape)
  if len(shape) < 2:
    raise ValueError(
      f"{name} initialization needs a kernel with at least two axes (..., in, out); got shape "
      f"{shape} (initialize biases with a constant)"
    )
  if math.prod(shape[:-1]) == 0:
    raise ValueError(
      f"{name} initialization needs a fan-in >= 1 (no zero-sized axis before the last); got shape "
      f"{shape}, whose units have no inputs"
    )
  return shape


def _float_dtype(dtype: Any) -> jnp.dtype:
  """``dtype`` checked to be floating; ``None`` is jax's default float (float64 under x64)."""
  if dtype is None:
    dtype = jax.dtypes.canonicalize_dtype(np.float64)
  dtype = jnp.dtype(dtype)
  if not jnp.issubdtype(dtype, jnp.floating):
    raise TypeError(f"dtype must be a floating dtype; got {dtype}")
  return dtype


@functools.partial(jax.jit, static_argnums=(2, 3, 4, 5))
def _sparse_columns(key, scale, n_in, n_out, k, dtype):
  """An ``(n_in, n_out)`` kernel with exactly ``k`` non-zero N(0, scale^2) entries per column."""
  draw_dtype = _core.compute_dtype(dtype)
  key_pos, key_val = jax.random.split(key)
  # k distinct positions per unit: the k largest of n_in i.i.d. uniforms (a uniformly random
  # k-subset; top_k returns distinct indices even on ties).
  _, rows = jax.lax.top_k(jax.random.uniform(key_pos, (n_out, n_in), draw_dtype), k)
  values = jnp.asarray(scale, draw_dtype) * jax.random.normal(key_val, (n_out, k), draw_dtype)
  units = jnp.arange(n_out)[:, None]
  w = jnp.zeros((n_out, n_in), draw_dtype).at[units, rows].set(values, unique_indices=True)
  return w.T.astype(dtype)


def sparse(num_nonzero: int = 15, scale: float = 1.0) -> Initializer:
  r"""Martens' sparse initialization: exactly ``num_nonzero`` non-zero incoming weights per unit.

  For a kernel of shape ``(*window, in, out)`` with fan-in :math:`n = \prod \text{window} \cdot
  \text{in}`, every output unit :math:`j` (every slice ``w[..., j]``) gets
  :math:`k = \min(\text{num\_nonzero}, n)` non-zero weights at :math:`k` distinct positions drawn
  uniformly at random, independently for every unit; all its other incoming weights are 0:

  .. math::

    S_j \subset \{1..n\},\ |S_j| = k, \qquad
    w_{ij} \sim \mathcal{N}(0, \text{scale}^2)\ \ (i \in S_j), \qquad w_{ij} = 0\ \ (i \notin S_j)

  Sutskever et al. (2013, section 3) use 15 connections from :math:`\mathcal{N}(0, 1)` and zero
  biases for logistic units, so that a unit's total input does not grow with the width of the
  layer below. **For tanh units** they multiply the weights by 0.25 and set the biases to 0.5:
  ``sparse(15, scale=0.25)`` with ``bias_init=jax.nn.initializers.constant(0.5)``.
  When the fan-in is below ``num_nonzero`` every incoming weight is non-zero (a dense
  :math:`\mathcal{N}(0, \text{scale}^2)` kernel). The weights are *not* scaled by the fan-in, and it
  is the *incoming* weights of each unit (a column of a dense kernel) that are sparse, not the
  outgoing ones; several public reimplementations get one of these two wrong.
  The non-zero values are drawn in float32 (float64 for float64 kernels) and then cast to
  ``dtype``; for ``float16`` a draw below the smallest subnormal would round to 0, an event of
  probability about :math:`10^{-7}` per weight.

  Args:
    num_nonzero: the number of incoming connections per unit, a Python int ``>= 1``.
    scale: the standard deviation of the non-zero weights, a Python float ``> 0``.

  Returns:
    An initializer ``init(key, shape, dtype=None) -> jax.Array`` for kernels with at least two
    axes (Flax layout, the last axis indexes the units); ``dtype=None`` is jax's default float.
    A zero last axis (no units) gives an empty array.

  Raises:
    ValueError: ``num_nonzero < 1``, ``scale <= 0``, or (when the initializer is called) a
      ``shape`` with fewer than two axes or a zero fan-in.
    TypeError: ``num_nonzero`` is not an int, or the ``dtype`` is not a floating dtype.

  Examples:
    >>> import jax, nnml_optax
    >>> init = nnml_optax.init.sparse(num_nonzero=15)
    >>> w = init(jax.random.key(0), (784, 500))
    >>> (w != 0).sum(axis=0).min().item(), (w != 0).sum(axis=0).max().item()
    (15, 15)

    Sutskever et al.'s tanh variant in Flax NNX::

      from flax import nnx
      layer = nnx.Linear(784, 500, rngs=nnx.Rngs(0),
                         kernel_init=nnml_optax.init.sparse(15, scale=0.25),
                         bias_init=jax.nn.initializers.constant(0.5))

  References:
    Martens, "Deep learning via Hessian-free optimization", ICML 2010.
    Sutskever, Martens, Dahl & Hinton, "On the importance of initialization and momentum in deep
    learning", ICML 2013.
  """
  _core.check_int("num_nonzero", num_nonzero, 1)
  _core.check_range("scale", scale, 0.0, None, lo_open=True, schedule=False)
  num_nonzero, scale = int(num_nonzero), float(scale)

  def init(key: jax.Array, shape: Any, dtype: Any = None) -> jax.Array:
    shape, dtype = _kernel_shape("sparse", shape), _float_dtype(dtype)
    n_in, n_out = math.prod(shape[:-1]), shape[-1]
    if n_out == 0:
      return jnp.zeros(shape, dtype)
    w = _sparse_columns(key, scale, n_in, n_out, min(num_nonzero, n_in), dtype)
    return w.reshape(shape)

  return init


def _rescale_on_host(w: np.ndarray, spectral_radius: float) -> np.ndarray:
  """``w * spectral_radius / rho(w)``, the eigenvalues found by LAPACK in float64 on the host."""
  w64 = np.asarray(w, np.float64)
  rho = float(np.max(np.abs(np.linalg.eigvals(w64))))
  if rho == 0.0 or not math.isfinite(rho):  # nilpotent: no scale reaches the target radius
    return np.full(w.shape, np.nan, w.dtype)
  return (w64 * (spectral_radius / rho)).astype(w.dtype)


def echo_state(spectral_radius: float = 1.1, num_nonzero: int = 15) -> Initializer:
  r"""Sutskever et al.'s recurrent (hidden-to-hidden) matrix: sparse, rescaled to a spectral radius.

  .. math::

    W_0 \sim \texttt{sparse}(\text{num\_nonzero}, 1), \qquad
    W = \frac{\rho^\ast}{\rho(W_0)}\, W_0, \qquad \rho(W_0) = \max_i |\lambda_i(W_0)|

  Every unit (column of the ``(n, n)`` kernel, Flax layout ``h_t = tanh(h_{t-1} W + ...)``) gets
  exactly ``min(num_nonzero, n)`` non-zero N(0, 1) incoming weights (:func:`sparse`); the matrix is
  then scaled so that its spectral radius is :math:`\rho^\ast`, as in echo-state networks (Jaeger
  2001). With :math:`\rho^\ast` slightly above 1 the hidden state neither dies out nor saturates
  over long sequences, which Sutskever et al. (2013, Table 4) use with 15 connections and 1.1.

  The eigenvalues are computed in float64 by ``numpy.linalg.eigvals`` on the host, reached
  through ``jax.pure_callback`` (``jnp.linalg.eigvals`` is CPU-only), so the initializer runs
  under ``jit`` and ``vmap`` and on any device, and gives the same matrix for the same key. The
  scaling is done in float64 and rounded once to ``dtype``. A nilpotent draw (spectral radius 0,
  probability 0 for ``num_nonzero >= 1``) has no scale that reaches :math:`\rho^\ast` and gives NaN.

  Args:
    spectral_radius: :math:`\rho^\ast`, a Python float ``> 0``.
    num_nonzero: incoming connections per unit, a Python int ``>= 1``.

  Returns:
    An initializer ``init(key, shape, dtype=None) -> jax.Array`` for square ``(n, n)`` kernels.

  Raises:
    ValueError: a bad argument, or (when called) a ``shape`` that is not square ``(n, n)``, n >= 1.
    TypeError: ``num_nonzero`` is not an int, or ``dtype`` is not floating.

  Examples:
    >>> import jax, numpy as np, nnml_optax
    >>> w = nnml_optax.init.echo_state(1.1)(jax.random.key(0), (100, 100))
    >>> round(float(np.abs(np.linalg.eigvals(np.asarray(w))).max()), 4)
    1.1

  References:
    Sutskever, Martens, Dahl & Hinton, "On the importance of initialization and momentum in deep
    learning", ICML 2013, section 4.
    Jaeger, "The echo state approach to analysing and training recurrent neural networks", 2001.
  """
  _core.check_range("spectral_radius", spectral_radius, 0.0, None, lo_open=True, schedule=False)
  _core.check_int("num_nonzero", num_nonzero, 1)
  radius, num_nonzero = float(spectral_radius), int(num_nonzero)

  def init(key: jax.Array, shape: Any, dtype: Any = None) -> jax.Array:
    shape, dtype = tuple(int(d) for d in shape), _float_dtype(dtype)
    if len(shape) != 2 or shape[0] != shape[1] or shape[0] < 1:
      raise ValueError(
        f"echo_state initialization needs a square recurrent kernel (n, n) with n >= 1; got shape "
        f"{shape}"
      )
    n = shape[0]
    draw_dtype = _core.compute_dtype(dtype)
    w0 = _sparse_columns(key, 1.0, n, n, min(num_nonzero, n), draw_dtype)
    w = jax.pure_callback(
      functools.partial(_rescale_on_host, spectral_radius=radius),
      jax.ShapeDtypeStruct(shape, draw_dtype),
      w0,
      vmap_method="sequential",
    )
    return w.astype(dtype)

  return init
