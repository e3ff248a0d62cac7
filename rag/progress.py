"""Progress of long steps (embedding, assembling the model): a tqdm bar with rate and ETA
when stderr is a terminal, otherwise a plain line every few seconds, so logs and pipes get
readable lines instead of carriage returns."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

Log = Callable[[str], None]
# A plain line at most this often; the last one is always written.
EVERY_S = 5.0


class Progress:
    """`update(done)` with the running count; `close()` when the step ends."""

    def __init__(
        self,
        label: str,
        total: int,
        log: Log,
        *,
        terminal: bool = False,
        unit: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label, self.total, self.log, self.unit = label, total, log, unit
        self._clock = clock
        self._started = self._last = clock()
        self._done = 0
        self._bar: Any = None  # a tqdm bar; tqdm ships no type information
        if terminal:
            from tqdm import tqdm  # type: ignore[import-untyped]

            self._bar = tqdm(
                total=total,
                desc=label,
                unit=unit or "it",
                unit_scale=unit == "B",
                unit_divisor=1024 if unit == "B" else 1000,
                file=sys.stderr,
                dynamic_ncols=True,
            )

    def update(self, done: int) -> None:
        step, self._done = done - self._done, done
        if self._bar is not None:
            self._bar.update(step)
            return
        now = self._clock()
        if done >= self.total or now - self._last >= EVERY_S:
            self._last = now
            self.log(self.line(done, now - self._started))

    def line(self, done: int, elapsed: float) -> str:
        """One plain progress line: counts, share, rate and time left."""
        share = done / self.total if self.total else 1.0
        rate = done / elapsed if elapsed > 0 else 0.0
        text = f"{self.label}: {self._amount(done)}/{self._amount(self.total)} ({share:.0%}"
        if rate > 0 and done < self.total:
            text += f", {self._amount(rate)}/s, about {_duration((self.total - done) / rate)} left"
        return text + ")"

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def _amount(self, n: float) -> str:
        if self.unit == "B":
            return f"{n / (1024 * 1024):,.0f} MB"
        return f"{n:,.0f}"


def on_terminal(log: Log, default: Log) -> bool:
    """Whether progress may draw a bar: messages go to the default stderr sink, a terminal."""
    return log is default and sys.stderr.isatty()


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    return f"{round(seconds / 60)} min"
