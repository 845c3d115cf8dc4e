"""Table 1 grids, profiles, the Ray Tune driver and the results store."""
