"""Custom Keras layers used inside medzoo models (serializable, backend-neutral)."""

import keras
from keras import ops

IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package="medzoo")
class ImagePreprocessing(keras.layers.Layer):
    """Maps raw 0..255 pixels to the range a backbone was trained on.

    Living inside the model, it makes Keras, LiteRT and ONNX take the same raw
    input. A one-channel (grayscale) input is repeated to three channels.

    Args:
        mode: str. "tf" scales to [-1, 1]; "caffe" flips RGB to BGR and
            subtracts the ImageNet BGR mean; "torch" scales to [0, 1] and
            standardises with the ImageNet mean and std; "none" passes pixels
            through (the backbone rescales inside). Defaults to "tf".

    Example:
        >>> import numpy as np
        >>> layer = ImagePreprocessing(mode="tf")
        >>> [float(v) for v in np.asarray(layer(np.array([[0.0, 127.5, 255.0]])))[0]]
        [-1.0, 0.0, 1.0]
    """

    MODES = ("tf", "caffe", "torch", "none")

    def __init__(self, mode="tf", **kwargs):
        super().__init__(**kwargs)
        if mode not in self.MODES:
            raise ValueError(f"ImagePreprocessing mode must be one of {self.MODES}, got {mode!r}.")
        self.mode = mode

    def call(self, images):
        x = ops.cast(images, self.compute_dtype)
        if x.shape[-1] == 1:
            x = ops.repeat(x, 3, axis=-1)
        if self.mode == "tf":
            return x / 127.5 - 1.0
        if self.mode == "caffe":
            return ops.flip(x, axis=-1) - ops.convert_to_tensor(CAFFE_MEAN_BGR, dtype=x.dtype)
        if self.mode == "torch":
            mean = ops.convert_to_tensor(IMAGENET_MEAN_RGB, dtype=x.dtype)
            std = ops.convert_to_tensor(IMAGENET_STD_RGB, dtype=x.dtype)
            return (x / 255.0 - mean) / std
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (3,)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="medzoo")
class FoldedTimeDistributed(keras.layers.TimeDistributed):
    """TimeDistributed that runs its layer once on every frame: time folded into the batch.

    Keras 3's TimeDistributed calls the layer once per time step when T is known,
    so the graph holds T copies of the backbone: T times the tracing and XLA
    compile time, and on a GPU T small launches per op instead of one big one.
    Folding (B, T, ...) -> (B*T, ...) gives the same per-frame outputs in
    inference; in training, BatchNorm sees the B*T frames as one batch (as
    torch/timm video models do). Unknown T or a mask falls back to the loop.

    Example:
        >>> import numpy as np
        >>> layer = FoldedTimeDistributed(keras.layers.Dense(2))
        >>> layer(np.zeros((3, 5, 4))).shape
        (3, 5, 2)
    """

    def call(self, inputs, training=None, mask=None):
        steps = inputs.shape[1]
        if steps is None or mask is not None:
            return super().call(inputs, training=training, mask=mask)
        frames = ops.reshape(inputs, (-1,) + tuple(inputs.shape[2:]))
        kwargs = {"training": training} if self.layer._call_has_training_arg else {}
        features = self.layer.call(frames, **kwargs)
        return ops.reshape(features, (-1, steps) + tuple(features.shape[1:]))
