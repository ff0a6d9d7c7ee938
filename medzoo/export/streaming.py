"""Streaming CNN-LSTM: a per-frame encoder plus one recurrent step with explicit state.

A live video then costs one backbone pass per new frame instead of a whole
clip. Feeding a clip's T frames one by one gives the whole-clip model's output.
"""

import collections
import os

import numpy as np

ENCODER_FILE = "frame_encoder.tflite"
STEP_FILE = "recurrent_step.tflite"


def split_sequence_model(model):
    """Splits a CNN-LSTM into (frame encoder, recurrent step) Keras models.

    The step model maps [features (F), recurrent state (S)] concatenated to
    [predictions (K), new state (S)] concatenated; it shares `model`'s weights.

    Args:
        model: keras.Model shaped like `build_cnn_lstm`'s: Input -> TimeDistributed
            (frame encoder) -> LSTM or GRU (last output only) -> a chain of head layers.

    Returns:
        (frame_encoder, step) keras.Models.

    Examples:
        >>> from medzoo import build_cnn_lstm
        >>> encoder, step = split_sequence_model(build_cnn_lstm(input_shape=(4, 32, 32, 3), rnn_units=8))
        >>> step.input_shape, step.output_shape
        ((None, 1296), (None, 17))
    """
    import keras

    layers = model.layers
    wrappers = [i for i, layer in enumerate(layers) if isinstance(layer, keras.layers.TimeDistributed)]
    rnns = [i for i, layer in enumerate(layers) if isinstance(layer, keras.layers.RNN)]
    if len(wrappers) != 1 or len(rnns) != 1 or rnns[0] != wrappers[0] + 1:
        raise ValueError(
            f"Streaming export needs a model shaped like build_cnn_lstm's (TimeDistributed frame "
            f"encoder directly followed by one LSTM/GRU); {model.name!r} has layers "
            f"{[layer.name for layer in layers]}."
        )
    rnn = layers[rnns[0]]
    if rnn.return_sequences or rnn.go_backwards:
        raise ValueError(
            f"Layer {rnn.name!r} must return only its last output and run forwards to stream."
        )
    encoder = layers[wrappers[0]].layer
    if not isinstance(encoder, keras.Model):
        frame = keras.Input(model.inputs[0].shape[2:], name="frame")
        encoder = keras.Model(frame, encoder(frame), name="frame_encoder")
    state_sizes = rnn.cell.state_size
    state_sizes = list(state_sizes) if isinstance(state_sizes, (list, tuple)) else [state_sizes]
    # One input and one output, each a concatenation, so that any LiteRT
    # runtime can drive the step without signature or tensor-name lookups.
    feature_size = encoder.outputs[0].shape[-1]
    step_input = keras.Input((feature_size + sum(state_sizes),), name="features_and_state")
    bounds = np.cumsum([feature_size] + state_sizes)
    features = step_input[:, : bounds[0]]
    states = [step_input[:, start:stop] for start, stop in zip(bounds[:-1], bounds[1:])]
    x, new_states = rnn.cell(features, states)
    for layer in layers[rnns[0] + 1 :]:
        x = layer(x)
    step_output = keras.layers.Concatenate(name="predictions_and_state")([x] + list(new_states))
    return encoder, keras.Model(step_input, step_output, name="recurrent_step")

class StreamingClassifier:
    """Runs a streaming export frame by frame, holding the recurrent state.

    Args:
        directory: str. Folder with frame_encoder.tflite and recurrent_step.tflite.
        num_threads: int or None. LiteRT CPU threads. Defaults to None.
        window: int or None. None carries the state over the whole stream;
            an int T re-runs the cheap recurrent step over the last T frames'
            features, so every output equals the whole-clip model on the last
            T frames (still one backbone pass per frame). Defaults to None.

    Examples:
        >>> classifier = StreamingClassifier("export/deepfake_streaming")  # doctest: +SKIP
        >>> for frame in frames:  # doctest: +SKIP
        ...     probability = classifier.push(frame)
    """

    def __init__(self, directory, num_threads=None, window=None):
        from medzoo.export.litert import LiteRTModel

        self.encoder = LiteRTModel(os.path.join(directory, ENCODER_FILE), num_threads)
        self.step = LiteRTModel(os.path.join(directory, STEP_FILE), num_threads)
        feature_size = int(self.encoder.output["shape"][-1])
        self.state_size = int(self.step.input["shape"][-1]) - feature_size
        self.window = window
        self.reset()

    def reset(self):
        """Forgets the stream: zero state, no frames seen."""
        self.state = np.zeros((1, self.state_size), np.float32)
        self.recent_features = collections.deque(maxlen=self.window)

    def _step(self, features, state):
        output = self.step(np.concatenate([features, state], axis=1))
        return output[0, : -self.state_size], output[:, -self.state_size :]

    def push(self, frame):
        """Adds one frame (H, W, C raw pixels); returns the output after it (num_classes,)."""
        features = self.encoder(np.asarray(frame, np.float32)[None])
        if self.window is None:
            prediction, self.state = self._step(features, self.state)
            return prediction
        self.recent_features.append(features)
        state = np.zeros_like(self.state)
        for past in self.recent_features:
            prediction, state = self._step(past, state)
        return prediction

    def predict_clip(self, frames):
        """Resets, feeds the clip's frames one by one, and returns the last output."""
        self.reset()
        for frame in frames:
            prediction = self.push(frame)
        return prediction

    def __call__(self, clips):
        """Whole-clip outputs (N, num_classes) for clips (N, T, H, W, C)."""
        return np.stack([self.predict_clip(clip) for clip in np.asarray(clips, np.float32)])
