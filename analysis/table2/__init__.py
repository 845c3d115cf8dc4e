"""Table 2's analysis: the table beside the paper's numbers, Fig. 10 and the test error against the steps."""
