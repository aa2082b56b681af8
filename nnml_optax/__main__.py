"""``python -m nnml_optax``: the ``nnml-optax`` command (needs the ``examples`` extra)."""

from nnml_optax.cli import main

if __name__ == "__main__":
  raise SystemExit(main())
