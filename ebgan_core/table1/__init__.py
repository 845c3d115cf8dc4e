"""Table 1 (and Figs. 2-4, 9): EBGAN and GAN multi-layer perceptrons on MNIST, scored by I' with a pinned judge."""
