"""Training data of pCLE recordings, from folders on disk to batches on the device.

- :mod:`models.data.index`: which recordings of which class a data set root holds.
- :mod:`models.data.splits`: training / validation splits and K folds, by recording.
- :mod:`models.data.frame_cache`: decoding recordings into preprocessed frames, cached on disk.
- :mod:`models.data.frame_dataset`: the decoded frames as one torch Dataset.
- :mod:`models.data.augment`: batched augmentation and normalisation on the device.
- :mod:`models.data.phantom`: synthetic pCLE videos with ground-truth masks (the demo's data).

Import from the modules themselves: the package imports nothing, so using one module does
not load the others.
"""
