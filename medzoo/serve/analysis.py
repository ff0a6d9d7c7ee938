"""The model behind the service: label, confidence and Grad-CAM for one decoded image.

A Keras model (run folder or .keras) gives a Grad-CAM map per backbone (the
dual-backbone model: both) and their mean; a LiteRT or ONNX artifact gives
label and confidence only, and the result shows the image as the model saw it
(Grad-CAM needs the Keras graph's gradients). Model calls are serialised by a
lock: Grad-CAM swaps a backbone's call for the duration of one explanation.

Examples:
    >>> model = ServiceModel("runs/stroke")                                   # doctest: +SKIP
    >>> result = model.analyse(image)                                         # doctest: +SKIP
    >>> result["label"], round(result["confidence"], 2), sorted(result["overlays"])  # doctest: +SKIP
    ('ischemic', 0.92, ['combined', 'mobilenet_v2', 'resnet50'])
"""

import os
import threading

from medzoo.errors import InputError


class ServiceModel:
    """A medzoo image model of any format, ready to answer uploads."""

    def __init__(self, source, num_threads=None):
        from medzoo.explain.grad_cam import GradCam
        from medzoo.export.formats import KerasRunner
        from medzoo.predict import Predictor

        source = os.path.realpath(str(source))  # a `current` link is followed once, at start-up
        self.predictor = Predictor(source, num_threads)
        if self.predictor.recipe.kind != "image":
            raise InputError(f"{source}: takes {self.predictor.recipe.kind}s; the service serves image models.")
        self.source, self.version = source, self.predictor.version
        self.keras_model = self.predictor.runner.model if isinstance(self.predictor.runner, KerasRunner) else None
        self._explain = GradCam(self.keras_model) if self.keras_model is not None else None
        # An uploaded volume (NIfTI) is classified by its middle axial slice unless the run's recipe says otherwise.
        self.recipe = self.predictor.recipe.replace(volume=self.predictor.recipe.volume or "middle_slice")
        self._lock = threading.Lock()

    @property
    def labels(self):
        count = len(self.predictor.labels or []) or 2
        return [self.predictor.label(index) for index in range(count)]

    @property
    def explains(self):
        return self.keras_model is not None

    def analyse(self, image):
        """(H, W, 3) float32 0..255 input -> label, confidence, probabilities {class: p}, overlays {name: uint8 RGB}."""
        from medzoo.explain.grad_cam import overlay_heatmap

        with self._lock:
            chosen, confidence, probabilities = self.predictor.decide(self.predictor.runner(image[None]))
            overlays = {}
            if self.explains:
                maps = self._explain(image, class_index=_explained_class(self.keras_model, chosen[0]))
                overlays = {name: overlay_heatmap(image, heatmap) for name, heatmap in maps["maps"].items()}
                if len(maps["maps"]) > 1:
                    overlays["combined"] = overlay_heatmap(image, maps["combined"])
        index = int(chosen[0])
        return {"label": self.predictor.label(index), "confidence": float(confidence[0]),
                "probabilities": {self.predictor.label(k): float(p) for k, p in enumerate(probabilities[0])},
                "overlays": overlays}  # fmt: skip


def _explained_class(model, index):
    """One sigmoid unit explains its single score (Grad-CAM's class 0); softmax explains the chosen class."""
    return 0 if model.outputs[0].shape[-1] == 1 else int(index)
