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
