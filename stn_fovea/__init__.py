"""stn_fovea: spatial transformers and foveal models on noisy MNIST (Lightning + Hydra)."""

__version__ = "0.1.0"
