"""What the CPU can do, read once from the operating system (the only file this reads is
/proc/cpuinfo; `tfstyle.optimize.step.native_bfloat16` decides from it)."""

import functools


@functools.cache
def cpu_flags(path="/proc/cpuinfo"):
    """The CPU's feature flags (`avx512_bf16`, `amx_bf16`, ...) as a frozenset: the first
    `flags` line of `path` (Linux x86; every core lists the same ones). Empty where the file
    is absent or has no such line (macOS, Windows, ARM's `Features` lines): callers then treat
    the CPU as having none of them."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            for line in file:
                key, _, value = line.partition(":")
                if key.strip() == "flags":
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()
