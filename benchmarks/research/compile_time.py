"""Where the first call of a JAX-backed Keras model spends its time: tracing, lowering, XLA compiling.

JAX reports each stage of every compile through `jax.monitoring`;
`compile_breakdown()` adds them up over a block. On a GPU "xla_compile_s"
holds XLA's autotuning; with the persistent cache on, a hit is read in its
place ("cache_hits"). What a first call took beyond the three stages is
running the program and the runtime's first-use work (kernel loading,
allocation).
"""

import collections
import contextlib

STAGES = {
    "/jax/core/compile/jaxpr_trace_duration": "trace_s",
    "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower_s",
    "/jax/core/compile/backend_compile_duration": "xla_compile_s",
}
CACHE_HIT = "/jax/compilation_cache/cache_hits"
COLUMNS = (*STAGES.values(), "programs", "cache_hits")  # the keys `compile_breakdown` fills


@contextlib.contextmanager
def compile_breakdown():
    """Yields a dict filled at the block's end: trace_s, lower_s, xla_compile_s, programs (XLA programs
    compiled or read from the cache) and cache_hits; empty on a backend other than JAX.

    Example:
        >>> import keras
        >>> with compile_breakdown() as stages:
        ...     pass
        >>> stages == {} if keras.backend.backend() != "jax" else stages["programs"] == 0
        True
    """
    import keras

    stages = {}
    if keras.backend.backend() != "jax":
        yield stages
        return
    from jax import monitoring

    seconds, counts = collections.Counter(), collections.Counter()

    def on_duration(event, duration, **_):
        if event in STAGES:
            seconds[STAGES[event]] += duration
            counts[STAGES[event]] += 1

    def on_event(event, **_):
        if event == CACHE_HIT:
            counts["cache_hits"] += 1

    monitoring.register_event_duration_secs_listener(on_duration)
    monitoring.register_event_listener(on_event)
    try:
        yield stages
    finally:
        monitoring.unregister_event_duration_listener(on_duration)
        monitoring.unregister_event_listener(on_event)
        stages.update({name: seconds[name] for name in STAGES.values()})
        stages.update(programs=counts["xla_compile_s"], cache_hits=counts["cache_hits"])
