"""Fuzzing as a habit: property-based tests (Hypothesis) over config validation and header parsing, and the
service's API fuzzed from its own OpenAPI schema (Schemathesis). `make test` runs a small budget;
`make fuzz` runs the same tests with MEDZOO_FUZZ_EXAMPLES=500.

The properties: whatever the bytes or values, medzoo answers or raises InputError (a ValueError naming
the problem), never another exception; the API never answers 5xx."""

import json
import os
import struct
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medzoo.errors import InputError

EXAMPLES = int(os.environ.get("MEDZOO_FUZZ_EXAMPLES", "30"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=12)  # fmt: skip


def _png_header(width, height, depth, colour):
    header = struct.pack(">2L5B", width, height, depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">L", 13) + b"IHDR" + header + struct.pack(">L", zlib.crc32(b"IHDR" + header))


@FUZZ
@given(data=st.binary(max_size=256)
       | st.builds(_png_header, st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 255), st.integers(0, 255))
       | st.binary(max_size=64).map(lambda tail: b"\xff\xd8" + tail) | st.binary(max_size=64).map(lambda tail: b"BM" + tail)
       | st.binary(max_size=64).map(lambda tail: b"II*\x00" + tail))  # fmt: skip
def test_image_headers_give_a_layout_or_input_error(data):
    from medzoo.io.image import declared_image_layout

    try:
        height, width, channels, itemsize = declared_image_layout(data, "fuzz.img")
    except InputError as error:
        assert str(error).startswith("fuzz.img: ")
        return
    assert min(height, width, channels) >= 0 and itemsize in (1, 2, 4, 8)


@FUZZ
@given(data=st.binary(max_size=400))
def test_uploads_are_sniffed_or_refused(data):
    from medzoo.serve.uploads import sniff_kind

    try:
        assert sniff_kind(data) in ("png", "jpeg", "dicom", "nifti", "nifti_gz")
    except InputError:
        pass


@FUZZ
@given(model=st.sampled_from(["transfer_classifier", "cnn_lstm", "dual_backbone", "video_transformer"]) | st.text(max_size=10),
       kwargs=st.dictionaries(st.sampled_from(["dropout", "head_units", "pooling", "backbone", "rnn_units", "weights",
                                               "freeze_backbone", "input_shape", "num_classes", "dropuot"]) | st.text(max_size=6),
                              JSON_VALUES, max_size=3),
       top=st.dictionaries(st.sampled_from(["epochs", "batch_size", "learning_rate", "optimizer", "seed", "fine_tune",
                                            "mixed_precision", "data", "ema"]), JSON_VALUES, max_size=3))  # fmt: skip
def test_configs_validate_or_give_input_error(model, kwargs, top):
    from medzoo.train.config import resolve_config

    try:
        config = resolve_config(None, [{"model": model, "model_kwargs": kwargs, **top}])
    except InputError as error:
        assert str(error) and "\n" not in str(error)
        return
    assert config["model"] == model


@FUZZ
@given(text=st.text(max_size=200))
def test_overrides_and_yaml_configs_parse_or_give_input_error(text, tmp_path_factory):
    from medzoo.train.config import parse_override, read_config_file

    try:
        parse_override(text)
    except (InputError, ValueError):
        pass
    path = tmp_path_factory.mktemp("yaml") / "fuzz.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        assert isinstance(read_config_file(str(path)), dict)
    except InputError as error:
        assert str(path) in str(error)


@FUZZ
@given(header=JSON_VALUES, buffer=st.integers(0, 64))
def test_safetensors_headers_read_or_give_input_error(header, buffer, tmp_path_factory):
    from medzoo.io import read_safetensors

    encoded = json.dumps(header).encode()
    path = tmp_path_factory.mktemp("st") / "fuzz.safetensors"
    path.write_bytes(len(encoded).to_bytes(8, "little") + encoded + bytes(buffer))
    try:
        read_safetensors(str(path))
    except InputError as error:
        assert str(path) in str(error)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """The service's app on an untrained 32-px model, a bearer token, and its OpenAPI schema for Schemathesis."""
    import schemathesis
    from fastapi.testclient import TestClient

    from medzoo.bench.serve_load import untrained_run
    from medzoo.serve.analysis import ServiceModel
    from medzoo.serve.app import Settings, create_app

    work = tmp_path_factory.mktemp("fuzz_api")
    run = untrained_run(str(work / "run"), "transfer_classifier", ["a", "b"], input_shape=(32, 32, 3))
    app = create_app(Settings(model=run, data_dir=str(work / "data")), model=ServiceModel(run))
    client = TestClient(app, base_url="https://testserver")
    app.state.service.register("rita", "correct horse", role="reviewer")
    token = client.post("/api/token", json={"username": "rita", "password": "correct horse"}).json()["token"]
    operations = [result.ok() for result in schemathesis.openapi.from_dict(app.openapi()).get_all_operations()]
    return client, {"Authorization": f"Bearer {token}"}, operations


def test_the_api_never_answers_5xx_to_generated_requests(api):
    client, auth, operations = api
    assert len(operations) >= 8
    fields = ("method", "url", "params", "json", "data", "files", "content", "cookies")
    for operation in sorted(operations, key=lambda op: (op.method, op.path) == ("delete", "/api/token")):

        @FUZZ
        @given(case=operation.as_strategy())
        def call(case):
            sent = case.as_transport_kwargs(base_url="https://testserver")
            headers = {**(sent.get("headers") or {}), **auth}
            response = client.request(headers=headers, **{key: value for key, value in sent.items() if key in fields})
            assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:300])

        call()
