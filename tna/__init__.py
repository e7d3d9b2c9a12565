"""tna: train ternary spiking networks with Twin Network Augmentation, deploy them to Lava."""

__version__ = "0.1.0"
