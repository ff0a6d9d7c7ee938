"""The preprocessing recipe: how a raw file becomes a model input, recorded once with the model.

`Recipe.load(path)` is the only way a raw file becomes a model input:
training's datasets, `medzoo predict`, the service, the streaming runner and
`export/run_litert.py` all call it, so training and serving cannot drift
apart (the role timm's `pretrained_cfg` plays). Training writes the recipe to
the run folder (`recipe.json`) and export copies it into the sidecar. Every
input is RGB float32 in 0..255 (the models scale inside), resized with area
averaging (OpenCV INTER_AREA; PIL's BOX filter is the same average).

Examples:
    >>> recipe = Recipe((4, 32, 32, 3))
    >>> recipe.kind, recipe.to_dict()["frames"]
    ('clip', {'count': 4, 'sampling': 'linspace', 'step': None, 'padding': 'black'})
    >>> from medzoo.data.samples import sample_video_path
    >>> clip, details = recipe.load(sample_video_path())
    >>> clip.shape, details["frame_indices"]
    ((4, 32, 32, 3), [0, 40, 79, 119])
"""

import dataclasses

import numpy as np

from medzoo.errors import InputError
from medzoo.io.formats import format_of, suffixes

FACE_DEFAULTS = {"detector": "mtcnn", "margin": 0.2, "min_confidence": 0.9, "no_face": "centre square of the frame"}
VOLUME_OPTIONS = (None, "middle_slice")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How a raw file becomes the input of a model taking `input_shape`.

    Args:
        input_shape: (H, W, C) for images, (T, H, W, C) for clips; no batch axis.
        window: DICOM window name or (center, width), or None (the file's own min-max).
        frame_step: clips: every `frame_step`-th frame from the start (S1's face
            pipeline: 5); None spreads T frames over the whole video (linspace).
        faces: clips: crop each frame to its MTCNN face (no face: the centre square).
        volume: images: what a 3-D volume (NIfTI) gives: None refuses it,
            "middle_slice" takes its middle axial slice, min-max scaled.
        cone_crop: the letterboxed side of S4's echo cone, or None. Such an input is
            made by the echo pipeline (`medzoo echo`), which finds the cone first.

    Examples:
        >>> from medzoo.data.samples import sample_dicom_path
        >>> image, details = Recipe((64, 64, 3), window="brain").load(sample_dicom_path("CT_small.dcm"))
        >>> image.shape, image.dtype.name, details["original_size"]
        ((64, 64, 3), 'float32', (128, 128))
    """

    input_shape: tuple
    window: object = None
    frame_step: object = None
    faces: bool = False
    volume: object = None
    cone_crop: object = None

    def __post_init__(self):
        shape = tuple(int(side) for side in self.input_shape)
        if len(shape) not in (3, 4) or shape[-1] != 3 or min(shape) < 1:
            raise InputError(f"a recipe's input_shape is (H, W, 3) or (T, H, W, 3); got {tuple(self.input_shape)}.")
        object.__setattr__(self, "input_shape", shape)
        if isinstance(self.window, list):
            object.__setattr__(self, "window", tuple(self.window))
        if self.volume not in VOLUME_OPTIONS:
            raise InputError(f"a recipe's volume is one of {VOLUME_OPTIONS}; got {self.volume!r}.")
        if self.kind == "image" and (self.faces or self.frame_step):
            raise InputError("faces and frame_step apply to clips; this recipe's model takes images.")

    @property
    def kind(self):
        """"clip" for (T, H, W, C) inputs, else "image"."""
        return "clip" if len(self.input_shape) == 4 else "image"

    @property
    def inputs_key(self):
        """The element key its inputs travel under in medzoo's datasets: "frames" or "image"."""
        return "frames" if self.kind == "clip" else "image"

    @property
    def suffixes(self):
        """The file suffixes `load` takes."""
        return suffixes("clip") if self.kind == "clip" else suffixes("image", *(("volume",) if self.volume else ()))

    def replace(self, **changes):
        """A copy with `changes` (a recipe is frozen)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        """The JSON form written to recipe.json and the export sidecar."""
        recipe = {"kind": self.kind, "input_shape": list(self.input_shape), "color": "RGB", "value_range": [0, 255],
                  "interpolation": "area", "window": list(self.window) if isinstance(self.window, tuple) else self.window}  # fmt: skip
        if self.kind == "clip":
            recipe["frames"] = {"count": self.input_shape[0], "sampling": "step" if self.frame_step else "linspace",
                                "step": self.frame_step, "padding": "black"}  # fmt: skip
            recipe["faces"] = dict(FACE_DEFAULTS) if self.faces else None
        else:
            recipe["volume"] = self.volume
        if self.cone_crop:
            recipe["cone_crop"] = {"letterbox": self.cone_crop}
        return recipe

    @classmethod
    def from_dict(cls, recipe, where="recipe"):
        """The recipe a JSON dict describes (`to_dict`'s form), or InputError naming `where`."""
        if not isinstance(recipe, dict) or recipe.get("kind") not in ("image", "clip") or "input_shape" not in recipe:
            raise InputError(f"{where}: not a preprocessing recipe (needs kind image|clip and input_shape).")
        if recipe.get("interpolation", "area") != "area" or recipe.get("value_range", [0, 255]) != [0, 255]:
            raise InputError(f"{where}: medzoo applies area resizing to 0..255 inputs only; got {recipe}.")
        try:
            built = cls(recipe["input_shape"], window=recipe.get("window"),
                        frame_step=(recipe.get("frames") or {}).get("step"), faces=bool(recipe.get("faces")),
                        volume=recipe.get("volume"), cone_crop=(recipe.get("cone_crop") or {}).get("letterbox"))  # fmt: skip
        except (TypeError, ValueError) as error:
            raise InputError(f"{where}: a malformed recipe ({error}).") from error
        if built.kind != recipe["kind"]:
            raise InputError(f"{where}: kind {recipe['kind']!r} does not fit input_shape {recipe['input_shape']}.")
        return built

    def with_cache(self, path):
        """This recipe with the face crop and frame sampling a prepare-video cache file (.npz) was made with.

        Any other file leaves the recipe as it is.
        """
        from medzoo.io.clip_cache import read_cached_clip

        if self.kind != "clip" or not str(path).lower().endswith(".npz"):
            return self
        metadata = read_cached_clip(path)[1]
        return self.replace(faces=bool(metadata.get("faces")), frame_step=metadata.get("frame_step"))

    def load(self, path, face_cropper=None):
        """One raw file -> (the model input, float32 0..255 in `input_shape`; details of what was read).

        Images: PNG, JPEG, BMP, TIFF, DICOM (details: original_size (H, W)), and
        with volume="middle_slice" NIfTI (details: slice, slices). Clips: a video
        file or a prepare-video cache made with the same frame count (details:
        frame_indices).

        Args:
            path: str. The file.
            face_cropper: `medzoo.data.video.FaceCropper` or None, reused across
                calls of a faces recipe (one is made when needed).

        Raises:
            InputError: a file this recipe cannot make an input of, named with the reason.
        """
        path = str(path)
        found = format_of(path)
        if found is None:
            raise InputError(f"{path}: not a kind of file medzoo reads ({', '.join(self.suffixes)}).")
        if self.cone_crop:
            raise InputError(f"{path}: this model takes S4's letterboxed echo cone; run it through `medzoo echo`, "
                             "which finds the cone first.")  # fmt: skip
        if self.kind == "clip":
            if found.kind != "clip":
                raise InputError(f"{path}: not a video or a prepare-video cache file, but the model takes clips.")
            return self._clip(path, found.name, face_cropper)
        if found.kind == "clip":
            raise InputError(f"{path}: a video, but the model takes images.")
        if found.kind == "volume":
            if self.volume != "middle_slice":
                raise InputError(f"{path}: a 3-D volume, but the model takes 2-D images (a recipe with "
                                 "volume='middle_slice' classifies its middle axial slice).")  # fmt: skip
            return self._middle_slice(path)
        return self._image(path, found.name)

    def _image(self, path, name):
        from medzoo.data.preprocess import min_max_normalize
        from medzoo.io.dicom import read_dicom
        from medzoo.io.image import read_image

        # One float32 copy of the decoded samples at most (what max_decoded_bytes charges): scaling
        # is in place, and gray becomes three channels after resizing, not before.
        if name == "dicom":
            image = read_dicom(path, window=self.window)
            image = image if self.window is not None else min_max_normalize(image, out=image)
            image *= 255.0
            image = image[..., None] if image.ndim == 2 else image
        else:
            stored = read_image(path)
            image = stored.astype(np.float32)
            if stored.max() > 255:  # 16-bit: scale to 0..255
                image *= 255.0 / 65535.0
            del stored
        return self._resized(image), {"original_size": tuple(int(side) for side in image.shape[:2])}

    def _resized(self, image):
        import cv2

        height, width = self.input_shape[:2]
        resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32)
        resized = resized.reshape(height, width, -1)
        return np.repeat(resized, 3, axis=-1) if resized.shape[-1] == 1 else resized

    def _middle_slice(self, path):
        from medzoo.data.preprocess import min_max_normalize
        from medzoo.io.volume import read_volume

        volume, _ = read_volume(path)
        middle = volume.shape[0] // 2
        image = min_max_normalize(volume[middle]) * 255.0
        return self._resized(image.astype(np.float32)), {"slice": middle, "slices": int(volume.shape[0])}

    def _clip(self, path, name, face_cropper):
        from medzoo.data.video import load_video_clip
        from medzoo.io.clip_cache import read_cached_clip

        count, size = self.input_shape[0], self.input_shape[1]
        if name == "clip_cache":
            cached, metadata = read_cached_clip(path)
            return _conform_cached_frames(path, cached, count, size), {"frame_indices": metadata.get("frame_indices")}
        if self.faces and face_cropper is None:
            from medzoo.data.video import FaceCropper

            face_cropper = FaceCropper()
        clip, info = load_video_clip(path, count, size, faces=self.faces, face_cropper=face_cropper,
                                     frame_step=self.frame_step)  # fmt: skip
        return clip, {"frame_indices": info["frame_indices"]}


def load_input(path, recipe):
    """`Recipe.from_dict(recipe).load(path)`: the form a decode worker (`medzoo.io.isolated`) runs.

    Examples:
        >>> from medzoo.data.samples import sample_dicom_path
        >>> load_input(sample_dicom_path("CT_small.dcm"), Recipe((32, 32, 3)).to_dict())[0].shape
        (32, 32, 3)
    """
    return Recipe.from_dict(recipe).load(path)


def _conform_cached_frames(path, frames, num_frames, size):
    """Cached uint8 frames -> (num_frames, size, size, 3) float32, or InputError naming `path`."""
    import cv2

    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise InputError(f"{path}: cached frames have shape {frames.shape}, expected (T, H, W, 3).")
    if len(frames) != num_frames:
        raise InputError(
            f"{path}: the cache holds {len(frames)} frames, the model takes {num_frames}; "
            f"prepare the videos again with --frames {num_frames}."
        )
    if frames.shape[1:3] != (size, size):
        frames = np.stack([cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA) for frame in frames])
    return frames.astype(np.float32)
