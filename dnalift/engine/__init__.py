"""The DeepLIFT engine's stages, in data-flow order (the façade is :mod:`dnalift.deeplift`).

``graph`` (Keras model -> nodes) -> ``rules`` (nodes -> steps: the one registry of step kinds,
with the layer maths in ``affine``, ``nonlinear``, ``maxpool``) -> ``policy`` (mode -> rule of
each step) -> ``targets`` (what is explained) -> ``diffnet`` (steps evaluated at x and as
differences over (sequence, reference) pairs); ``backend`` holds the per-backend code.
"""
