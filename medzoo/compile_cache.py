"""A persistent XLA compilation cache for JAX, so a rerun, a resume or a loaded run skips the compile.

On a GPU, XLA compiles (and autotunes) a model's train step for one to two
minutes; JAX can keep the compiled program on disk and load it in seconds
the next time the same model, batch and policy are trained (on an H200: a
47-76 s XLA compile read back in 1-2 s). With the cache on, JAX also keeps
XLA's per-fusion autotuning results in it, so a new program on an autotuned
backbone (another head, a tuning trial) compiles faster (there: 7-14 s of
XLA for three families, ConvNeXt-Small 33 s, against 47-76 s cold).
Every program is kept, not only those that took JAX's default 1 s: a Keras
`fit` also compiles about 30 small ones (the optimizer's zero slots, per
shape), and building a model one initializer per weight shape, which a
cached run or a load otherwise compiles again (tiny MobileNetV2 on a CPU:
the cached first call went from 4.4-5.0 to 3.9-4.2 s, its XLA time from 1.9
to 1.0-1.1 s)."""

import os

ENVIRONMENT = "MEDZOO_COMPILE_CACHE"


def default_cache_dir():
    """`$MEDZOO_COMPILE_CACHE`, else `$XDG_CACHE_HOME/medzoo/jax` (`~/.cache/medzoo/jax`)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.environ.get(ENVIRONMENT) or os.path.join(base, "medzoo", "jax")


def enable_compile_cache(directory=None):
    """Turns on JAX's persistent compilation cache; returns its folder, or None where there is none.

    Does nothing on other backends, when `MEDZOO_COMPILE_CACHE=off`, or when
    the user already chose a folder (`JAX_COMPILATION_CACHE_DIR`). Caches
    programs of any compile time unless `JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS`
    says otherwise.

    Args:
        directory: the cache folder; defaults to `default_cache_dir()`.

    Examples:
        >>> import keras
        >>> folder = enable_compile_cache("/tmp/medzoo-xla")
        >>> folder is None or keras.backend.backend() == "jax"
        True
    """
    import keras

    if keras.backend.backend() != "jax" or os.environ.get(ENVIRONMENT, "").lower() == "off":
        return None
    import jax

    if jax.config.jax_compilation_cache_dir:
        return jax.config.jax_compilation_cache_dir
    directory = directory or default_cache_dir()
    os.makedirs(directory, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", directory)
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    return directory
