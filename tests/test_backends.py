"""Models use keras.layers / keras.ops only: every registered model builds and runs under JAX."""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {root!r})
    import numpy as np, keras
    assert keras.backend.backend() == "jax", keras.backend.backend()
    import medzoo
    from tests.conftest import tiny_input_shape, sample_inputs
    for name in medzoo.list_models():
        shape = tiny_input_shape(name)
        y = np.asarray(medzoo.create_model(name, input_shape=shape)(sample_inputs(shape, count=2)))
        assert y.shape[0] == 2 and np.isfinite(y).all(), name
        keras.backend.clear_session()
        print("ok", name)
    assert "tensorflow" not in sys.modules, "a model builder imported TensorFlow"
    """
)


def test_every_registered_model_runs_under_jax(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(root=root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    import medzoo

    assert result.stdout.count("ok ") == len(medzoo.list_models())
