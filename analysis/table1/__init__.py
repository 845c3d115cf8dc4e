"""Table 1's analysis: the paper's figures 2, 3, 4 and 9, those beyond it, and the statistics behind them."""
