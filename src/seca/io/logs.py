"""The run log: one JSON object per line (``log.jsonl``), flushed as it is written."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class JsonlLog:
    """Appends ``{"event": ..., "time": ..., **fields}`` lines; ``path=None`` logs nowhere."""

    def __init__(self, path: Path | None):
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

    def __enter__(self) -> JsonlLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def summary_writer_class():
    """TensorBoard's SummaryWriter, or a clear error when the package is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        from ..errors import SecaError

        raise SecaError("train.tensorboard needs the tensorboard package: pip install 'seca[tensorboard]'") from None
    return SummaryWriter


class RunLog(JsonlLog):
    """The log of a run: ``<out>/log.jsonl`` (appended to, so a resumed run continues it) and, when asked,
    TensorBoard scalars in ``<out>/tensorboard`` for every loss term, learning rate and accuracy."""

    def __init__(self, out: Path | None, tensorboard: bool = False):
        super().__init__(Path(out) / "log.jsonl" if out is not None else None)
        self._writer = None
        if tensorboard and out is not None:
            self._writer = summary_writer_class()(str(Path(out) / "tensorboard"))

    def __call__(self, event: str, **fields: Any) -> None:
        super().__call__(event, **fields)
        if self._writer is None:
            return
        if event == "train_step":
            for key, value in fields.items():
                if key == "lr":
                    for group, lr in value.items():
                        self._writer.add_scalar(f"lr/{group}", lr, fields["step"])
                elif key not in ("task", "epoch", "step") and isinstance(_plain(value), (int, float)):
                    self._writer.add_scalar(f"train/{key}", _plain(value), fields["step"])
        elif event == "task_end":
            self._writer.add_scalar("eval/accuracy_seen", fields["acc"], fields["task"] + 1)

    def close(self) -> None:
        super().close()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
