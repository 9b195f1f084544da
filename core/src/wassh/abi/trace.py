"""``--trace``: every host call with its arguments and result, like strace."""

from __future__ import annotations

import time
from typing import Any, TextIO

from .errno import Errno


class Tracer:
    def __init__(self, out: TextIO) -> None:
        self.out = out

    def __call__(self, name: str, fn: Any, args: tuple[int, ...]) -> int:
        start = time.perf_counter()
        try:
            result = fn(*args)
        except BaseException as exc:
            self.out.write(f"[wassh] {name}({', '.join(map(str, args))}) -> {exc!r}\n")
            self.out.flush()
            raise
        took = (time.perf_counter() - start) * 1e6
        if isinstance(result, int) and 0 < result < 77:
            shown = f"{Errno(result).name}"
        else:
            shown = str(result)
        self.out.write(f"[wassh] {name}({', '.join(map(str, args))}) = {shown} <{took:.0f}us>\n")
        self.out.flush()
        return int(result) if result is not None else 0
