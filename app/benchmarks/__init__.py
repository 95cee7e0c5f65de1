"""Benchmarks: what each stage costs, one module per thing timed.

- :mod:`app.benchmarks.engine`: the explanation engine alone (one forward, the original, the
  T batched MC Dropout passes, the pass-by-pass loop); ``python -m app bench``.
- :mod:`app.benchmarks.pipeline`: the frame pipeline around it (throughput, live latency,
  dropped frames, resident memory); ``python -m app bench-pipeline``.
- :mod:`app.benchmarks.recording`: what recording a session costs (write time, disk, what a
  kill could lose, the analysis rate with and without it); ``python -m app bench-recording``.

The commands live in :mod:`app.commands`; these modules only measure and report.
"""
