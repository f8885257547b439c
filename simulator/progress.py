"""A plain-text progress bar on stderr: ``\r[#####.....] 120/400 ventas``."""

from __future__ import annotations

import sys
import threading
from typing import TextIO


class ProgressBar:
    def __init__(self, total: int, *, stream: TextIO | None = None, width: int = 30, enabled: bool = True) -> None:
        self.total = max(total, 0)
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.enabled = enabled
        self._lock = threading.Lock()

    def render(self) -> str:
        filled = self.width if not self.total else self.width * min(self.done, self.total) // self.total
        return f"\r[{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total} ventas"

    def advance(self, step: int = 1) -> None:
        with self._lock:
            self.done += step
            if self.enabled:
                self.stream.write(self.render())
                self.stream.flush()

    def close(self, message: str = "") -> None:
        if self.enabled:
            self.stream.write(self.render() + (f" — {message}" if message else "") + "\n")
            self.stream.flush()
