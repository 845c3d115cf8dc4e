"""Table 1 (and Figs. 2-4, 9): its grids, profiles, adaptive-search space and the calibration of the CPU budget."""
