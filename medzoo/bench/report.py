"""Benchmark results: files named by their conditions (device, CPU, date), and markdown tables."""

import datetime
import functools
import os
import platform


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


def device_name():
    """The accelerator Keras runs on (JAX), else the CPU, as a file-name-safe string, e.g. "NVIDIA_H200"."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform != "cpu":
            return device.device_kind.replace(" ", "_")
    return cpu_name()


def keras_framework():
    """"medzoo keras-<backend> <Keras version>", with JAX's version on JAX (its XLA compiles the programs)."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return f"medzoo keras-jax {keras.__version__} (jax {jax.__version__})"
    return f"medzoo keras-{backend} {keras.__version__}"


# Instruction sets that decide which kernels a CPU runtime picks (x86 names from
# /proc/cpuinfo "flags", ARM names from "Features").
ISA_FLAGS = ("sse4_2", "avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16",
             "amx_int8", "amx_bf16", "asimd", "asimddp", "i8mm", "sve")  # fmt: skip
INT8_DOT_PRODUCT = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")


def cpu_features():
    """The CPU's instruction sets from `ISA_FLAGS` that it has, in that order (empty if unknown).

    Example:
        >>> set(cpu_features()) <= set(ISA_FLAGS)
        True
    """
    fields = _first_cpu()
    flags = set(fields.get("flags", "").split()) | set(fields.get("Features", "").split())
    return [flag for flag in ISA_FLAGS if flag in flags]


def has_int8_dot_product(features=None):
    """True when the CPU has int8 dot-product instructions (VNNI, AMX, ARM dotprod / i8mm).

    Without them int8 convolutions widen to 16 bits and are often slower than float32.

    Example:
        >>> has_int8_dot_product(["avx2", "fma"]), has_int8_dot_product(["avx512f", "avx512_vnni"])
        (False, True)
    """
    return any(flag in INT8_DOT_PRODUCT for flag in (cpu_features() if features is None else features))


def cpu_label():
    """The CPU for a results table: name, x86 family/model, and its instruction sets.

    Example:
        >>> cpu_label().startswith(cpu_name().replace("_", " "))
        True
    """
    generation = _generation()
    model = f" family {generation[0]} model {generation[1]}" if generation else ""
    return f"{cpu_name().replace('_', ' ')}{model} ({' '.join(cpu_features()) or 'ISA unknown'})"


def cpu_file_name():
    """`cpu_name()` with the x86 family and model, e.g. "AMD_EPYC_f25m17": one marketing name covers
    CPUs of different generations (a Zen 1 and a Zen 4 both report "AMD EPYC" on some clouds).

    Example:
        >>> cpu_file_name().startswith(cpu_name())
        True
    """
    generation = _generation()
    return cpu_name() + (f"_f{generation[0]}m{generation[1]}" if generation else "")


def result_path(out_dir, stem, suffix):
    """`out_dir/<stem>-<cpu>-<date><suffix>`: a benchmark file named by where (`cpu_file_name`) and when it ran."""
    return os.path.join(out_dir, f"{stem}-{cpu_file_name()}-{datetime.date.today()}{suffix}")


def read_results(path):
    """The rows of an earlier results file with its numbers as numbers and its empty cells None (written back,
    the file is the same); [] when there is no such file. A benchmark reads back today's file to resume or
    add to it.

    Example:
        >>> from medzoo.io import write_csv
        >>> path = write_csv("/tmp/medzoo-results.csv", [{"model": "a", "threads": 2, "p50_ms": 1.5, "note": ""}])
        >>> read_results(path), read_results("/tmp/medzoo-no-such-results.csv")
        ([{'model': 'a', 'threads': 2, 'p50_ms': 1.5, 'note': None}], [])
    """
    from medzoo.io import read_csv_rows

    if not os.path.isfile(path):
        return []
    return [{key: None if value == "" else _number(value) for key, value in row.items()}
            for row in read_csv_rows(path, what="results file")]  # fmt: skip


def _number(text):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def markdown_table(rows, columns):
    """A markdown table of `columns` (name -> format spec or None) from dict rows.

    Example:
        >>> print(markdown_table([{"model": "a", "ms": 1.234}], {"model": None, "ms": ".1f"}))
        | model | ms |
        |---|---|
        | a | 1.2 |
    """

    def cell(value, spec):
        if value is None or value == "":
            return "-"
        return format(value, spec) if spec and not isinstance(value, str) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(name), spec) for name, spec in columns.items()) + " |" for row in rows]
    return "\n".join(lines)
