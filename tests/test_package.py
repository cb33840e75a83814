from __future__ import annotations

import rnnschur


def test_core_is_importable():
    assert rnnschur._core.eigen_version.startswith("3.4")
    assert rnnschur.__version__
