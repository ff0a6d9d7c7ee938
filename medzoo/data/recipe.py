"""The preprocessing recipe: how a raw file becomes a model input, recorded once with the model.

Training writes it to the run folder (`recipe.json`) and export copies it
into the sidecar; `medzoo predict`, the runners and the device scripts read
it from there, so training and serving cannot drift apart (the role timm's
`pretrained_cfg` plays). Every input is RGB float32 in 0..255 (the models
scale inside), resized with area averaging (OpenCV INTER_AREA; PIL's BOX
filter is the same average).

Example:
    >>> recipe = make_recipe((4, 32, 32, 3))
    >>> recipe["kind"], recipe["frames"]
    ('clip', {'count': 4, 'sampling': 'linspace', 'step': None, 'padding': 'black'})
    >>> from medzoo.data.samples import sample_video_path
    >>> clip, frames = load_input(sample_video_path(), recipe)
    >>> clip.shape, frames
    ((4, 32, 32, 3), [0, 40, 79, 119])
"""

from medzoo.errors import InputError

FACE_DEFAULTS = {"detector": "mtcnn", "margin": 0.2, "min_confidence": 0.9, "no_face": "centre square of the frame"}


def make_recipe(input_shape, window=None, faces=False, frame_step=None):
    """The recipe of a model taking `input_shape` ((H, W, C) images or (T, H, W, C) clips).

    Args:
        input_shape: sequence of int. The model's input shape, without batch.
        window: DICOM window name or (center, width), or None (the file's own min-max).
        faces: bool. Clips: crop each frame to its MTCNN face (no face: the centre square).
        frame_step: int or None. Clips: every `frame_step`-th frame from the start
            (S1's face pipeline: 5); None spreads T frames over the whole video (linspace).
    """
    shape = [int(side) for side in input_shape]
    recipe = {"kind": "clip" if len(shape) == 4 else "image", "input_shape": shape, "color": "RGB",
              "value_range": [0, 255], "interpolation": "area",
              "window": list(window) if isinstance(window, (list, tuple)) else window}  # fmt: skip
    if recipe["kind"] == "clip":
        recipe["frames"] = {"count": shape[0], "sampling": "step" if frame_step else "linspace",
                            "step": frame_step, "padding": "black"}  # fmt: skip
        recipe["faces"] = dict(FACE_DEFAULTS) if faces else None
    return recipe


def load_input(path, recipe, face_cropper=None):
    """One raw file -> (model input the recipe describes, float32 0..255; frame indices used or None).

    Images: PNG/JPEG/BMP/TIFF/DICOM. Clips: a video file, or a prepare-video
    cache file (.npz) made with the same frame count.
    """
    from medzoo.data.clips import conform_cached_frames
    from medzoo.data.datasets import load_image_file
    from medzoo.data.video import load_video_clip
    from medzoo.data.sources import CLIP_SUFFIXES
    from medzoo.data.video_cache import read_cached_clip

    path, shape = str(path), recipe["input_shape"]
    clip_file = path.lower().endswith(CLIP_SUFFIXES)
    if recipe["kind"] == "image":
        if clip_file:
            raise InputError(f"{path}: a video, but the model takes images.")
        return load_image_file(path, shape[0], recipe.get("window"))[0], None
    if not clip_file:
        raise InputError(f"{path}: not a video or a prepare-video cache file, but the model takes clips.")
    frames = recipe["frames"]
    if path.lower().endswith(".npz"):
        cached, metadata = read_cached_clip(path)
        return conform_cached_frames(path, cached, frames["count"], shape[1]), metadata.get("frame_indices")
    clip, info = load_video_clip(path, frames["count"], shape[1], faces=bool(recipe.get("faces")),
                                 face_cropper=face_cropper, frame_step=frames.get("step"))  # fmt: skip
    return clip, info["frame_indices"]


def check_recipe(recipe, where):
    """Raises InputError unless `recipe` is a recipe medzoo can apply."""
    if not isinstance(recipe, dict) or recipe.get("kind") not in ("image", "clip") or "input_shape" not in recipe:
        raise InputError(f"{where}: not a preprocessing recipe (needs kind image|clip and input_shape).")
    if recipe.get("interpolation", "area") != "area" or recipe.get("value_range", [0, 255]) != [0, 255]:
        raise InputError(f"{where}: medzoo applies area resizing to 0..255 inputs only; got {recipe}.")
    return recipe


def recipe_of_cache(path, recipe):
    """`recipe` with the face crop and frame sampling a prepare-video cache file was made with.

    A raw video (not .npz) leaves the recipe as it is.
    """
    from medzoo.data.video_cache import read_cached_clip

    if not str(path).lower().endswith(".npz"):
        return recipe
    metadata = read_cached_clip(path)[1]
    step = metadata.get("frame_step")
    return {**recipe, "faces": dict(FACE_DEFAULTS) if metadata.get("faces") else None,
            "frames": {**recipe["frames"], "sampling": "step" if step else "linspace", "step": step}}
