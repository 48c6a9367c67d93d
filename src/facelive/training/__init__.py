"""Training code for facelive's learned tests (optional extra: ``pip install '.[train]'``).

Modules that need torch import it at their top; :mod:`facelive.training.cnn_cli`,
:mod:`facelive.training.data` and :mod:`facelive.training.metrics` do not.
"""
