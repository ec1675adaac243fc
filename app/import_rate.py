"""How fast an import goes: messages/s and the time left, from (done, total) steps (Qt-free, for the CLI and GUI)."""
from __future__ import annotations

import time
from typing import Callable


class ImportRate:
    """Feed it progress(done, total); describe() says '1,200 / 10,000 messages (12%), 340 messages/s, 0:26 left'.

    The first step sets the start: messages an earlier import already stored (a resumed import
    starts past 0) do not count toward the rate.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.start = 0.0
        self.first_done: int | None = None

    def step(self, done: int) -> float:
        """Record a step; returns the time it was seen."""
        now = self.clock()
        if self.first_done is None:
            self.first_done, self.start = done, now
        return now

    def rate(self, done: int, now: float) -> float:
        elapsed = now - self.start
        return (done - (self.first_done or 0)) / elapsed if elapsed > 0 else 0.0

    def left(self, done: int, total: int, now: float) -> str:
        """'0:26 left', or '' until there is a rate (or when done)."""
        rate = self.rate(done, now)
        if rate <= 0 or done >= total:
            return ""
        seconds = int((total - done) / rate)
        return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d} left" if seconds >= 3600 \
            else f"{seconds // 60}:{seconds % 60:02d} left"

    def describe(self, done: int, total: int, now: float, left: bool = True) -> str:
        """The progress line; left=False leaves out the time left (an import that stopped)."""
        pct = 100 * done // max(total, 1)
        left_text = self.left(done, total, now) if left else ""
        return (f"{done:,} / {total:,} messages ({pct}%), {self.rate(done, now):,.0f} messages/s"
                + (f", {left_text}" if left_text else ""))
