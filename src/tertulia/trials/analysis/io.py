"""Reading survey data files (CSV, Parquet, Stata .dta) into a data frame."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from tertulia.trials.analysis.errors import TrialInputError

READERS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".dta": "stata"}


def read_data(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        raise TrialInputError(
            f"{path.name}: unsupported file type {path.suffix!r}; use .csv, .parquet or .dta"
        )
    if not path.exists():
        raise TrialInputError(f"data file {path} does not exist")
    try:
        if kind == "csv":
            return pd.read_csv(path)
        if kind == "parquet":
            return pd.read_parquet(path)
        # Value labels would turn 0/1 codes into strings; the analysis needs the codes.
        return pd.read_stata(path, convert_categoricals=False)
    except (ValueError, OSError) as exc:
        raise TrialInputError(f"could not read {path.name}: {exc}") from None


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
