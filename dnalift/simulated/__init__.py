"""The simulated GATA/TAL task of the DeepLIFT paper, on top of the library.

This subpackage sits above :mod:`dnalift` (it imports the library; the library never imports
it): :mod:`.simulate` makes the data set, :mod:`.train` the example model, :mod:`.evaluation`
recomputes the paper's comparison of attribution methods.
"""
