"""One decoder: the same real file of every system becomes the same tensor in training's dataset, in
`medzoo predict`, in the clinician service and in the edge runner `export/run_litert.py`."""

import importlib.util
import os

import keras
import numpy as np
import pytest

from medzoo.data.recipe import Recipe
from medzoo.data.samples import CT_SAMPLE, sample_dicom_path, sample_slide_path, sample_video_path
from medzoo.errors import InputError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def real_file(system, folder):
    """(path, recipe) of a real input of `system`, written to `folder` where it needs writing."""
    import nibabel

    from medzoo.io import open_slide, write_image
    from medzoo.io.clip_cache import write_cached_clip
    from medzoo.io.volume import read_volume
    from medzoo.systems.ct.sequences import volume_to_sequence

    if system == "video":  # S1: a real clip, sampled as S1's default recipe does (linspace frames)
        return sample_video_path(), Recipe((6, 48, 48, 3))
    if system == "stroke":  # S2: a real CT slice, brain window
        return sample_dicom_path("CT_small.dcm"), Recipe((64, 64, 3), window="brain")
    if system == "ct_sequence":  # S3: a real head CT as a prepare-video-style cache of windowed slices
        volume = read_volume(CT_SAMPLE)[0][:, ::8, ::8]
        path = os.path.join(folder, "ct.npz")
        write_cached_clip(path, volume_to_sequence(volume, num_slices=8, size=32), {"frame_step": None})
        return path, Recipe((8, 32, 32, 3))
    if system == "ct_volume":  # S3: the same CT as NIfTI, classified by its middle slice
        volume = read_volume(CT_SAMPLE)[0][:, ::4, ::4]
        path = os.path.join(folder, "ct.nii.gz")
        nibabel.save(nibabel.Nifti1Image(volume.transpose(2, 1, 0).astype(np.int16), np.eye(4)), path)
        return path, Recipe((64, 64, 3), volume="middle_slice")
    if system == "echo":  # S4: a real ultrasound frame
        return sample_dicom_path("US1_UNCR.dcm"), Recipe((64, 64, 3))
    if system == "slide":  # S5: a real H&E tile, as `medzoo tile` writes it
        with open_slide(sample_slide_path()) as slide:
            tile = slide.read_region(600, 600, 300, 300)
        return write_image(os.path.join(folder, "tile.png"), tile), Recipe((96, 96, 3))
    raise ValueError(system)


def run_folder(folder, recipe):
    """A run folder with a small model taking the recipe's inputs (its weights do not matter here)."""
    from medzoo.runs import RunFolder

    inputs = keras.Input(recipe.input_shape)
    pooled = (keras.layers.GlobalAveragePooling3D if recipe.kind == "clip" else keras.layers.GlobalAveragePooling2D)()
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(pooled(inputs)))
    run = RunFolder(folder).create()
    run.save_model(model)
    run.write_recipe(recipe)
    run.write_labels(["a", "b"])
    return folder


def training_input(path, recipe):
    """The element training's dataset makes of `path` (medzoo.data.sources.element_stream, as `fit` uses it)."""
    from medzoo.data.sources import element_stream

    base, decode = element_stream({"path": [path], "label": [0], "id": ["x"]}, np.array([0]), recipe)
    return next(iter(decode(base)))[recipe.inputs_key].numpy()


def edge_runner_input(path, recipe):
    """What export/run_litert.py feeds its interpreter, from the sidecar's recipe."""
    spec = importlib.util.spec_from_file_location("run_litert", os.path.join(REPO, "export", "run_litert.py"))
    run_litert = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_litert)
    return run_litert.read_inputs([path], *recipe.input_shape[-3:-1], recipe.to_dict())[0]


@pytest.mark.parametrize("system", ["video", "stroke", "ct_sequence", "ct_volume", "echo", "slide"])
def test_the_same_file_is_the_same_tensor_everywhere(system, tmp_path):
    from medzoo.predict import Predictor
    from medzoo.serve.uploads import decode_upload

    if system.startswith("ct") and not os.path.isfile(CT_SAMPLE):
        pytest.skip(f"{CT_SAMPLE} missing: make installs it")
    path, recipe = real_file(system, str(tmp_path))
    predictor = Predictor(run_folder(str(tmp_path / "run"), recipe))
    assert predictor.recipe == recipe  # written with the run, read back
    reference = recipe.load(path)[0]
    assert reference.shape == recipe.input_shape and reference.dtype == np.float32 and reference.std() > 1
    tensors = {"training": training_input(path, recipe), "predict": predictor.load(path)[0],
               "edge runner": edge_runner_input(path, recipe)}  # fmt: skip
    if recipe.kind == "image":  # the service serves image models, decoding in its worker processes
        tensors["service"] = decode_upload(path, recipe.replace(volume=recipe.volume or "middle_slice"))[0]
    for where, tensor in tensors.items():
        np.testing.assert_array_equal(tensor, reference, err_msg=where)


def test_a_volume_is_refused_unless_the_recipe_takes_its_middle_slice(tmp_path):
    if not os.path.isfile(CT_SAMPLE):
        pytest.skip(f"{CT_SAMPLE} missing: make installs it")
    path, recipe = real_file("ct_volume", str(tmp_path))
    with pytest.raises(InputError, match="a 3-D volume, but the model takes 2-D images"):
        recipe.replace(volume=None).load(path)
    image, details = recipe.load(path)
    assert details["slices"] == 108 and details["slice"] == 54


def test_a_recipe_survives_its_json_and_refuses_what_it_cannot_decode(tmp_path):
    recipe = Recipe((4, 32, 32, 3), frame_step=5, faces=True)
    assert Recipe.from_dict(recipe.to_dict()) == recipe
    with pytest.raises(InputError, match="not a video or a prepare-video cache file, but the model takes clips"):
        recipe.load(sample_dicom_path("CT_small.dcm"))
    with pytest.raises(InputError, match="a video, but the model takes images"):
        Recipe((32, 32, 3)).load(sample_video_path())
    with pytest.raises(InputError, match=r"not a kind of file medzoo reads \(.png"):
        Recipe((32, 32, 3)).load(str(tmp_path / "notes.txt"))
    with pytest.raises(InputError, match="run it through `medzoo echo`"):
        Recipe((32, 32, 3), cone_crop=32).load(sample_dicom_path("US1_UNCR.dcm"))
    with pytest.raises(InputError, match="faces and frame_step apply to clips"):
        Recipe((32, 32, 3), faces=True)
    with pytest.raises(InputError, match="not a preprocessing recipe"):
        Recipe.from_dict({"kind": "volume"}, "sidecar.json")
