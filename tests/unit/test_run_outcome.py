import pytest

from core.run_outcome import OUTCOMES, run_outcome


@pytest.mark.parametrize("run_failed, failures, expected", [
    (False, 0, "ok"),
    (False, 1, "recovered"),
    (False, 3, "recovered"),
    (True, 1, "failed"),
    (True, 0, "failed"),  # a failed run whose root cause sits in another trace
])
def test_run_outcome(run_failed, failures, expected):
    assert run_outcome(run_failed, failures) == expected
    assert expected in OUTCOMES
