"""Rendering: the one place that turns an analysed frame into pixels and words.

- ``summary.py``: :class:`~app.render.summary.FrameSummary`, an analysed frame in numbers,
  made alike by a live result and a recorded frame;
- ``captions.py``: the words (method names, ``T = 10`` / ``original``, headers, titles);
- ``table.py``: the per-frame CSV (``frames.csv``);
- ``overlay.py``: the fixed colour scales, maps blended over frames;
- ``layers.py``: RGBA map layers, grey frames and outlines for the viewer's panels;
- ``panels.py``: raw | enhanced | risk as one image; ``panel_video.py``: such images into a
  video file;
- ``figures.py``: the evaluation's example figures.

Plain numpy and OpenCV, no Qt: the viewer (:mod:`app.ui`), review and its exports
(:mod:`app.review`), headless processing (:mod:`app.pipeline.headless`), the recorder and the
evaluation all draw with it. It imports nothing from the pipeline or the recorder; they
produce the summary it reads.
"""
