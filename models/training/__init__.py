"""Training a classifier on pCLE recordings: ``python -m models.train`` (``python -m app train``).

- :mod:`models.training.config`: a run's settings, the optimiser recipes, its file names.
- :mod:`models.training.prepare`: the data set discovered and decoded once per run.
- :mod:`models.training.loop`: one run on one split: epochs, validation, checkpoints, resume.
- :mod:`models.training.cross_validation`: K-fold cross-validation by recording.
- :mod:`models.training.summary`: the run's summary and the lines printed from it.
- :mod:`models.training.resume`: the resume file.
- :mod:`models.training.distributed`: one process or many (``torchrun``): device and
  collectives; also used by ``python -m app evaluate``.
- :mod:`models.training.cli`: the command line.

Import from the modules themselves: the package imports nothing, so the distributed
helpers do not pull in the training loop.
"""
