from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import settings

# CI (CI=true) auto-loads hypothesis' built-in "ci" profile; locally use "dev".
settings.register_profile("dev", max_examples=50, deadline=None)
if not os.environ.get("CI"):
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def pytest_report_header(config):
    import rnnschur

    return f"rnnschur {rnnschur.__version__}, numpy {np.__version__}"


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
