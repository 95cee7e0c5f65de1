"""The subcommands of ``python -m app``, one module per command family.

Each module exposes ``add_parser(sub)``, which adds its subparser(s) to the CLI's
subparsers and sets ``handler``; :mod:`app.cli` calls them in order and dispatches.

- :mod:`app.commands.view`: ``view`` (the live viewer) and ``run`` (the shipped demo)
- :mod:`app.commands.explain`: ``explain`` (one frame to images, maps and a summary)
- :mod:`app.commands.bench`: ``bench`` (time the explanation engine)
- :mod:`app.commands.process`: ``process`` (every frame of a recording, headless)
- :mod:`app.commands.bench_pipeline`: ``bench-pipeline`` (time the frame pipeline)
- :mod:`app.commands.evaluate`: ``evaluate`` (original vs proposed on held-out videos)
- :mod:`app.commands.review`: ``review`` (a recorded session: window or headless exports)
- :mod:`app.commands.common`: what they share (``CommandError``, ``DEFAULT_OUT``)
"""
