"""Table 2: the semi-supervised study, a ladder network (LN) and EBGAN-LN on permutation-invariant MNIST."""
