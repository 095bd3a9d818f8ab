"""Where the project finds things when the config does not say: the data root, the same for `make` and for
`python experiments/train.py` run from any folder."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "datasets"  # the offline copies, where a workplace provides them
ENV_VAR = "BNREPRO_DATA"


def default_data_root() -> str:
    """BNREPRO_DATA when set; else ../shared/datasets beside this checkout when it exists; else ./data in the
    checkout (where a download goes)."""
    if ENV_VAR in os.environ:
        return os.environ[ENV_VAR]
    return str(SHARED_DATA if SHARED_DATA.is_dir() else PROJECT_ROOT / "data")
