"""Float64 numpy references for input preprocessing and sparse initialization."""

import numpy as np


def whitening(x, method, keep=None, eps=1e-5):
  """Lecture 6b: shift, scale, or decorrelate with PCA / ZCA, written out plainly.

  Returns ``(whiten, unwhiten, eigenvalues)``: two functions of float64 arrays and the kept
  eigenvalues (or per-feature variances) in decreasing order. ``keep`` as an int is a component
  count, as a float a fraction of the total variance (the fewest components reaching it).
  """
  x = np.asarray(x, np.float64)
  mu = x.mean(axis=0)
  xc = x - mu
  if method == "center":
    return (lambda a: a - mu), (lambda z: z + mu), xc.var(axis=0)
  if method == "standardize":
    var = xc.var(axis=0)
    s = np.sqrt(var + eps)
    return (lambda a: (a - mu) / s), (lambda z: z * s + mu), var
  cov = xc.T @ xc / x.shape[0]
  lam, vecs = np.linalg.eigh(cov)
  lam, vecs = np.maximum(lam[::-1], 0.0), vecs[:, ::-1]
  # Eigenvectors are defined up to sign: make the largest-magnitude entry of each positive.
  vecs = vecs * np.where(vecs[np.abs(vecs).argmax(axis=0), np.arange(vecs.shape[1])] < 0, -1, 1)
  if keep is None:
    k = len(lam)
  elif isinstance(keep, int):
    k = keep
  else:
    ratio = np.cumsum(lam) / lam.sum()
    k = next(i + 1 for i, r in enumerate(ratio) if r >= keep)
  lam, vecs = lam[:k], vecs[:, :k]
  s = np.sqrt(lam + eps)  # divide each component by the square root of its eigenvalue
  if method == "pca":
    return (lambda a: (a - mu) @ vecs / s), (lambda z: (z * s) @ vecs.T + mu), lam
  if method == "zca":
    return (
      (lambda a: ((a - mu) @ vecs / s) @ vecs.T),
      (lambda z: ((z @ vecs) * s) @ vecs.T + mu),
      lam,
    )
  raise ValueError(method)


def hessian_linear_neuron(x):
  """Hessian of E(w) = 1/2 sum_i (w . x_i - t_i)^2 for a linear neuron (lecture 6b): X^T X."""
  x = np.asarray(x, np.float64)
  return x.T @ x


def condition_number(h):
  lam = np.linalg.eigvalsh(np.asarray(h, np.float64))
  return lam.max() / lam.min()
