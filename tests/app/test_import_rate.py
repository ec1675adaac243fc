"""app/import_rate.py: messages/s and time left, counting only the messages this run stored."""
from __future__ import annotations

from app.import_rate import ImportRate


def test_rate_and_time_left_start_from_the_first_step() -> None:
    now = [10.0]
    rate = ImportRate(clock=lambda: now[0])
    rate.step(500)  # a resumed import: 500 were stored before
    assert rate.describe(500, 1000, now[0]) == "500 / 1,000 messages (50%), 0 messages/s"
    now[0] = 15.0
    rate.step(750)
    assert rate.rate(750, now[0]) == 50.0
    assert rate.left(750, 1000, now[0]) == "0:05 left"
    assert rate.left(1000, 1000, now[0]) == ""


def test_hours_are_shown_for_long_imports() -> None:
    now = [0.0]
    rate = ImportRate(clock=lambda: now[0])
    rate.step(0)
    now[0] = 10.0
    assert rate.left(10, 10_000, now[0]) == "2:46:30 left"
