"""Lists the paths a traced process wrote (strace -f -y output), for the smoke test's write audit.

    python packaging/trace_writes.py CWD TRACE_FILE...    # one absolute path per line
"""
from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import PurePosixPath

# pid, call name, arguments, result
_CALL = re.compile(r"^(?:\d+\s+)?(?P<call>[a-z0-9_]+)\((?P<args>.*)\)\s+=\s+(?P<result>-?\d+)")
# an argument: a dirfd decorated by -y (3</some/dir> or AT_FDCWD</cwd>), or a quoted path
_ARG = re.compile(r'(?P<fd>(?:AT_FDCWD|\d+)(?:<(?P<fdpath>[^>]*)>)?)|"(?P<path>(?:[^"\\]|\\.)*)"')
_WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC")
_ALWAYS_WRITES = {"creat", "mkdir", "mkdirat", "rename", "renameat", "renameat2", "unlink", "unlinkat",
                  "rmdir", "symlink", "symlinkat", "link", "linkat", "truncate"}


def _paths(args: str, cwd: str) -> Iterator[str]:
    """Absolute paths named by a call's arguments; each quoted path joins the dirfd before it."""
    base = cwd
    for m in _ARG.finditer(args):
        if m.group("fd") is not None:
            base = m.group("fdpath") or cwd
            continue
        raw = m.group("path").encode().decode("unicode_escape", errors="replace")
        path = PurePosixPath(raw)
        if not path.is_absolute():
            path = PurePosixPath(base) / path
        yield str(path)
        base = cwd


def written_paths(lines: Iterable[str], cwd: str) -> list[str]:
    """Sorted unique paths that succeeded in being opened for writing, created, renamed or removed."""
    found: set[str] = set()
    for line in lines:
        m = _CALL.match(line.strip())
        if m is None or int(m.group("result")) < 0:
            continue
        call, args = m.group("call"), m.group("args")
        if call in ("open", "openat", "openat2"):
            if any(flag in args for flag in _WRITE_FLAGS):
                found.update(list(_paths(args, cwd))[:1])
        elif call in _ALWAYS_WRITES:
            found.update(_paths(args, cwd))
    return sorted(found)


def main(argv: list[str]) -> int:
    cwd, *files = argv
    lines: list[str] = []
    for name in files:
        with open(name, encoding="utf-8", errors="replace") as fh:
            lines.extend(fh)
    print("\n".join(written_paths(lines, cwd)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
