"""dnalift: DeepLIFT contribution scores for DNA-sequence neural networks."""

__version__ = "0.1.0"
