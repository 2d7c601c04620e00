"""Measure a benchmark case in a fresh child process: wall time, CPU time and peak memory.

A benchmark script keeps its cases as functions ``case(args: dict) -> int`` (rows handled)
and hands them to :func:`child_main` when started with ``--child NAME ARGS_JSON``; its driver
calls :func:`measure`, which starts the script again in a new interpreter for each case, so
every case pays its own imports and none inherits another's memory.

What is measured, in the child:

* **wall**: ``time.perf_counter`` around the case;
* **CPU**: user + system time of the child from the import of this module (before any library
  is imported) to the end of the case, from ``resource.getrusage``;
* **peak RSS**: ``VmHWM`` from ``/proc/self/status``. Not ``ru_maxrss``: Linux carries the
  parent's high-water mark over ``fork`` + ``exec``, so a child of a big parent would report
  the parent's peak. ``ru_maxrss`` is used only where ``/proc`` is missing (then a note says
  so).

Our package is byte-compiled first (:func:`compile_sources`), as ``pip install`` does: the
libraries of the recipes being compared are installed with their ``.pyc`` files, and a
development checkout run with ``PYTHONDONTWRITEBYTECODE`` would otherwise compile every
module of ours at each start.

Example (in a benchmark script)::

    from _harness import child_main, measure

    def case_ours(args):  # runs in the child
        ...
        return rows

    CASES = {"ours": case_ours}
    if "--child" in sys.argv:
        child_main(CASES, *sys.argv[sys.argv.index("--child") + 1 :])
    result = measure(__file__, "ours", {"path": "..."})  # {"wall", "cpu", "peak_mib", "rows"}
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["SRC", "child_main", "compile_sources", "cpu_seconds", "measure", "peak_rss_mib"]

#: The package's sources (put first on the child's ``PYTHONPATH``).
SRC = Path(__file__).resolve().parent.parent / "src"


def cpu_seconds() -> float:
    """User + system CPU time of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


_CPU_AT_IMPORT = cpu_seconds()


def peak_rss_mib() -> float:
    """This process's peak resident memory in MiB (``VmHWM``; see the module docstring)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_main(
    cases: Mapping[str, Callable[[dict[str, Any]], int | dict[str, Any]]], name: str, args: str
) -> None:
    """Run one case (in the child) and print its measurements as one JSON line.

    A case returns the rows it handled, or a dict with ``"rows"`` and any other figures it
    wants reported beside the measurements.
    """
    arguments = json.loads(args)
    started = time.perf_counter()
    result = cases[name](arguments)
    wall = time.perf_counter() - started
    cpu = cpu_seconds() - _CPU_AT_IMPORT
    extra = result if isinstance(result, dict) else {"rows": result}
    print(json.dumps({**extra, "wall": wall, "cpu": cpu, "peak_mib": peak_rss_mib()}))


def compile_sources(src: Path = SRC) -> None:
    """Byte-compile the package as an install would (only changed modules are compiled)."""
    import compileall

    compileall.compile_dir(str(src), quiet=1)


def measure(
    script: str | os.PathLike[str],
    name: str,
    args: Mapping[str, Any],
    *,
    logdir_prefix: str = "bench-",
    timeout: float | None = None,
) -> dict[str, Any]:
    """Run case ``name`` of ``script`` in a fresh interpreter; its measurements.

    The case gets ``args`` plus ``logdir``, a new temporary directory removed afterwards.

    Returns:
        ``{"wall": s, "cpu": s, "peak_mib": MiB, "rows": n}`` and the case's other figures.

    Raises:
        RuntimeError: the case failed (the end of its stderr is in the message).
    """
    compile_sources()
    with tempfile.TemporaryDirectory(prefix=logdir_prefix) as logdir:
        path = os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH", "")) if p)
        result = subprocess.run(
            [sys.executable, str(script), "--child", name, json.dumps({**args, "logdir": logdir})],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": path},
            check=False,
            timeout=timeout,
        )
    if result.returncode != 0:
        raise RuntimeError(f"case {name} failed:\n{result.stderr[-3000:]}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))
