"""The host's memory as the operating system reports it: what `stylize`'s memory check compares
a CPU step's estimated peak with (`tfstyle.optimize.memory`)."""

import os

_MEMINFO = "/proc/meminfo"
# cgroup v2: the container's limit and its current use (absent outside a memory cgroup).
_CGROUP_LIMIT = "/sys/fs/cgroup/memory.max"
_CGROUP_USAGE = "/sys/fs/cgroup/memory.current"


def available_memory():
    """Bytes the process can still allocate without swapping or being killed: Linux's
    MemAvailable, lowered to the memory cgroup's limit less its usage when a limit is set;
    None where neither can be read (not Linux)."""
    available = _meminfo_available()
    limit, usage = _read_int(_CGROUP_LIMIT), _read_int(_CGROUP_USAGE)
    if limit is not None and usage is not None:
        room = max(0, limit - usage)
        available = room if available is None else min(available, room)
    return available


def _meminfo_available():
    try:
        with open(_MEMINFO) as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the kernel's "kB" are KiB
    except (OSError, ValueError, IndexError):
        return None
    return None


def _read_int(path):
    """The integer in a one-line file, or None (missing, unreadable, or "max": no limit)."""
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None
