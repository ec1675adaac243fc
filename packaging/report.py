"""Prints the packaging figures: artefact sizes, the biggest contributors, cold start and build time.

    python packaging/report.py [--dist dist] [--no-timings]

Sizes come from dist/ (the artefacts and the unpacked dist/loci folder). Timings run the
bundle itself (Linux): time from launch to a visible window under Xvfb (xdotool), and time
from launch to printed results of `loci search`, each after evicting the bundle's files from
the page cache (posix_fadvise DONTNEED, so "cold" without disturbing other processes), or
with --drop-caches (root, Linux) after dropping the whole page cache, system libraries included.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"tar.gz": 500e6, "unpacked": 1.4e9, "window": 3.0, "first search": 6.0}
MB = 1e6


def bundle_files(folder: Path) -> Iterator[tuple[str, int]]:
    """(path relative to the folder, size) of every regular file; symlinks count nothing."""
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(dirpath) / name
            if not path.is_symlink():
                yield path.relative_to(folder).as_posix(), path.stat().st_size


def contributor(rel: str) -> str:
    """What a file belongs to: its package folder inside _internal/ (or a top-level file)."""
    parts = rel.split("/")
    for base in ("_internal", "Frameworks", "Resources"):
        if base in parts[:-1]:
            parts = parts[parts.index(base) + 1:]
            break
    if parts[0] in ("PySide6", "torch") and len(parts) > 2:
        return "/".join(parts[:2])  # torch/lib vs the rest of torch; PySide6/Qt vs the bindings
    return parts[0] if len(parts) > 1 else rel


def biggest(files: Iterable[tuple[str, int]], n: int = 10) -> list[tuple[str, int]]:
    """The n biggest contributors by summed size, biggest first."""
    sums: dict[str, int] = defaultdict(int)
    for rel, size in files:
        sums[contributor(rel)] += size
    return sorted(sums.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


def _evict(folder: Path) -> None:
    """Drop the folder's files from the page cache, so the next start reads them from disk."""
    if not hasattr(os, "posix_fadvise"):
        return
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            try:
                fd = os.open(Path(dirpath) / name, os.O_RDONLY)
            except OSError:
                continue
            try:
                os.fdatasync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def _drop_all_caches(_folder: Path) -> None:
    """Drop the whole page cache (root): the bundle and the system libraries it loads start cold."""
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def _free_display() -> int:
    for n in range(90, 200):
        if not Path(f"/tmp/.X{n}-lock").exists() and not Path(f"/tmp/.X11-unix/X{n}").exists():
            return n
    raise RuntimeError("no free X display number")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a running process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_to_window(folder: Path, home: Path, cold: bool,
                   evict: Callable[[Path], None] = _evict) -> tuple[float, float] | None:
    """(wall, CPU) seconds from starting loci-gui to its window being mapped on a private Xvfb."""
    if not (shutil.which("Xvfb") and shutil.which("xdotool")):
        return None
    display = f":{_free_display()}"
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "DISPLAY": display, "LANG": "C.UTF-8",
               "TMPDIR": str(home)}
        for _ in range(100):
            if subprocess.run(["xdotool", "getdisplaygeometry"], env=env,
                              capture_output=True, check=False).returncode == 0:
                break
            time.sleep(0.05)
        if cold:
            evict(folder)
        start = time.monotonic()
        gui = subprocess.Popen([str(folder / "loci-gui")], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while time.monotonic() - start < 60:
                found = subprocess.run(["xdotool", "search", "--onlyvisible", "--classname", "loci-gui"],
                                       env=env, capture_output=True, text=True, check=False)
                if found.stdout.strip():
                    return time.monotonic() - start, _cpu_seconds(gui.pid)
                if gui.poll() is not None:
                    return None
                time.sleep(0.02)
            return None
        finally:
            gui.terminate()
            gui.wait(10)
    finally:
        xvfb.terminate()
        xvfb.wait(10)


def time_cli(folder: Path, home: Path, args: list[str], cold: bool,
             evict: Callable[[Path], None] = _evict) -> tuple[float, float]:
    """(wall, CPU) seconds from starting `loci ARGS` to its exit (results printed)."""
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "TMPDIR": str(home)}
    if cold:
        evict(folder)
    start = time.monotonic()
    proc = subprocess.Popen([str(folder / "loci"), *args], env=env, stdout=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"loci {' '.join(args)} exited with {proc.returncode}")
    return time.monotonic() - start, usage.ru_utime + usage.ru_stime


def _fmt_target(name: str, value: float, unit: str) -> str:
    target = TARGETS[name]
    shown = f"{value / MB:.0f} MB" if unit == "MB" else f"{value:.1f} s"
    limit = f"{target / MB:.0f} MB" if unit == "MB" else f"{target:.0f} s"
    return f"{shown}  (target <= {limit}: {'ok' if value <= target else 'OVER'})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", default=str(ROOT / "dist"))
    parser.add_argument("--no-timings", action="store_true")
    parser.add_argument("--runs", type=int, default=3, help="cold starts to time (median)")
    parser.add_argument("--drop-caches", action="store_true",
                        help="cold = the whole page cache dropped (root), not only the bundle's files")
    args = parser.parse_args(argv)
    dist = Path(args.dist)
    folder = dist / "loci"
    info = json.loads((dist / "build-info.json").read_text()) if (dist / "build-info.json").exists() else {}

    print("== Build")
    if "bundle_seconds" in info:
        print(f"PyInstaller folder: {info['bundle_seconds']:.0f} s; artefacts: {info.get('artefact_seconds', 0):.0f} s")
    print("\n== Artefacts (compressed)")
    for name in info.get("artefacts", []):
        size = (dist / name).stat().st_size
        label = _fmt_target("tar.gz", size, "MB") if name.endswith(".tar.gz") else f"{size / MB:.0f} MB"
        print(f"{name}: {label}")
    files = list(bundle_files(folder))
    total = sum(size for _, size in files)
    print(f"\n== Unpacked folder {folder}: {_fmt_target('unpacked', total, 'MB')}, {len(files)} files")
    print("\n== Ten biggest contributors")
    for name, size in biggest(files):
        print(f"{size / MB:8.1f} MB  {name}")
    print("\n== Ten biggest files")
    for rel, size in sorted(files, key=lambda f: -f[1])[:10]:
        print(f"{size / MB:8.1f} MB  {rel}")

    if args.no_timings or not sys.platform.startswith("linux"):
        return 0
    evict = _drop_all_caches if args.drop_caches else _evict
    what = "the whole page cache dropped" if args.drop_caches else "bundle evicted from the page cache"
    print(f"\n== Start-up from the bundle (median of {args.runs}; cold = {what})")
    with tempfile.TemporaryDirectory(prefix="loci-report-") as tmp:
        home = Path(tmp)
        time_cli(folder, home, ["demo"], cold=False)  # a store with the sample conversation
        windows = [time_to_window(folder, home, cold=True, evict=evict) for _ in range(args.runs)]
        windows_warm = [time_to_window(folder, home, cold=False) for _ in range(args.runs)]
        query = ["search", "Where does Maya's sister live?", "--user", "maya", "-k", "3"]
        searches = [time_cli(folder, home, query, cold=True, evict=evict) for _ in range(args.runs)]
        searches_warm = [time_cli(folder, home, query, cold=False) for _ in range(args.runs)]
        version = [time_cli(folder, home, ["--version"], cold=True, evict=evict) for _ in range(args.runs)]

    def show(label: str, runs: list, target: str | None = None) -> None:
        got = sorted((r for r in runs if r is not None), key=lambda r: r[0])
        if not got:
            print(f"{label}: not measured (needs Xvfb and xdotool)")
            return
        wall, cpu = got[len(got) // 2]
        verdict = ""
        if target:
            verdict = f"  (target <= {TARGETS[target]:.0f} s: {'ok' if wall <= TARGETS[target] else 'OVER'})"
        print(f"{label}: {wall:5.1f} s wall, {cpu:5.1f} s CPU{verdict}")

    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs "
          "(wall time grows with load; CPU time does not)")
    show("cold start to window      ", windows, "window")
    show("warm start to window      ", windows_warm)
    show("cold start to first search", searches, "first search")
    show("warm start to first search", searches_warm)
    show("cold `loci --version`     ", version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
