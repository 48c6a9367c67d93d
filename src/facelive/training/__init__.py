"""Training code for facelive's learned tests (optional extra: ``pip install '.[train]'``).

Modules that need torch import it at their top; :mod:`facelive.training.cnn_cli`,
:mod:`facelive.training.data` and :mod:`facelive.training.evaluate_cnn` do not. Samples come from
:mod:`facelive.datasets`, error rates from :mod:`facelive.evaluation.metrics`.
"""
