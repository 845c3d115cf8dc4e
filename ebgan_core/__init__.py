"""The compact EBGAN/GAN core: data, models, losses, training, scoring. No Ray, no SQL."""

import os

__version__ = "0.1.0"

# MKL's GEMMs in their strict reproducible mode, asked for before MKL's first call in this process (it reads the mode
# once): a member's result then does not depend on its group (``ebgan_core.determinism``). A mode the user set stays.
STRICT_GEMM_ENV = {"MKL_CBWR": "AUTO,STRICT"}
for _name, _value in STRICT_GEMM_ENV.items():
    os.environ.setdefault(_name, _value)
