"""MI-GAN: multi-focus data, models, training, transfer and evaluation."""
