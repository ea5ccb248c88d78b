"""A one-line progress bar for terminals (silent when output is redirected, e.g. under Snakemake)."""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, label: str, enabled: bool | None = None, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.total, self.label, self.start = max(1, total), label, time.monotonic()

    def update(self, done: int, info: str = "") -> None:
        if not self.enabled:
            return
        frac = min(1.0, done / self.total)
        elapsed = time.monotonic() - self.start
        eta = elapsed / frac - elapsed if frac > 0 else 0.0
        bar = "#" * int(24 * frac)
        self.stream.write(f"\r{self.label} {done}/{self.total} [{bar:<24}] {info} eta {eta:5.0f}s ")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
