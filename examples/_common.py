"""Shared bits of the examples: the digits data (bundled with scikit-learn, no download), whitened."""

from __future__ import annotations

import jax
import numpy as np

import nnml_optax as nn


def digits(seed: int = 0, method: str = "pca"):
  """((x_train, y_train), (x_valid, y_valid), (x_test, y_test)), inputs whitened on train."""
  (xtr, ytr), (xva, yva), (xte, yte) = nn.data.load_digits(seed=seed)
  w = nn.preprocessing.fit_whitening(xtr, method, keep=0.99 if method == "pca" else None)
  f = jax.jit(lambda x: nn.preprocessing.whiten(w, x))
  return (np.asarray(f(xtr)), ytr), (np.asarray(f(xva)), yva), (np.asarray(f(xte)), yte)
