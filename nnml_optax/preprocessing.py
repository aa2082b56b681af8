"""Input preprocessing from lecture 6b: shift, scale and decorrelate the inputs.

"It helps to transform each component of the input vector so that it has zero mean over the whole
training set", "...so that it has unit variance", and, the thorough method, decorrelate them with
PCA: "drop the principal components with the smallest eigenvalues, then divide the remaining
principal components by the square roots of their eigenvalues". For a linear neuron
this turns an elongated elliptical error surface into a circle, so the gradient points at the
minimum.

Fit once, eagerly, on the training inputs; apply the result everywhere as a pure, jit-able
function::

    params = fit_whitening(x_train, method="pca", keep=0.99)
    z_train, z_test = whiten(params, x_train), whiten(params, x_test)
    x_back = unwhiten(params, z_test)  # the projection of x_test onto the kept components
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _core

__all__ = ["Whitening", "fit_whitening", "unwhiten", "whiten"]

_METHODS = ("center", "standardize", "pca", "zca")
_HIGHEST = jax.lax.Precision.HIGHEST


@functools.partial(
  jax.tree_util.register_dataclass,
  data_fields=["mean", "variance", "scale", "components"],
  meta_fields=["method"],
)
@dataclasses.dataclass(frozen=True)
class Whitening:
  r"""A fitted input transform (a pytree: pass it through ``jax.jit``, save it with orbax).

  Attributes:
    method: ``"center"``, ``"standardize"``, ``"pca"`` or ``"zca"`` (static).
    mean: the training mean :math:`\mu`, shape ``(d,)``.
    variance: the per-feature variances (``"center"``, ``"standardize"``), or the kept eigenvalues
      :math:`\lambda` of the covariance in decreasing order (``"pca"``, ``"zca"``); shape ``(d,)``
      or ``(k,)``.
    scale: :math:`\sqrt{\text{variance} + \text{eps}}`, what each kept direction is divided by
      (unused by ``"center"``).
    components: the kept eigenvectors as columns, shape ``(d, k)`` (``"pca"``, ``"zca"``), or
      ``None``.
  """

  method: str
  mean: jax.Array
  variance: jax.Array
  scale: jax.Array
  components: jax.Array | None = None


def _check_keep(keep: Any, method: str) -> None:
  if keep is None:
    return
  if method != "pca":
    raise ValueError(f"keep only applies to method='pca'; got keep={keep!r} with method={method!r}")
  if isinstance(keep, bool) or not isinstance(keep, numbers.Real):
    raise TypeError(
      f"keep must be None, an int (a number of components) or a float in (0, 1] (a fraction of "
      f"the variance); got {type(keep).__name__} {keep!r}"
    )
  if isinstance(keep, numbers.Integral):
    _core.check_int("keep", keep, 1)
  else:
    _core.check_range("keep", keep, 0.0, 1.0, lo_open=True, schedule=False)


def _row_chunks(x: Any, chunk: int):
  """The rows of ``x`` as float64 NumPy chunks of at most ``chunk`` rows (one at a time)."""
  for start in range(0, x.shape[0], chunk):
    yield np.asarray(x[start : start + chunk]).astype(np.float64)


def _components(params: Whitening) -> jax.Array:
  """The eigenvectors of a ``"pca"`` / ``"zca"`` :class:`Whitening` (``None`` only for the others)."""
  if params.components is None:
    raise ValueError(f"a Whitening with method={params.method!r} needs components; got None")
  return params.components


def _moments(x: Any, chunk: int, full: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Mean, (population) covariance and largest magnitude per column of the rows of ``x``.

  Two passes (the mean, then centered second moments) in float64 on the host, one chunk of
  ``chunk`` rows at a time, so nothing of the size of ``x`` is allocated. JAX's float32 sums lose
  digits that matter here (a mean off by 1e-5 relative at 100,000 rows makes a constant column of
  10000.3 come out of "standardize" as +-1), and float64 is not available on every device.
  The sum of ``n`` equal float32 values is exact in float64, so a constant column's mean is its
  value and its centered values are exactly 0.
  """
  d = x.shape[1]
  total, max_abs, finite = np.zeros(d), np.zeros(d), True
  for xc in _row_chunks(x, chunk):
    finite = finite and bool(np.isfinite(xc).all())
    total += xc.sum(axis=0)
    max_abs = np.maximum(max_abs, np.abs(xc).max(axis=0))
  if not finite:
    raise ValueError("x contains NaN or infinity; drop or impute those values before fitting")
  mean = total / x.shape[0]
  second = np.zeros((d, d) if full else (d,))
  for xc in _row_chunks(x, chunk):
    centered = xc - mean
    second += centered.T @ centered if full else (centered * centered).sum(axis=0)
  return mean, second / x.shape[0], max_abs


def fit_whitening(
  x: Any,
  method: str = "standardize",
  keep: int | float | None = None,
  eps: float = 1e-5,
  *,
  chunk_size: int | None = None,
) -> Whitening:
  r"""Fits a shift / scale / decorrelation of the inputs on the training set ``x`` (lecture 6b).

  With :math:`\mu` the mean of the rows of ``x`` and :math:`C = \frac1n \sum_i (x_i - \mu)(x_i -
  \mu)^\top = V \Lambda V^\top` their (population) covariance, :func:`whiten` computes

  * ``"center"``: :math:`z = x - \mu` (zero mean, lecture 6b "shift the inputs");
  * ``"standardize"``: :math:`z_j = (x_j - \mu_j) / \sqrt{C_{jj} + \epsilon}` (and unit variance);
  * ``"pca"``: :math:`z = \Lambda_k^{-1/2} V_k^\top (x - \mu)` with
    :math:`\Lambda_k^{-1/2} = \mathrm{diag}(1/\sqrt{\lambda_i + \epsilon})`: keep the :math:`k`
    components with the largest eigenvalues and divide each by the *square root* of its eigenvalue
    (the lecture's "thorough method"); ``z`` has :math:`k` columns;
  * ``"zca"``: :math:`z = V \Lambda^{-1/2} V^\top (x - \mu)`, PCA whitening rotated back to the
    input axes (same dimension, the whitened input closest to ``x``).

  On the training set the whitened covariance is :math:`\mathrm{diag}(\lambda_i / (\lambda_i +
  \epsilon))`: the identity up to the shrinkage ``eps``, which keeps directions of (near-)zero
  variance from being blown up. ``eps`` is absolute, in the units of the variance of ``x``: scale
  it with your data. Eigenvalues that roundoff makes slightly negative are taken as 0.

  The statistics are exact to the storage dtype: mean and covariance are summed in float64 on the
  host (NumPy), two passes of ``chunk_size`` rows at a time, so a 100,000 x 1,000 input needs only
  its own memory plus a 1,000 x 1,000 covariance, and the result is stored in float32 (float64
  for float64 inputs under ``jax.enable_x64``). A column whose spread is within a few ulp of its
  own magnitude is constant: its variance is exactly 0 and :func:`whiten` maps it to exactly 0 in
  every method (with ``eps > 0``). The fit is eager (``keep`` as a fraction makes the output
  shape depend on the data); the transforms it returns are pure and jit-able.

  Args:
    x: training inputs, shape ``(n, d)``, real (integers such as ``uint8`` pixels are fine).
    method: ``"center"``, ``"standardize"``, ``"pca"`` or ``"zca"``.
    keep: ``"pca"`` only: ``None`` keeps all ``d`` components; an int ``k`` in ``[1, d]`` keeps the
      ``k`` largest; a float in ``(0, 1]`` keeps the fewest components whose eigenvalues sum to at
      least that fraction of the total variance.
    eps: shrinkage :math:`\epsilon \ge 0` added to every variance / eigenvalue before the square
      root. With ``eps=0`` a kept direction of zero variance (judged relative to the
      column's magnitude) is an error.
    chunk_size: rows per chunk of the covariance pass (default: about 4M elements per chunk).

  Returns:
    A :class:`Whitening` for :func:`whiten` and :func:`unwhiten`.

  Raises:
    ValueError: unknown ``method``; ``keep`` out of range or given for a method other than
      ``"pca"``; ``eps < 0``; ``x`` not two-dimensional, with NaN or infinity, with fewer than two
      rows (one for ``"center"``), or, for ``"pca"``/``"zca"``, with too few rows for the
      components asked for: ``n`` rows give a covariance of rank at most ``n - 1``, so ``"zca"`` and
      ``"pca"`` with ``keep=None`` need ``n > d`` (otherwise pass ``keep <= n - 1``); with
      ``eps=0``, a kept direction of zero variance.
    TypeError: ``x`` is complex or not numeric; ``keep`` is not None, an int or a float.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> from nnml_optax.preprocessing import fit_whitening, whiten
    >>> x = jax.random.normal(jax.random.key(0), (1000, 2)) @ jnp.array([[3.0, 0.0], [2.0, 0.1]])
    >>> params = fit_whitening(x, method="pca", eps=0.0)
    >>> z = whiten(params, x)
    >>> print(jnp.cov(z.T, bias=True).round(4) + 0.0)  # decorrelated, unit variance
    [[1. 0.]
     [0. 1.]]

  References:
    Hinton, Srivastava & Swersky, Neural Networks for Machine Learning, lecture 6b, 2012.
    LeCun, Bottou, Orr & Müller, "Efficient BackProp", 1998.
    Bell & Sejnowski, "The 'independent components' of natural scenes are edge filters", 1997 (ZCA).
  """
  _core.check_choice("method", method, _METHODS)
  _check_keep(keep, method)
  _core.check_range("eps", eps, 0.0, None, schedule=False)
  eps = float(eps)
  if chunk_size is not None:
    _core.check_int("chunk_size", chunk_size, 1)

  if not isinstance(x, np.ndarray | jax.Array):
    x = np.asarray(x)
  if x.ndim != 2:
    raise ValueError(f"x must be two-dimensional (n examples, d features); got shape {x.shape}")
  if jnp.issubdtype(x.dtype, jnp.complexfloating) or not (
    jnp.issubdtype(x.dtype, jnp.floating) or jnp.issubdtype(x.dtype, jnp.integer)
  ):
    raise TypeError(f"x must be real (floating or integer); got dtype {x.dtype}")
  n, d = x.shape
  if d == 0:
    raise ValueError(f"x must have at least one column; got shape {x.shape}")
  min_rows = 1 if method == "center" else 2
  if n < min_rows:
    raise ValueError(f"x must have at least {min_rows} rows for method={method!r}; got {n}")
  if isinstance(keep, numbers.Integral) and keep > d:
    raise ValueError(f"keep must be an int in [1, {d}] (the number of columns of x); got {keep}")

  chunk = int(chunk_size) if chunk_size is not None else max(1, 2**22 // d)
  full = method in ("pca", "zca")
  mean, second, max_abs = _moments(x, min(chunk, n), full)
  ct = _core.compute_dtype(jax.dtypes.canonicalize_dtype(x.dtype))
  # A column is constant when its spread is below the resolution of its own values in the
  # storage dtype (a few ulp of its largest magnitude): its variance is then exactly 0.
  resolution = 4 * float(jnp.finfo(ct).eps) * max_abs
  col_var = np.diagonal(second) if full else second
  constant = col_var <= resolution**2

  if not full:
    variance = np.where(constant, 0.0, second)
    components = None
  else:
    # Decompose the covariance of the varying columns only; each constant column is its own
    # eigenvector e_j with eigenvalue 0, so it contributes exact zeros to every component.
    live = np.flatnonzero(~constant)
    lam, vecs = np.zeros(d), np.eye(d)
    if live.size:
      block = second[np.ix_(live, live)]
      _, vecs_live = np.linalg.eigh(block)
      # Rayleigh quotients: the variance of the data along each computed eigenvector, exactly
      # what whitening divides by (eigh's own eigenvalues differ by up to eps64 x the largest).
      lam[: live.size] = np.einsum("ij,ij->j", vecs_live, block @ vecs_live)
      vecs[:, : live.size] = 0.0
      vecs[np.ix_(live, np.arange(live.size))] = vecs_live
      vecs[:, live.size :] = np.eye(d)[:, np.flatnonzero(constant)]
    order = np.argsort(-np.maximum(lam, 0.0), kind="stable")  # decreasing; roundoff negatives -> 0
    lam, vecs = np.maximum(lam[order], 0.0), vecs[:, order]
    # Deterministic signs: the largest-magnitude entry of every eigenvector is positive.
    pivot = vecs[np.abs(vecs).argmax(axis=0), np.arange(d)]
    vecs = vecs * np.where(pivot < 0, -1.0, 1.0)
    if keep is None:
      k = d
    elif isinstance(keep, numbers.Integral):
      k = int(keep)
    else:
      cumulative = np.cumsum(lam)
      if cumulative[-1] <= 0:
        k = d
      else:
        k = min(d, int(np.searchsorted(cumulative / cumulative[-1], float(keep))) + 1)
    if k > n - 1:
      hint = "pass keep <= n - 1 or more rows" if method == "pca" else "use more rows than columns"
      raise ValueError(
        f"x has {n} rows, so its covariance has rank at most {n - 1}, fewer than the {k} "
        f"components method={method!r} needs; {hint}"
      )
    variance, components = lam[:k], jnp.asarray(vecs[:, :k], ct)

  if eps == 0.0 and method != "center":
    # Zero relative to the data's scale: a constant column, or an eigenvalue below roundoff.
    tol = d * float(jnp.finfo(ct).eps) * float(np.max(variance, initial=0.0)) if full else 0.0
    if not bool(np.all(variance > tol)):
      raise ValueError(
        "x has a direction of (numerically) zero variance that would be divided by 0; pass "
        "eps > 0" + (" or a smaller keep" if method == "pca" else "")
      )
  mean, variance = jnp.asarray(mean, ct), jnp.asarray(variance, ct)
  scale = jnp.sqrt(variance + jnp.asarray(eps, ct))
  return Whitening(method=method, mean=mean, variance=variance, scale=scale, components=components)


def _out_dtype(x: jax.Array, params: Whitening) -> jnp.dtype:
  return x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else params.mean.dtype


def _check_features(name: str, x: jax.Array, d: int) -> None:
  if x.ndim < 1 or x.shape[-1] != d:
    raise ValueError(f"{name} must have shape (..., {d}); got {x.shape}")


@jax.jit
def whiten(params: Whitening, x: Any) -> jax.Array:
  r"""Applies a fitted :class:`Whitening` to inputs ``x`` of shape ``(..., d)``.

  :math:`z = x - \mu` (center), :math:`(x - \mu) / s` (standardize),
  :math:`V_k^\top (x - \mu) / s` (pca, shape ``(..., k)``) or :math:`V (V^\top (x - \mu) / s)`
  (zca), with :math:`s = \sqrt{\lambda + \epsilon}` (see :func:`fit_whitening`). Pure and jitted;
  arithmetic in at least float32, the result in the dtype of ``x`` (float32 for integer ``x``).

  Args:
    params: the result of :func:`fit_whitening`.
    x: inputs whose last axis has the ``d`` features of the training set.

  Returns:
    The whitened inputs.

  Examples:
    >>> import jax.numpy as jnp
    >>> from nnml_optax.preprocessing import fit_whitening, whiten
    >>> params = fit_whitening(jnp.array([[101.0, 101.0], [99.0, 99.0], [101.0, 99.0],
    ...                                   [99.0, 101.0]]), method="center")
    >>> print(whiten(params, jnp.array([[101.0, 101.0], [101.0, 99.0]])))  # lecture 6b
    [[ 1.  1.]
     [ 1. -1.]]
  """
  x = jnp.asarray(x)
  _check_features("x", x, params.mean.shape[0])
  ct = _core.compute_dtype(x.dtype, params.mean.dtype)
  z = x.astype(ct) - params.mean.astype(ct)
  if params.method == "standardize":
    z = z / params.scale.astype(ct)
  elif params.method in ("pca", "zca"):
    v = _components(params).astype(ct)
    z = jnp.matmul(z, v, precision=_HIGHEST) / params.scale.astype(ct)
    if params.method == "zca":
      z = jnp.matmul(z, v.T, precision=_HIGHEST)
  return z.astype(_out_dtype(x, params))


@jax.jit
def unwhiten(params: Whitening, z: Any) -> jax.Array:
  r"""The inverse of :func:`whiten`: maps whitened inputs ``z`` back to the input space.

  ``unwhiten(params, whiten(params, x))`` recovers ``x`` (up to roundoff) for every method except
  ``"pca"`` with dropped components, where it gives the projection of ``x`` onto the kept
  principal subspace, :math:`\mu + V_k V_k^\top (x - \mu)` (the best rank-``k`` reconstruction).

  Args:
    params: the result of :func:`fit_whitening`.
    z: whitened inputs, shape ``(..., k)`` for ``"pca"`` and ``(..., d)`` otherwise.

  Returns:
    Inputs of shape ``(..., d)``, in the dtype of ``z`` (float32 for integer ``z``).

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> from nnml_optax.preprocessing import fit_whitening, whiten, unwhiten
    >>> x = jax.random.normal(jax.random.key(0), (100, 3))
    >>> params = fit_whitening(x, method="zca")
    >>> bool(jnp.allclose(unwhiten(params, whiten(params, x)), x, atol=1e-5))
    True
  """
  z = jnp.asarray(z)
  width = params.scale.shape[0] if params.method == "pca" else params.mean.shape[0]
  _check_features("z", z, width)
  ct = _core.compute_dtype(z.dtype, params.mean.dtype)
  x = z.astype(ct)
  if params.method == "standardize":
    x = x * params.scale.astype(ct)
  elif params.method in ("pca", "zca"):
    v = _components(params).astype(ct)
    if params.method == "zca":
      x = jnp.matmul(x, v, precision=_HIGHEST)
    x = jnp.matmul(x * params.scale.astype(ct), v.T, precision=_HIGHEST)
  return (x + params.mean.astype(ct)).astype(_out_dtype(z, params))
