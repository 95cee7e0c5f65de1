"""The Qt viewer: raw frame | enhanced attribution map | risk map, live or from a recording.

Start it with ``python -m app`` (:func:`app.ui.viewer.run_viewer`). The window
(:class:`app.ui.main_window.MainWindow`) pulls frames and results from the Qt-free frame
pipeline (:mod:`app.pipeline`) on a timer; it and the review window
(:class:`app.ui.review_window.ReviewWindow`) draw a frame with one presenter
(:class:`app.ui.presenter.FramePresenter`) from its Qt-free summary, pixels and words made by
:mod:`app.render`. The logic that needs no screen (readout text, notices, snapshots,
preferences, the pipeline session) lives in plain modules next to them.
"""
