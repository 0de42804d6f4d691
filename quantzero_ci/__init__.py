"""QuantZero CI: measure, compress, verify and certify PyTorch models before they ship."""

__version__ = "0.1.0"
