"""Time: a clock that tests replace, and the invocation's deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


# Plain classes, not dataclasses: @dataclass generates and compiles its methods at import, on every cold start.
class Clock:
    """Monotonic time and sleep, swapped for a fake in tests so that nothing waits for real; and the date and time
    a run is stamped with (its run object's key), which a simulation of nights moves."""

    def __init__(
        self,
        now: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall: Callable[[], datetime] = utc_now,
    ) -> None:
        self.now = now
        self.sleep = sleep
        self.wall = wall


class Deadline:
    """When the invocation must be done: the platform's remaining time, read once at the start."""

    def __init__(self, clock: Clock, at: float) -> None:
        self.clock = clock
        self.at = at

    @classmethod
    def after(cls, clock: Clock, seconds: float) -> Deadline:
        return cls(clock, clock.now() + seconds)

    def left(self, keep: float = 0.0) -> float:
        """Seconds left before the deadline, keeping `keep` seconds back."""
        return self.at - keep - self.clock.now()
