from __future__ import annotations

import pytest

from tertulia.trials.analysis.synthetic import generate


@pytest.fixture(scope="session")
def synthetic():
    return generate(seed=7)
