"""The smoke test's write audit: which paths a traced process wrote, from real strace -y lines."""
from __future__ import annotations

from packaging_scripts import load

written_paths = load("trace_writes").written_paths


TRACE = """\
17006 openat(AT_FDCWD</tmp/i14>, "/usr/lib/libc.so.6", O_RDONLY|O_CLOEXEC) = 3</usr/lib/libc.so.6>
17006 openat(AT_FDCWD</tmp/i14>, "/tmp/i14/x.txt", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666) = 3</tmp/i14/x.txt>
17006 openat(AT_FDCWD</tmp/i14>, "/root/.cache/x", O_RDWR|O_CREAT, 0644) = -1 EACCES (Permission denied)
17006 openat(5</home/u/.local/share/loci>, "store.sqlite3-journal", O_RDWR|O_CREAT|O_CLOEXEC, 0644) = 6</f>
17006 rename("/tmp/i14/x.txt", "y.txt") = 0
17006 unlinkat(4</etc>, "passwd", 0) = 0
17006 mkdir("cache", 0755) = 0
"""


def test_only_successful_writes_are_listed_with_absolute_paths():
    assert written_paths(TRACE.splitlines(), "/tmp/i14") == [
        "/etc/passwd",
        "/home/u/.local/share/loci/store.sqlite3-journal",
        "/tmp/i14/cache",
        "/tmp/i14/x.txt",
        "/tmp/i14/y.txt",
    ]


def test_reads_and_failed_writes_are_not_writes():
    lines = TRACE.splitlines()[:1] + TRACE.splitlines()[2:3]
    assert written_paths(lines, "/tmp/i14") == []
