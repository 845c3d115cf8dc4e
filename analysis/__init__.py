"""Read the results database (read-only) into pandas and redraw the paper's figures."""
