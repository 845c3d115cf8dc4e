"""Table 2, the semi-supervised study: its grids, profiles and adaptive-search space."""
