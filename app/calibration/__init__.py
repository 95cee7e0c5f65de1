"""Calibrated uncertainty, without Qt: the mathematics, and fitting it to a checkpoint.

Import from the modules themselves (this package imports none of them):

- :mod:`app.calibration.inputs`: what every function accepts (probabilities, labels), the
  probability floor under ``log p``.
- :mod:`app.calibration.temperature`: temperature scaling from (MC) softmax probabilities.
- :mod:`app.calibration.abstention`: an abstention threshold whose error among accepted frames
  is bounded with a stated confidence (Clopper-Pearson, fixed-sequence testing).
- :mod:`app.calibration.conformal`: split-conformal prediction sets.
- :mod:`app.calibration.reliability`: ECE (torchmetrics), NLL, Brier, the reliability diagram.
- :mod:`app.calibration.rules`: a checkpoint's fitted calibration (``metadata.calibration``)
  and applying it to one frame's passes: calibrated probabilities, UNCERTAIN, the set.
- :mod:`app.calibration.fitting`: fitting that on held-out recordings (the one module here that
  runs a model; ``python -m app calibrate``).
- :mod:`app.calibration.window`: the video-level verdict, the frames of the last seconds at
  one site pooled.

scipy and torchmetrics take seconds to import; each is imported inside the function that fits or
measures, so that applying a fitted rule to a frame costs numpy only.
"""
