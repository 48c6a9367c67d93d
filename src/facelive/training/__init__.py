"""Training of every shipped model, one module or package per model, each run by
``facelive train MODEL`` (optional extra for the torch models: ``pip install '.[train]'``):

- :mod:`~facelive.training.quality`: the quality test's LDA (``facelive train quality``);
- :mod:`~facelive.training.cnn`: the 2D CNN test (``facelive train cnn``; its threshold alone,
  no torch: ``facelive train cnn-threshold``, :mod:`~facelive.training.cnn.threshold`);
- :mod:`~facelive.training.face3d`: the 3D test's VoxNet (``facelive train face3d``);
- :mod:`~facelive.training.fusion`: the score fusion (``facelive train fusion``);
- :mod:`~facelive.training.niqe` and :mod:`~facelive.training.biqi`: the no-reference quality
  models used by two of the 25 measures (``facelive train niqe`` / ``biqi``).

Each ``train_*`` function returns a report (a JSON-able dict); :mod:`~facelive.training.report`
writes it, renders the model card from the model's ``card_markdown(report, command)`` template
and prints the command's summary. Samples come from :mod:`facelive.datasets`, error rates from
:mod:`facelive.evaluation.metrics`. Training sits above the run-time packages: nothing outside
``facelive.training`` and ``facelive.commands`` imports it.
"""
