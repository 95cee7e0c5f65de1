"""Live frame preprocessing: a raw pCLE frame -> the model's input, the same for the viewer,
training and evaluation.

- :mod:`app.preprocess.field_of_view`: finds the circular field of view, crops to it and
  blanks everything outside it (logos, scale bars); grey or colour, 8- or 16-bit frames.
- :mod:`app.preprocess.model_input`: grey conversion, FOV crop and mask, resize and
  normalisation into the tensor the network takes.

Import from the modules themselves: the package imports nothing, so the field of view
(NumPy and OpenCV only) stays free of torch.
"""
