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

    Examples:
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

    Examples:
        >>> import numpy as np
        >>> layer = FoldedTimeDistributed(keras.layers.Dense(2))
        >>> tuple(layer(np.zeros((3, 5, 4))).shape)
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


@keras.saving.register_keras_serializable(package="medzoo")
class TokensWithPosition(keras.layers.Layer):
    """Prepends a learned class token (optional) and adds learned position embeddings to (B, N, D) tokens.

    Examples:
        >>> import numpy as np
        >>> tuple(TokensWithPosition(class_token=True)(np.zeros((2, 5, 8))).shape)
        (2, 6, 8)
    """

    def __init__(self, class_token=True, **kwargs):
        super().__init__(**kwargs)
        self.class_token = class_token

    def build(self, input_shape):
        tokens, width = input_shape[-2], input_shape[-1]
        init = keras.initializers.TruncatedNormal(stddev=0.02)
        self.cls = self.add_weight(shape=(1, 1, width), initializer=init, name="cls") if self.class_token else None
        self.position = self.add_weight(shape=(1, tokens + bool(self.class_token), width), initializer=init,
                                        name="position")  # fmt: skip

    def call(self, tokens):
        if self.class_token:  # (B, 1, D) by broadcasting: no TILE/BROADCAST_TO for the converters
            tokens = ops.concatenate([ops.zeros_like(tokens[:, :1]) + ops.cast(self.cls, tokens.dtype), tokens], 1)
        return tokens + ops.cast(self.position, tokens.dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1] + bool(self.class_token), input_shape[2])

    def get_config(self):
        return {**super().get_config(), "class_token": self.class_token}


@keras.saving.register_keras_serializable(package="medzoo")
class TokenPooling(keras.layers.Layer):
    """(B, N, D) tokens -> (B, D): the class token ("cls", the first) or the mean of all ("mean").

    Examples:
        >>> import numpy as np
        >>> tuple(TokenPooling("mean")(np.ones((2, 5, 8))).shape)
        (2, 8)
    """

    MODES = ("cls", "mean")

    def __init__(self, mode="cls", **kwargs):
        super().__init__(**kwargs)
        if mode not in self.MODES:
            raise ValueError(f"pooling must be one of {self.MODES}, got {mode!r}.")
        self.mode = mode

    def call(self, tokens):
        return tokens[:, 0] if self.mode == "cls" else ops.mean(tokens, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="medzoo")
class TransformerEncoderBlock(keras.layers.Layer):
    """A pre-norm transformer block: x + MHA(LN(x)), then x + MLP(LN(x)) with tanh-GELU (ViT, ViViT).

    Args:
        num_heads: int. Attention heads; the width must divide by it.
        mlp_units: int. Hidden width of the MLP.
        dropout: float. Dropout on both residual branches. Defaults to 0.
        attention_dropout: float. Dropout on the attention weights. Defaults to 0.
        epsilon: float. LayerNorm epsilon (1e-6 as ViT/ViViT). Defaults to 1e-6.

    Examples:
        >>> import numpy as np
        >>> tuple(TransformerEncoderBlock(num_heads=2, mlp_units=16)(np.zeros((1, 5, 8))).shape)
        (1, 5, 8)
    """

    def __init__(self, num_heads, mlp_units, dropout=0.0, attention_dropout=0.0, epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.num_heads, self.mlp_units, self.dropout = num_heads, mlp_units, dropout
        self.attention_dropout, self.epsilon = attention_dropout, epsilon
        self.norm_attention = keras.layers.LayerNormalization(epsilon=epsilon, dtype=self.dtype_policy, name="norm_1")
        self.norm_mlp = keras.layers.LayerNormalization(epsilon=epsilon, dtype=self.dtype_policy, name="norm_2")
        self.mlp_in = keras.layers.Dense(mlp_units, dtype=self.dtype_policy, name="mlp_in")
        self.residual_dropout = keras.layers.Dropout(dropout, dtype=self.dtype_policy, name="residual_dropout")
        self.attention = self.mlp_out = None  # their sizes come from the token width: made in build

    def build(self, input_shape):
        width = input_shape[-1]
        if width % self.num_heads:
            raise ValueError(f"The token width {width} does not divide by num_heads={self.num_heads}.")
        self.attention = keras.layers.MultiHeadAttention(self.num_heads, width // self.num_heads,
                                                         dropout=self.attention_dropout, dtype=self.dtype_policy,
                                                         name="attention")  # fmt: skip
        self.mlp_out = keras.layers.Dense(width, dtype=self.dtype_policy, name="mlp_out")
        self.norm_attention.build(input_shape)
        self.attention.build(input_shape, input_shape)
        self.norm_mlp.build(input_shape)
        self.mlp_in.build(input_shape)
        self.mlp_out.build(tuple(input_shape[:-1]) + (self.mlp_units,))

    def call(self, tokens, training=None):
        x = self.norm_attention(tokens)
        tokens = tokens + self.residual_dropout(self.attention(x, x, training=training), training=training)
        x = keras.activations.gelu(self.mlp_in(self.norm_mlp(tokens)), approximate=True)
        return tokens + self.residual_dropout(self.mlp_out(x), training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def macs(self, input_shape):
        """Multiply-accumulates of one call on one example: projections, QK^T, AV and the MLP."""
        tokens, width = input_shape[-2], input_shape[-1]
        return 4 * tokens * width * width + 2 * tokens * tokens * width + 2 * tokens * width * self.mlp_units

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "mlp_units": self.mlp_units,
                "dropout": self.dropout, "attention_dropout": self.attention_dropout, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="medzoo")
class LayerScale(keras.layers.Layer):
    """Multiplies the last axis by a learned per-channel scale (CaiT, ConvNeXt, PoolFormer).

    Examples:
        >>> import numpy as np
        >>> tuple(LayerScale(1e-5)(np.ones((1, 2, 2, 4))).shape)
        (1, 2, 2, 4)
    """

    def __init__(self, init_value=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.init_value = init_value

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[-1],), name="scale",
                                     initializer=keras.initializers.Constant(self.init_value))  # fmt: skip

    def call(self, x):
        return x * ops.cast(self.scale, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "init_value": self.init_value}


@keras.saving.register_keras_serializable(package="medzoo")
class DropPath(keras.layers.Layer):
    """Stochastic depth: in training, zeroes a residual branch for a random `rate` of the examples.

    The kept examples are scaled by 1 / (1 - rate); in inference it is the identity.

    Examples:
        >>> import numpy as np
        >>> np.asarray(DropPath(0.5)(np.ones((2, 3)), training=False)).tolist()
        [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise ValueError(f"DropPath rate must be in [0, 1), got {rate!r}.")
        self.rate, self.seed = rate, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=None):
        if not training or self.rate == 0:
            return x
        keep = 1.0 - self.rate
        shape = (ops.shape(x)[0],) + (1,) * (len(x.shape) - 1)
        mask = ops.floor(keep + keras.random.uniform(shape, seed=self.seed_generator, dtype=x.dtype))
        return x * mask / keep

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


def gelu_erf(x):
    """Exact GELU as 0.5 x (1 + erf(x / sqrt 2)).

    Numerically Keras' gelu(approximate=False), written in the form LiteRT's
    converter fuses into its builtin GELU and tf2onnx maps to ONNX `Erf`
    (TensorFlow's own exact GELU uses `Erfc`, which ONNX has no op for).

    Examples:
        >>> import numpy as np
        >>> round(float(gelu_erf(np.float32(1.0))), 4)
        0.8413
    """
    return 0.5 * x * (1.0 + ops.erf(x * 0.7071067811865476))


@keras.saving.register_keras_serializable(package="medzoo")
class Gelu(keras.layers.Layer):
    """The exact GELU activation as a layer (`gelu_erf`): exports to builtin LiteRT and to ONNX.

    Examples:
        >>> import numpy as np
        >>> np.asarray(Gelu()(np.zeros((1, 2)))).tolist()
        [[0.0, 0.0]]
    """

    def call(self, x):
        return gelu_erf(x)

    def compute_output_shape(self, input_shape):
        return input_shape
