"""The compact EBGAN/GAN core: data, models, losses, training, scoring. No Ray, no SQL."""

__version__ = "0.1.0"
