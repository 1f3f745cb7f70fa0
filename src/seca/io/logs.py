"""The run log: one JSON object per line (``log.jsonl``), flushed as it is written."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Optional


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class JsonlLog:
    """Appends ``{"event": ..., "time": ..., **fields}`` lines; ``path=None`` logs nowhere."""

    def __init__(self, path: Optional[Path]):
        self.path = Path(path) if path is not None else None
        self._file = open(self.path, "a") if self.path is not None else None

    def __call__(self, event: str, **fields: Any) -> None:
        if self._file is None:
            return
        record = {"event": event, "time": round(time.time(), 3), **{k: _plain(v) for k, v in fields.items()}}
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> "JsonlLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
