"""The studies (Table 1, Table 2, grid files), their grids and profiles, the Ray Tune driver and the results store."""

import os

# Set before Ray is imported anywhere in the sweep: our own progress lines replace Tune's tables (the legacy
# reporter at verbose=0 prints nothing), no usage stats, and results go to the database, not per-trial logs.
for _name, _value in (("RAY_AIR_NEW_OUTPUT", "0"), ("RAY_USAGE_STATS_ENABLED", "0"),
                      ("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")):
    os.environ.setdefault(_name, _value)
