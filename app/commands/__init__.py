"""The subcommands of ``python -m app``, one module per command family.

Each module exposes ``add_parser(sub)``, which adds its subparser(s) to the CLI's
subparsers and sets ``handler``; :mod:`app.cli` calls them in order and dispatches. A command
reports a user-facing failure by raising :class:`~app.commands.common.CommandError`; none of
them imports :mod:`app.cli`.

- :mod:`app.commands.view`: ``view`` (the live viewer, the default command)
- :mod:`app.commands.run`: ``run`` (the shipped demo: the viewer, or files when headless)
- :mod:`app.commands.explain`: ``explain`` (one frame to images, maps and a summary)
- :mod:`app.commands.bench`: ``bench`` (time the explanation engine)
- :mod:`app.commands.process`: ``process`` (every frame of a recording, headless)
- :mod:`app.commands.bench_pipeline`: ``bench-pipeline`` (time the frame pipeline)
- :mod:`app.commands.bench_recording`: ``bench-recording`` (what recording a session costs)
- :mod:`app.commands.evaluate`: ``evaluate`` (original vs proposed on held-out videos)
- :mod:`app.commands.review`: ``review`` (a recorded session: window or headless exports)
- :mod:`app.commands.soak`: ``soak`` (an endurance run of the viewer)
- :mod:`app.commands.forwarded`: ``train``, ``phantom``, ``demo-model`` (the rest of the
  command line goes to ``models.train``, ``models.phantom``, ``models.demo``)
- :mod:`app.commands.common`: what they share (``CommandError``, ``DEFAULT_OUT``)

The measurements behind the ``bench*`` commands are in :mod:`app.benchmarks`.
"""
