"""Float64 numpy references for rmsprop (lecture 6e; torch, Keras and TF1 documentation).

Written from the papers' and frameworks' equations, independently of nnml_optax; scalars or numpy arrays.
"""

from __future__ import annotations

import numpy as np


def rmsprop(
  theta0,
  grads_or_fn,
  lr,
  decay=0.9,
  eps=1e-8,
  *,
  eps_in_sqrt=True,
  centered=False,
  initial_scale=0.0,
  momentum=None,
  nesterov=False,
  lr_inside=True,
  bias_correction=False,
  steps=None,
):
  """rmsprop, every variant; returns the iterates theta_1..theta_n.

  * mean square (lecture 6e; torch/Keras docs): n = decay*n + (1-decay)*|g|^2, n_0 = initial_scale;
    bias_correction (optax): n_hat = n / (1 - decay^t);
  * centered (§6.1, §6.4, §6.8): m = decay*m + (1-decay)*g, sigma^2 = n_hat - |m|^2;
  * denominator: sqrt(sigma^2 + eps) if eps_in_sqrt (optax, Keras, TF1) else sqrt(sigma^2) + eps
    (torch, §6.1);
  * no momentum: theta -= lr*g/den;
  * momentum, lr_inside (lecture, optax §6.4, Keras §6.8, TF1): v = mu*v - lr*g/den,
    theta += v, or with nesterov (§1.9 in look-ahead coordinates) theta += mu*v - lr*g/den;
  * momentum, not lr_inside (torch §6.1): b = mu*b + g/den; theta -= lr*b.

  ``lr`` and ``mu`` may be functions of the step t (counted from 0); ``grads_or_fn`` a sequence
  of gradients or a function theta -> gradient.
  """
  theta = np.asarray(theta0, dtype=np.result_type(np.asarray(theta0).dtype, np.float64))
  n = np.full(np.shape(theta), initial_scale, np.float64)
  m = np.zeros_like(theta)
  v = np.zeros_like(theta)
  count = steps if callable(grads_or_fn) else len(grads_or_fn)
  out = []
  for t in range(count):
    g = np.asarray(grads_or_fn(theta) if callable(grads_or_fn) else grads_or_fn[t])
    eps_t = eps(t) if callable(eps) else eps
    lr_t = lr(t) if callable(lr) else lr
    mu = momentum(t) if callable(momentum) else momentum
    n = decay * n + (1 - decay) * np.abs(g) ** 2
    n_hat = n / (1 - decay ** (t + 1)) if bias_correction else n
    if centered:
      m = decay * m + (1 - decay) * g
      var = n_hat - np.abs(m) ** 2
    else:
      var = n_hat
    den = np.sqrt(var + eps_t) if eps_in_sqrt else np.sqrt(var) + eps_t
    # a zero denominator (g = 0 with eps = 0) is a zero step: nnml_optax's documented 0/0 rule
    s = np.divide(g, den, out=np.zeros(np.shape(g), np.result_type(g, den)), where=den > 0)
    if mu is None:
      theta = theta - lr_t * s
    elif lr_inside:
      v = mu * v - lr_t * s
      theta = theta + (mu * v - lr_t * s if nesterov else v)
    else:
      v = mu * v + s
      theta = theta - lr_t * v
    out.append(theta.copy() if np.ndim(theta) else float(theta))
  return out


def nesterov_rmsprop_sutskever(theta0, grad_fn, lr, mu, decay=0.9, eps=1e-8, steps=5):
  """Nesterov-rmsprop in Sutskever's form, slide 6e-05 (the slide's sentence formalised):

      x = theta + mu*v;  g = grad(x);  MS = decay*MS + (1-decay)*g^2;
      v = mu*v - lr*g/sqrt(MS + eps);  theta += v

  Returns (theta_t, look-ahead theta_t + mu*v_t) for t = 1..steps.
  """
  theta, v, ms, out = float(theta0), 0.0, 0.0, []
  for _ in range(steps):
    g = grad_fn(theta + mu * v)
    ms = decay * ms + (1 - decay) * g * g
    v = mu * v - lr * g / np.sqrt(ms + eps)
    theta = theta + v
    out.append((theta, theta + mu * v))
  return out
