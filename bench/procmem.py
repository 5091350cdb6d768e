"""Sample the memory of a process and all its descendants (and optionally a folder's size on disk)
in a background thread, for benchmarks of commands that fork workers.

    with TreeSampler(process.pid, folder=out / "work") as sampler:
        process.wait()
    peaks = peaks_between(sampler.samples, started, finished)

Memory is read from ``/proc/<pid>/smaps_rollup`` (Linux 4.14+). PSS (proportional set size)
splits pages shared between processes, such as a forked worker's copy-on-write pages, among
them, so the PSS of a tree adds up to what the tree really holds; RSS counts a shared page in
every process. Peaks are sampled: a process living shorter than ``interval`` may be missed, and
a peak between two samples is not seen (``ru_maxrss`` of the waited process is the exact
largest-process RSS peak, to compare with).

Pure standard library on purpose (psutil would only wrap the same /proc files), so the harness
runs in any venv.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Sample:
    time: float  # time.time() when the sample was taken
    tree_pss: int  # bytes, the root and all its descendants
    largest_pss: int  # bytes, the single process with the most PSS
    largest_rss: int  # bytes, the single process with the most RSS
    processes: int  # how many processes the tree had (0 once the root has exited)
    folder_bytes: int | None  # sum of file sizes under the folder; None when none is sampled


@dataclass(frozen=True)
class Peaks:
    tree_pss: int | None  # bytes; None when no sample fell in the window
    largest_pss: int | None
    largest_rss: int | None
    folder_bytes: int | None
    samples: int


def _parent_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            line = stat.read()
    except OSError:  # exited since /proc was listed
        return None
    # The command name (field 2) is in parentheses and may itself hold spaces or ')'.
    fields = line[line.rfind(b")") + 2 :].split()
    return int(fields[1]) if len(fields) > 1 else None


def tree_pids(root: int) -> list[int]:
    """``root`` and every process descending from it, alive at the time of the call."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            parent = _parent_of(int(entry.name))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry.name))
    found, pending = [], [root] if os.path.exists(f"/proc/{root}") else []
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending.extend(children.get(pid, ()))
    return found


def pss_rss(pid: int) -> tuple[int, int] | None:
    """(PSS, RSS) of one process in bytes, or None if it has exited or cannot be read."""
    pss = rss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as rollup:
            for line in rollup:
                if line.startswith(b"Pss:"):
                    pss = int(line.split()[1]) * 1024
                elif line.startswith(b"Rss:"):
                    rss = int(line.split()[1]) * 1024
    except (OSError, ValueError):  # exited mid-read, or a zombie whose memory is gone
        return None
    return pss, rss


def folder_size(folder: str | os.PathLike) -> int:
    """Sum of the sizes of the files under ``folder`` (0 if it does not exist yet)."""
    total, pending = 0, [os.fspath(folder)]
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except OSError:  # the folder went away (a step cleaning up) or is not there yet
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
            except OSError:  # removed or renamed between the listing and the stat
                continue
    return total


def sample_tree(root: int, folder: str | os.PathLike | None = None) -> Sample:
    """One sample of the tree under ``root`` (and of ``folder``), taken now."""
    taken = time.time()
    readings = [r for r in map(pss_rss, tree_pids(root)) if r is not None]
    return Sample(
        time=taken,
        tree_pss=sum(pss for pss, _ in readings),
        largest_pss=max((pss for pss, _ in readings), default=0),
        largest_rss=max((rss for _, rss in readings), default=0),
        processes=len(readings),
        folder_bytes=None if folder is None else folder_size(folder),
    )


class TreeSampler:
    """Samples the tree under ``pid`` every ``interval`` seconds, from ``start()`` to ``stop()``,
    into ``samples``; also a context manager."""

    def __init__(self, pid: int, interval: float = 0.5,
                 folder: str | os.PathLike | None = None) -> None:
        self.pid = pid
        self.interval = interval
        self.folder = None if folder is None else Path(folder)
        self.samples: list[Sample] = []
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> TreeSampler:
        if self._thread is not None:
            raise RuntimeError("TreeSampler already started")
        self._thread = threading.Thread(target=self._run, name=f"TreeSampler-{self.pid}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[Sample]:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        return self.samples

    def _run(self) -> None:
        # wait() returns early when stop() is called, so stopping costs at most one sample.
        while True:
            self.samples.append(sample_tree(self.pid, self.folder))
            if self._stopping.wait(self.interval):
                return

    def __enter__(self) -> TreeSampler:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def peaks_between(samples: list[Sample], t0: float, t1: float) -> Peaks:
    """The highest values among the samples taken in [t0, t1] (None where there are none:
    a window shorter than the sampling interval may hold no sample)."""
    window = [s for s in samples if t0 <= s.time <= t1]
    folders = [s.folder_bytes for s in window if s.folder_bytes is not None]
    return Peaks(
        tree_pss=max((s.tree_pss for s in window), default=None),
        largest_pss=max((s.largest_pss for s in window), default=None),
        largest_rss=max((s.largest_rss for s in window), default=None),
        folder_bytes=max(folders, default=None),
        samples=len(window),
    )
