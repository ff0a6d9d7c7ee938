"""This machine: its CPU (name, generation, instruction sets) and how long a call takes on it.

The bottom layer's measuring tools: `export` checks a quantized artifact's
speed with them and `bench` builds its tables on them.
"""

import functools
import platform
import time

import numpy as np


@functools.lru_cache(maxsize=1)
def _first_cpu():
    """The first processor's /proc/cpuinfo fields (key -> value; ARM's "Features" included), read once."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def _generation():
    """The x86 (family, model) of the first processor, or None (ARM, or no /proc/cpuinfo)."""
    fields = _first_cpu()
    return (fields["cpu family"], fields["model"]) if "cpu family" in fields and "model" in fields else None


def cpu_name():
    """The CPU model as a file-name-safe string, e.g. "AMD_EPYC_7B13" (else the architecture)."""
    name = _first_cpu().get("model name")
    return name.replace(" ", "_") if name else platform.machine()


# Instruction sets that decide which kernels a CPU runtime picks (x86 names from
# /proc/cpuinfo "flags", ARM names from "Features").
ISA_FLAGS = ("sse4_2", "avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16",
             "amx_int8", "amx_bf16", "asimd", "asimddp", "i8mm", "sve")  # fmt: skip
INT8_DOT_PRODUCT = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")


def cpu_features():
    """The CPU's instruction sets from `ISA_FLAGS` that it has, in that order (empty if unknown).

    Examples:
        >>> set(cpu_features()) <= set(ISA_FLAGS)
        True
    """
    fields = _first_cpu()
    flags = set(fields.get("flags", "").split()) | set(fields.get("Features", "").split())
    return [flag for flag in ISA_FLAGS if flag in flags]


def has_int8_dot_product(features=None):
    """True when the CPU has int8 dot-product instructions (VNNI, AMX, ARM dotprod / i8mm).

    Without them int8 convolutions widen to 16 bits and are often slower than float32.

    Examples:
        >>> has_int8_dot_product(["avx2", "fma"]), has_int8_dot_product(["avx512f", "avx512_vnni"])
        (False, True)
    """
    return any(flag in INT8_DOT_PRODUCT for flag in (cpu_features() if features is None else features))


def cpu_label():
    """The CPU for a results table: name, x86 family/model, and its instruction sets.

    Examples:
        >>> cpu_label().startswith(cpu_name().replace("_", " "))
        True
    """
    generation = _generation()
    model = f" family {generation[0]} model {generation[1]}" if generation else ""
    return f"{cpu_name().replace('_', ' ')}{model} ({' '.join(cpu_features()) or 'ISA unknown'})"


def cpu_file_name():
    """`cpu_name()` with the x86 family and model, e.g. "AMD_EPYC_f25m17": one marketing name covers
    CPUs of different generations (a Zen 1 and a Zen 4 both report "AMD EPYC" on some clouds).

    Examples:
        >>> cpu_file_name().startswith(cpu_name())
        True
    """
    generation = _generation()
    return cpu_name() + (f"_f{generation[0]}m{generation[1]}" if generation else "")


def time_calls(call, warmup=10, runs=50):
    """Times `call()` and returns latency statistics in milliseconds.

    Args:
        call: callable with no arguments, one inference.
        warmup: int. Untimed calls first. Defaults to 10.
        runs: int. Timed calls. Defaults to 50.

    Returns:
        dict with first_ms (the first call), p50_ms, p90_ms, p99_ms, mean_ms,
        std_ms and runs.

    Examples:
        >>> stats = time_calls(lambda: sum(range(1000)), warmup=1, runs=5)
        >>> stats["p50_ms"] <= stats["p90_ms"]
        True
    """
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs!r}.")
    start = time.perf_counter()
    call()
    first_ms = (time.perf_counter() - start) * 1e3
    for _ in range(warmup):
        call()
    times = np.empty(runs)
    for index in range(runs):
        start = time.perf_counter()
        call()
        times[index] = (time.perf_counter() - start) * 1e3
    return {
        "first_ms": first_ms,
        "p50_ms": float(np.percentile(times, 50)),
        "p90_ms": float(np.percentile(times, 90)),
        "p99_ms": float(np.percentile(times, 99)),
        "mean_ms": float(times.mean()),
        "std_ms": float(times.std()),
        "runs": runs,
    }


def peak_rss_mb():
    """This process's peak resident memory in MiB.

    Linux's VmHWM is per address space, so a fresh child does not inherit its
    parent's peak (ru_maxrss does, across fork + exec).

    Examples:
        >>> peak_rss_mb() > 0
        True
    """
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
