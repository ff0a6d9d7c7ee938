"""S2's service end to end: pages, API, prediction log, review, reports, attacks, crash safety, PostgreSQL, retraining."""

import glob
import hashlib
import io
import json
import logging
import os
import time

import numpy as np
import pytest

from medzoo.cli import main
from medzoo.data.recipe import Recipe
from medzoo.data.samples import sample_dicom_path
from medzoo.errors import InputError
from medzoo.bench.serve_load import ServiceProcess
from service_helpers import PostgresServer, form_token, postgres_bin

pytestmark = pytest.mark.xdist_group("serve")  # one worker: the fixtures below are built once

LABELS = ["haemorrhagic", "ischemic"]
PASSWORD = "correct horse"


@pytest.fixture(scope="module")
def dual_run(tmp_path_factory):
    """A dual-backbone run folder (S2's model at 64 px) whose BatchNorm statistics come from real images."""
    from medzoo.bench.serve_load import untrained_run

    return untrained_run(str(tmp_path_factory.mktemp("dual_run")), "dual_backbone", LABELS, input_shape=(64, 64, 3),
                         backbones=("mobilenet_v2", "mobilenet_v3_small"), fusion_units=16, head_units=(16,),
                         dropout=0.0)  # fmt: skip


@pytest.fixture(scope="module")
def photos():
    """Eight real photographs, 64x64 RGB uint8."""
    from medzoo.data.samples import sample_photos

    return np.uint8(sample_photos(64, 8))


@pytest.fixture(scope="module")
def dual_model(dual_run):
    from medzoo.serve.analysis import ServiceModel

    return ServiceModel(dual_run)


def make_client(model, data_dir, **settings):
    from fastapi.testclient import TestClient

    from medzoo.serve.app import Settings, create_app

    app = create_app(Settings(model=model.source, data_dir=str(data_dir), **settings), model=model)
    return TestClient(app, base_url="https://testserver")  # https: the session cookie is Secure


def register_and_log_in(client, username, role="clinician"):
    service = client.app.state.service
    if role == "clinician":
        page = client.get("/register")
        assert client.post("/register", data={"csrf_token": form_token(page.text), "username": username,
                                              "password": PASSWORD}, follow_redirects=False).status_code == 303  # fmt: skip
    else:
        service.register(username, PASSWORD, role=role)
    page = client.get("/login")
    response = client.post("/login", data={"csrf_token": form_token(page.text), "username": username,
                                           "password": PASSWORD}, follow_redirects=False)  # fmt: skip
    assert response.status_code == 303 and response.headers["location"] == "/upload"
    cookie = response.headers["set-cookie"]
    assert all(flag in cookie for flag in ("medzoo_session=", "HttpOnly", "Secure", "SameSite=lax")), cookie
    return form_token(client.get("/upload").text)


def api_token(client, username):
    response = client.post("/api/token", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": "Bearer " + response.json()["token"]}


def png_bytes(image):
    import cv2

    return cv2.imencode(".png", np.asarray(image, np.uint8))[1].tobytes()


def nifti_path():
    import nibabel

    return os.path.join(os.path.dirname(nibabel.__file__), "tests", "data", "anatomical.nii")


# --- uploads -------------------------------------------------------------------------------------------
def test_upload_kind_comes_from_the_content_and_storage_from_the_hash(tmp_path, photos):
    import cv2

    from medzoo.serve.uploads import decode_upload, sniff_kind, store_upload

    dicom = open(sample_dicom_path("CT_small.dcm"), "rb").read()
    nifti = open(nifti_path(), "rb").read()
    import gzip

    jpeg = cv2.imencode(".jpg", photos[0])[1].tobytes()
    assert [sniff_kind(data) for data in (png_bytes(photos[0]), jpeg, dicom, nifti, gzip.compress(nifti))] == \
        ["png", "jpeg", "dicom", "nifti", "nifti_gz"]  # fmt: skip
    with pytest.raises(InputError, match="not a PNG, JPEG, DICOM or NIfTI file"):
        sniff_kind(b"<html>not an image</html>")
    service_recipe = Recipe((64, 64, 3), volume="middle_slice")  # what ServiceModel decodes uploads with
    decode = lambda path, kind: decode_upload(path, service_recipe)  # noqa: E731
    with pytest.raises(InputError, match="limit is 100 bytes"):
        store_upload(dicom, str(tmp_path), 100, decode)
    digest, kind, path, (image, note) = store_upload(dicom, str(tmp_path), 10**7, decode)
    assert kind == "dicom" and path == str(tmp_path / "uploads" / f"{digest}.dcm")
    assert image.shape == (64, 64, 3) and note is None and 0 <= image.min() < image.max() <= 255
    _, kind, path, (image, note) = store_upload(nifti, str(tmp_path), 10**7, decode)
    assert image.shape == (64, 64, 3) and 0 <= image.min() < 50 < 200 < image.max() <= 255 and "slice" in note
    kept = sorted(os.listdir(tmp_path / "uploads"))
    with pytest.raises(InputError, match="the uploaded file") as error:
        store_upload(dicom[:2000], str(tmp_path), 10**7, decode)  # a truncated DICOM
    assert str(tmp_path) not in str(error.value)  # the storage path never reaches the user
    assert sorted(os.listdir(tmp_path / "uploads")) == kept  # refused, so not kept (no staging leftover either)


# --- the pages, the log, the reports ---------------------------------------------------------------------
def test_clinician_uploads_dicom_png_nifti_and_gets_label_gradcam_and_reports(dual_model, tmp_path, photos):
    import pypdfium2

    client = make_client(dual_model, tmp_path / "data")
    register_and_log_in(client, "ana")
    uploads = {"CT_small.dcm": open(sample_dicom_path("CT_small.dcm"), "rb").read(),
               "photo.png": png_bytes(photos[1]), "anatomical.nii": open(nifti_path(), "rb").read()}  # fmt: skip
    ids = []
    for name, data in uploads.items():
        token = form_token(client.get("/upload").text)
        response = client.post("/upload", data={"csrf_token": token}, files={"file": (name, data)}, follow_redirects=False)
        assert response.status_code == 303, response.text
        page = client.get(response.headers["location"])
        prediction_id = response.headers["location"].rsplit("/", 1)[1]
        ids.append(prediction_id)
        record = client.app.state.service.db.prediction(prediction_id)
        assert f'id="label">{record.label}<' in page.text and f'{record.confidence:.2f}' in page.text
        assert record.label in LABELS and 0.5 <= record.confidence <= 1
        assert record.input_sha256 == hashlib.sha256(data).hexdigest()
        assert record.model_version == dual_model.version and record.model_version.startswith("dual_run")
        images = [src for src in page.text.split('src="')[1:]]
        assert len(images) == 4  # the input, both backbones' Grad-CAM maps and their mean
        for name_in_page in ("gradcam_mobilenet_v2.png", "gradcam_mobilenet_v3_small.png", "gradcam_combined.png"):
            image = client.get(f"/predictions/{prediction_id}/images/{name_in_page}")
            assert image.status_code == 200 and image.content[:8] == b"\x89PNG\r\n\x1a\n"
        pdf = client.get(f"/predictions/{prediction_id}/report.pdf")
        assert pdf.headers["content-type"] == "application/pdf" and "attachment" in pdf.headers["content-disposition"]
        text = pypdfium2.PdfDocument(pdf.content)[0].get_textpage().get_text_range()
        assert record.label in text and f"{record.confidence:.3f}" in text and dual_model.version in text
        html = client.get(f"/predictions/{prediction_id}/report.html").text
        assert record.label in html and html.count("data:image/png;base64,") == 5  # 4 images and the chart
        assert '"interpolation"' not in html and "interpolation: area" in html  # the recipe, as text
    assert "slice" in client.get(f"/predictions/{ids[2]}/report.html").text  # NIfTI: which slice was classified
    history = client.get("/history").text
    assert all(prediction_id in history for prediction_id in ids)
    assert client.post("/logout", data={"csrf_token": form_token(history)}, follow_redirects=False).status_code == 303
    assert client.get("/history", follow_redirects=False).headers["location"] == "/login"


def test_confidence_gate_review_queue_and_corrections_never_overwrite(dual_model, tmp_path, photos):
    gated = make_client(dual_model, tmp_path / "gated", review_threshold=1.01)  # every prediction is below it
    trusted = make_client(dual_model, tmp_path / "trusted", review_threshold=0.0)  # none is
    for client in (gated, trusted):
        register_and_log_in(client, "ana")
    ana, ana_trusted = api_token(gated, "ana"), api_token(trusted, "ana")
    upload = {"file": ("photo.png", png_bytes(photos[2]))}
    flagged = gated.post("/api/predictions", files=upload, headers=ana).json()
    passed = trusted.post("/api/predictions", files=upload, headers=ana_trusted).json()
    assert flagged["needs_review"] and not passed["needs_review"]
    assert flagged["input_sha256"] == passed["input_sha256"]  # same bytes, same hash
    register_and_log_in(gated, "rita", role="reviewer")
    rita = api_token(gated, "rita")
    schema = gated.get("/api/openapi.json", headers=rita).json()  # the API documents itself (behind log-in)
    assert {"/api/token", "/api/predictions", "/api/review"} <= set(schema["paths"])
    queue = gated.get("/api/review", headers=rita).json()
    assert [item["id"] for item in queue] == [flagged["id"]]
    assert gated.get("/api/review", headers=ana).status_code == 403  # clinicians do not review
    other = next(name for name in LABELS if name != flagged["label"])
    response = gated.post(f"/api/predictions/{flagged['id']}/reviews", json={"label": other, "comment": "old bleed"}, headers=rita)
    assert response.status_code == 201
    assert gated.get("/api/review", headers=rita).json() == []
    again = gated.get(f"/api/predictions/{flagged['id']}", headers=ana).json()
    assert again["label"] == flagged["label"] and again["confidence"] == flagged["confidence"]  # the original stays
    assert again["reviews"] == [{"label": other, "comment": "old bleed"}]
    manifest = gated.get("/api/review/manifest.csv", headers=rita).text.splitlines()
    assert manifest[0] == "path,label,id,predicted,prediction"
    path, label, identifier, predicted, prediction = manifest[1].split(",")
    assert (label, predicted, prediction, identifier) == (other, flagged["label"], flagged["id"], flagged["input_sha256"])
    assert os.path.isfile(path) and path.startswith(str(tmp_path / "gated" / "uploads"))
    bad = gated.post(f"/api/predictions/{flagged['id']}/reviews", json={"label": "tumour"}, headers=rita)
    assert bad.status_code == 400 and "expected one of haemorrhagic, ischemic" in bad.json()["detail"]


def test_litert_artifact_serves_labels_without_gradcam(retrain_setup, tmp_path):
    from medzoo.serve.analysis import ServiceModel
    from medzoo.serve.uploads import decode_upload

    from medzoo.export import export
    from medzoo.runs import RunFolder

    run = RunFolder(retrain_setup["run"])
    validation, _ = run.read_export_samples()
    sidecar = export(run.load_model(), str(tmp_path / "faces.tflite"), validation_data=validation, labels=run.read_labels(),
                     recipe=run.read_recipe(), isolate=False)  # fmt: skip
    assert sidecar["status"] == "verified"
    keras_model, litert = ServiceModel(run.path), ServiceModel(str(tmp_path / "faces.tflite"))
    assert not litert.explains and litert.labels == keras_model.labels == ["face", "not_face"]
    client = make_client(litert, tmp_path / "data")
    register_and_log_in(client, "ana")
    token = api_token(client, "ana")
    image = open(retrain_setup["held_out_paths"][0], "rb").read()
    result = client.post("/api/predictions", files={"file": ("face.png", image)}, headers=token).json()
    assert [url.rsplit("/", 1)[1] for url in result["images"]] == ["input.png"]
    page = client.get(f"/predictions/{result['id']}").text
    assert "Grad-CAM needs the Keras model" in page
    image, _ = decode_upload(retrain_setup["held_out_paths"][0], keras_model.recipe)
    expected = keras_model.analyse(image)
    assert expected["label"] == result["label"] and expected["confidence"] == pytest.approx(result["confidence"], abs=1e-4)


# --- the attack list ---------------------------------------------------------------------------------------
def test_every_route_needs_a_session_or_token_and_the_right_role(dual_model, tmp_path, photos):
    client = make_client(dual_model, tmp_path / "data")
    open_routes = {"/", "/login", "/register"}
    checked = 0
    for route in client.app.routes:
        if route.path in open_routes or not hasattr(route, "methods"):
            continue
        path = route.path.replace("{prediction_id}", "0" * 32).replace("{name}", "report.pdf")
        for method in route.methods - {"HEAD"}:
            response = client.request(method, path, follow_redirects=False)
            if path.startswith("/api/") and path != "/api/docs":  # the docs page is a page: log-in first
                assert response.status_code in (401, 422), (method, path, response.status_code)
                assert response.status_code == 401 or method != "GET"
            else:
                assert (response.status_code, response.headers.get("location")) == (303, "/login"), (method, path)
            checked += 1
    assert checked >= 20
    # a clinician's session on reviewer routes
    token = register_and_log_in(client, "ana")
    assert client.get("/review").status_code == 403
    assert client.get("/review/manifest.csv").status_code == 403
    assert client.post(f"/review/{'0' * 32}", data={"csrf_token": token, "label": LABELS[0]}).status_code == 403
    # an expired or forged bearer token
    assert client.get("/api/predictions", headers={"Authorization": "Bearer forged"}).status_code == 401


# Who may call each API route: a new route missing here fails the test below. "any": every logged-in role.
API_ROUTE_ROLES = {
    ("DELETE", "/api/token"): "any", ("POST", "/api/predictions"): "any", ("GET", "/api/predictions"): "any",
    ("GET", "/api/predictions/{prediction_id}"): "any", ("GET", "/api/predictions/{prediction_id}/{name}"): "any",
    ("GET", "/api/openapi.json"): "any", ("GET", "/api/review"): "reviewer",
    ("POST", "/api/predictions/{prediction_id}/reviews"): "reviewer", ("GET", "/api/review/manifest.csv"): "reviewer",
}  # fmt: skip


def test_every_api_route_is_checked_against_each_role(dual_model, tmp_path, photos):
    client = make_client(dual_model, tmp_path / "data")
    register_and_log_in(client, "ana")
    register_and_log_in(client, "rita", role="reviewer")
    client.cookies.clear()
    tokens = {role: api_token(client, name) for role, name in (("clinician", "ana"), ("reviewer", "rita"))}
    mine = client.post("/api/predictions", files={"file": ("a.png", png_bytes(photos[0]))},
                       headers=tokens["clinician"]).json()["id"]  # fmt: skip
    routes = {(method, route.path) for route in client.app.routes if route.path.startswith("/api/")
              for method in getattr(route, "methods", set()) - {"HEAD"}} - {("POST", "/api/token")}  # log-in: open
    assert routes == set(API_ROUTE_ROLES), routes ^ set(API_ROUTE_ROLES)
    bodies = {"/api/predictions/{prediction_id}/reviews": {"json": {"label": LABELS[0]}},
              "/api/predictions": {"files": {"file": ("b.png", png_bytes(photos[1]))}}}  # fmt: skip
    for (method, path), allowed in sorted(API_ROUTE_ROLES.items(), key=lambda item: item[0][0] == "DELETE"):
        url = path.replace("{prediction_id}", mine).replace("{name}", "report.pdf")
        for role, token in tokens.items():
            response = client.request(method, url, headers=token, **bodies.get(path, {}))
            if allowed in ("any", role):
                assert response.status_code not in (401, 403), (method, path, role, response.status_code)
            else:
                assert response.status_code == 403, (method, path, role, response.status_code)


def test_log_in_form_tokens_are_bound_to_the_pre_session(dual_model, tmp_path):
    client = make_client(dual_model, tmp_path / "data")
    client.app.state.service.register("ana", PASSWORD)
    # an attacker who plants a cookie and a token of their choosing (equal, as a double-submit check wants)
    client.cookies.set("medzoo_csrf", "planted", domain="testserver.local")
    forged = client.post("/login", data={"csrf_token": "planted", "username": "ana", "password": PASSWORD},
                         cookies={"medzoo_csrf": "planted"}, follow_redirects=False)  # fmt: skip
    assert forged.status_code == 403
    page = client.get("/login")
    good = client.post("/login", data={"csrf_token": form_token(page.text), "username": "ana", "password": PASSWORD},
                       follow_redirects=False)  # fmt: skip
    assert good.status_code == 303


def test_nobody_can_lock_a_clinician_out_from_another_address(dual_model, tmp_path):
    from medzoo.serve.service import AuthError

    service = make_client(dual_model, tmp_path / "data").app.state.service
    service.register("ana", PASSWORD)
    for _ in range(service.settings.max_login_failures):
        with pytest.raises(AuthError, match="Wrong"):
            service.log_in("10.0.0.66", "ana", "wrong password", "api")
    with pytest.raises(AuthError, match="Too many") as throttled:
        service.log_in("10.0.0.66", "ana", PASSWORD, "api")  # the guessing address waits, right password or not
    assert throttled.value.retry_after > 0
    token, login = service.log_in("10.0.0.7", "ana", PASSWORD, "api")  # ana, from her own address, gets in
    assert token and login.user_id == service.db.user_named("ana").id


def test_a_refused_upload_is_not_kept_and_orphans_are_cleaned(dual_model, tmp_path, photos):
    data = tmp_path / "data"
    client = make_client(dual_model, data)
    register_and_log_in(client, "ana")
    token = api_token(client, "ana")
    dicom = open(sample_dicom_path("CT_small.dcm"), "rb").read()
    for junk in (dicom[:3000], b"\x89PNG\r\n\x1a\n" + bytes(40)):  # a cut DICOM, a PNG with no image
        assert client.post("/api/predictions", files={"file": ("x.dcm", junk)}, headers=token).status_code == 422
    assert os.listdir(data / "uploads") == [] if (data / "uploads").exists() else True
    kept = client.post("/api/predictions", files={"file": ("a.png", png_bytes(photos[0]))}, headers=token)
    assert kept.status_code == 201 and len(os.listdir(data / "uploads")) == 1
    (data / "uploads" / ("0" * 64 + ".png")).write_bytes(b"left by an older version")
    make_client(dual_model, data)  # a restart removes uploads no prediction refers to
    assert os.listdir(data / "uploads") == [kept.json()["input_sha256"] + ".png"]


def test_the_manifest_quotes_cells_a_spreadsheet_would_run(dual_model, tmp_path, photos):
    from medzoo.io.atomic import csv_text

    text = csv_text([{"path": "=HYPERLINK(\"http://x\")", "label": "@SUM(1)", "id": "-2+3", "p": "-0.25"}],
                    formula_safe=True)  # fmt: skip
    assert text.splitlines()[1] == "\"'=HYPERLINK(\"\"http://x\"\")\",'@SUM(1),'-2+3,-0.25"


def test_another_users_prediction_is_not_found_anywhere(dual_model, tmp_path, photos):
    client = make_client(dual_model, tmp_path / "data")
    register_and_log_in(client, "ana")
    ana = api_token(client, "ana")
    mine = client.post("/api/predictions", files={"file": ("a.png", png_bytes(photos[0]))}, headers=ana).json()["id"]
    client.cookies.clear()
    register_and_log_in(client, "eve")
    eve = api_token(client, "eve")
    for path in (f"/predictions/{mine}", f"/predictions/{mine}/report.pdf", f"/predictions/{mine}/images/input.png"):
        assert client.get(path).status_code == 404, path
    for path in (f"/api/predictions/{mine}", f"/api/predictions/{mine}/report.html"):
        assert client.get(path, headers=eve).status_code == 404, path
    assert client.get("/api/predictions", headers=eve).json() == []


def test_hostile_uploads_get_a_message_never_a_traceback(dual_model, tmp_path, photos):
    client = make_client(dual_model, tmp_path / "data", max_upload_bytes=200_000)
    register_and_log_in(client, "ana")
    ana = api_token(client, "ana")
    dicom = open(sample_dicom_path("CT_small.dcm"), "rb").read()
    cases = {
        "not_an_image.png": (b"%PDF-1.4 this is a PDF", 422, "not a PNG, JPEG, DICOM or NIfTI file"),
        "truncated.dcm": (dicom[:3000], 422, "the uploaded file"),
        "../../../../etc/passwd.png": (png_bytes(photos[0]), 201, None),
        "huge.png": (png_bytes(photos[0]) + bytes(400_000), 413, "larger than the limit"),
        "empty.png": (b"", 422, "empty"),
    }
    for name, (data, status, message) in cases.items():
        response = client.post("/api/predictions", files={"file": (name, data)}, headers=ana)
        assert response.status_code == status, (name, response.text)
        if message:
            assert message in response.json()["detail"] and "Traceback" not in response.text
        page_token = form_token(client.get("/upload").text)
        page = client.post("/upload", data={"csrf_token": page_token}, files={"file": (name, data)})
        assert page.status_code == (200 if status == 201 else status), name  # a result page after the redirect
        if message:
            assert message in page.text and 'role="alert"' in page.text
    data_dir = str(tmp_path / "data")
    stored = [os.path.relpath(p, data_dir) for p in glob.glob(data_dir + "/**", recursive=True) if os.path.isfile(p)]
    assert not [p for p in stored if "passwd" in p or p.startswith("..")]
    assert all(p == "medzoo.db" or p.startswith(("uploads/", "predictions/")) or p.startswith("medzoo.db-") for p in stored)
    prediction = client.get("/api/predictions", headers=ana).json()[0]
    assert prediction["file_name"] == "passwd.png"  # shown as text: the last component only
    for name in ("..%2F..%2Fmedzoo.db", "../medzoo.db", "report.txt", "input.PNG"):
        assert client.get(f"/api/predictions/{prediction['id']}/{name}", headers=ana).status_code == 404, name


def test_forms_without_the_csrf_token_are_refused(dual_model, tmp_path, photos):
    client = make_client(dual_model, tmp_path / "data")
    client.get("/login")
    for path, data in (("/login", {"username": "ana", "password": PASSWORD}),
                       ("/register", {"username": "ana", "password": PASSWORD})):  # fmt: skip
        for token in ({}, {"csrf_token": "forged"}):
            response = client.post(path, data={**data, **token})
            assert response.status_code == 403 and "CSRF" in response.text
    register_and_log_in(client, "ana")
    client.app.state.service.register("rita", PASSWORD, role="reviewer")
    upload = {"file": ("a.png", png_bytes(photos[0]))}
    assert client.post("/upload", data={"csrf_token": "forged"}, files=upload).status_code == 403
    assert client.post("/logout", data={}).status_code == 403
    assert client.get("/history").status_code == 200  # still logged in: the forged log-out did nothing
    assert client.app.state.service.db.predictions_of(client.app.state.service.db.user_named("ana").id) == []


def test_sql_metacharacters_are_data_and_log_in_is_throttled(dual_model, tmp_path, photos):
    client = make_client(dual_model, tmp_path / "data", max_login_failures=3)
    service = client.app.state.service
    hostile = "x' OR '1'='1'; DROP TABLE users; --"
    page = client.get("/register")
    response = client.post("/register", data={"csrf_token": form_token(page.text), "username": hostile, "password": PASSWORD})
    assert response.status_code == 400 and "user name is 3-64 letters" in response.text
    service.register("ana", hostile)  # a password may hold anything
    assert client.post("/api/token", json={"username": "ana", "password": hostile}).status_code == 200
    assert client.post("/api/token", json={"username": hostile, "password": hostile}).status_code == 401
    service.register("rita", PASSWORD, role="reviewer")
    ana = {"Authorization": "Bearer " + client.post("/api/token", json={"username": "ana", "password": hostile}).json()["token"]}
    rita = api_token(client, "rita")
    created = client.post("/api/predictions", files={"file": (hostile + ".png", png_bytes(photos[0]))}, headers=ana).json()
    assert created["file_name"] == hostile + ".png"
    assert client.post(f"/api/predictions/{created['id']}/reviews", json={"label": hostile}, headers=rita).status_code == 400
    review = client.post(f"/api/predictions/{created['id']}/reviews", json={"label": LABELS[0], "comment": hostile}, headers=rita)
    assert review.json()["comment"] == hostile
    assert client.get(f"/api/predictions/{hostile}", headers=ana).status_code == 404
    assert service.db.user_named("rita") is not None and len(service.db.reviewed_cases()) == 1  # tables intact
    # three failures for one user name lock it for the window, from any address
    for _ in range(3):
        assert client.post("/api/token", json={"username": "rita", "password": "wrong password"}).status_code == 401
    throttled = client.post("/api/token", json={"username": "rita", "password": PASSWORD})
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) > 0
    page = client.get("/login")
    response = client.post("/login", data={"csrf_token": form_token(page.text), "username": "rita", "password": PASSWORD})
    assert response.status_code == 429 and "Too many failed log-ins" in response.text


def test_dicom_header_personal_data_stays_out_of_logs(dual_model, tmp_path, caplog):
    import pydicom

    dataset = pydicom.dcmread(sample_dicom_path("CT_small.dcm"))
    dataset.PatientName, dataset.PatientID = "Doe^Jane", "PID-4711"
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    client = make_client(dual_model, tmp_path / "data")
    register_and_log_in(client, "ana")
    with caplog.at_level(logging.DEBUG):
        response = client.post("/api/predictions", files={"file": ("Doe_Jane.dcm", buffer.getvalue())}, headers=api_token(client, "ana"))
    assert response.status_code == 201
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert response.json()["id"] in logged
    assert not any(secret in logged for secret in ("Doe", "Jane", "PID-4711"))


# --- crash safety, a real server, PostgreSQL -----------------------------------------------------------------
def create_account(data_dir, username, role="clinician"):
    from medzoo.serve.database import Database, default_url
    from medzoo.serve.security import hash_password

    Database(default_url(data_dir)).create_user(username, hash_password(PASSWORD), role)


@pytest.fixture(scope="module")
def postgres():
    if postgres_bin() is None:
        pytest.skip("PostgreSQL server programs not installed (`make test` installs Debian's postgresql)")
    server = PostgresServer().start()
    yield server
    server.stop()


def test_prediction_log_and_reviews_on_a_real_postgresql_server(postgres, dual_model, tmp_path, photos):
    import sqlalchemy

    client = make_client(dual_model, tmp_path / "data", db=postgres.url, review_threshold=1.01)
    service = client.app.state.service
    assert service.db.engine.dialect.name == "postgresql"
    register_and_log_in(client, "ana")
    service.register("rita", PASSWORD, role="reviewer")
    ana, rita = api_token(client, "ana"), api_token(client, "rita")
    created = [client.post("/api/predictions", files={"file": (f"{k}.png", png_bytes(photos[k]))}, headers=ana).json()
               for k in range(2)]  # fmt: skip
    assert len({item["id"] for item in created}) == 2
    assert [item["id"] for item in client.get("/api/review", headers=rita).json()] == [item["id"] for item in created]
    client.post(f"/api/predictions/{created[0]['id']}/reviews", json={"label": LABELS[1]}, headers=rita)
    assert [item["id"] for item in client.get("/api/review", headers=rita).json()] == [created[1]["id"]]
    with service.db.engine.connect() as connection:
        rows = connection.execute(sqlalchemy.text("SELECT id, input_sha256, needs_review FROM predictions")).all()
    assert sorted(row.id for row in rows) == sorted(item["id"] for item in created) and all(row.needs_review for row in rows)
    with pytest.raises(InputError, match="taken"):
        service.register("ana", PASSWORD)


# --- retraining from feedback ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def retrain_setup(tmp_path_factory):
    """A face / not-face model trained on real LFW crops, a held-out set, and a new scanner's blurred images."""
    import cv2

    from medzoo.data.labelled_sets import lfw_faces
    from medzoo.io import write_csv, write_image
    from medzoo.train.fit import fit

    root = tmp_path_factory.mktemp("faces")
    images, labels, ids, names = lfw_faces()
    order = np.random.default_rng(0).permutation(len(images))
    parts = {"train": order[:110], "held_out": order[110:170], "new_domain": order[170:]}
    manifests = {}
    for part, indices in parts.items():
        rows = []
        for i in indices:
            image = cv2.GaussianBlur(images[i], (0, 0), 2) if part == "new_domain" else images[i]
            rows.append({"path": write_image(str(root / part / f"{ids[i]}.png"), image), "label": names[labels[i]], "id": ids[i]})
        manifests[part] = write_csv(str(root / f"{part}.csv"), rows)
    config = {"model": "transfer_classifier", "data": {"train": manifests["train"], "val_fraction": 0.0},
              "model_kwargs": {"backbone": "mobilenet_v2_torchvision", "weights": "imagenet", "input_shape": [32, 32, 3],
                               "head_units": [], "dropout": 0.0},
              "epochs": 8, "batch_size": 16, "learning_rate": 3e-3, "early_stopping_patience": None,
              "reduce_lr_patience": None}  # fmt: skip
    run = fit(config, str(root / "run"), verbose=0)["run_dir"]
    held_out_paths = sorted(glob.glob(str(root / "held_out" / "*.png")))
    return {"run": run, "manifests": manifests, "root": root, "held_out_paths": held_out_paths}


def test_retraining_on_reviewed_cases_learns_them_and_the_gate_guards_the_old_task(retrain_setup, tmp_path, capsys):
    from medzoo.io import write_csv
    from medzoo.serve.database import default_url
    from medzoo.serve.analysis import ServiceModel

    setup, root = retrain_setup, retrain_setup["root"]
    client = make_client(ServiceModel(setup["run"]), tmp_path / "data", review_threshold=1.01)
    register_and_log_in(client, "ana")
    client.app.state.service.register("rita", PASSWORD, role="reviewer")
    ana, rita = api_token(client, "ana"), api_token(client, "rita")
    truth = {}
    for path in sorted(glob.glob(str(root / "new_domain" / "*.png"))):  # a new scanner's images, reviewed
        created = client.post("/api/predictions", files={"file": (os.path.basename(path), open(path, "rb").read())}, headers=ana).json()
        truth[created["id"]] = _label_of(setup["manifests"]["new_domain"], path)
    for prediction_id, label in truth.items():
        assert client.post(f"/api/predictions/{prediction_id}/reviews", json={"label": label}, headers=rita).status_code == 201
    database = default_url(str(tmp_path / "data"))
    current = str(tmp_path / "current")
    os.symlink(setup["run"], current)
    status = main(["retrain", setup["run"], "--feedback", database, "--data-dir", str(tmp_path / "data"),
                   "--replay", setup["manifests"]["train"], "--held-out", setup["manifests"]["held_out"],
                   "--out", str(tmp_path / "run2"), "--epochs", "6", "--lr", "3e-3", "--current", current])  # fmt: skip
    summary = json.load(open(tmp_path / "run2" / "retrain.json"))
    printed = capsys.readouterr().out
    assert status == 0 and summary["promoted"] and "promoted" in printed, printed
    assert summary["feedback_cases"] == 30 and summary["replay_items"] == 60
    assert summary["after"]["feedback"] >= summary["before"]["feedback"] + 0.1, summary  # 0.65 -> 0.78 here
    assert summary["before"]["held_out"] - summary["after"]["held_out"] <= 0.02
    assert os.path.realpath(current) == str(tmp_path / "run2")
    # Wrong corrections (every case "face") and no replay: the old task is forgotten, the gate refuses.
    rows = [{"path": path, "label": "face", "id": os.path.basename(path)} for path in sorted(glob.glob(str(root / "new_domain" / "*.png")))]
    poisoned = write_csv(str(tmp_path / "poisoned.csv"), rows)
    status = main(["retrain", str(tmp_path / "run2"), "--feedback", poisoned, "--replay", setup["manifests"]["train"],
                   "--held-out", setup["manifests"]["held_out"], "--out", str(tmp_path / "run3"), "--replay-ratio", "0",
                   "--epochs", "3", "--lr", "1e-2", "--current", current])  # fmt: skip
    refused = json.load(open(tmp_path / "run3" / "retrain.json"))
    assert status == 3 and not refused["promoted"] and refused["held_out_loss"] > 0.02, refused
    assert os.path.realpath(current) == str(tmp_path / "run2")  # still the promoted model
    assert "NOT promoted" in capsys.readouterr().out


def _label_of(manifest, path):
    from medzoo.io.tables import read_csv_rows

    return next(row["label"] for row in read_csv_rows(manifest, ("path", "label")) if row["path"] == path)


@pytest.fixture(scope="module")
def live_server(dual_run, tmp_path_factory):
    """`medzoo serve` in its own process, with an account "load"."""
    data_dir = str(tmp_path_factory.mktemp("live") / "data")
    create_account(data_dir, "load")
    server = ServiceProcess(dual_run, data_dir).wait_ready()
    yield server
    server.stop()
    assert "Traceback" not in server.output()


def test_load_generator_reports_throughput_latency_and_memory(live_server, photos):
    from medzoo.bench.serve_load import run_load

    result = run_load(live_server.url, live_server.process.pid, [("a.png", png_bytes(photos[0]))], ("load", PASSWORD),
                      clients=2, seconds=3)  # fmt: skip
    assert result["requests"] >= 2 and result["errors"] == 0 and result["clients"] == 2
    assert 0 < result["p50_ms"] <= result["p99_ms"] and result["throughput_per_s"] > 0
    assert result["rss_after_mb"] > 100 and result["rss_before_mb"] > 100  # TensorFlow and the model are resident


def test_the_group_keeps_these_tests_on_one_worker(request):
    """xdist's loadgroup tags node ids with the group; pytest 9.2 lost the tag and split every group."""
    if not hasattr(request.config, "workerinput"):
        pytest.skip("not running under pytest-xdist")
    assert request.node.nodeid.endswith("@serve"), request.node.nodeid


# --- a person with a browser ------------------------------------------------------------------------------------
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


def test_a_clinician_in_a_real_browser(live_server, tmp_path, photos):
    """Register, log in, upload a real DICOM and a PNG, see label, confidence and Grad-CAM, download the report, log out.

    With MEDZOO_SCREENSHOTS=docs the result page and the report's first page are written there (README figures).
    """
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (`make test` installs it)")
    import pypdfium2
    from playwright.sync_api import sync_playwright

    out = os.environ.get("MEDZOO_SCREENSHOTS") or str(tmp_path)
    png = tmp_path / "photo.png"
    png.write_bytes(png_bytes(photos[3]))
    server = live_server
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1100, "height": 900}, accept_downloads=True)
        page.goto(server.url + "/register")
        page.fill("#username", "ana")
        page.fill("#password", PASSWORD)
        page.click("main button.primary")
        page.wait_for_url("**/login")
        page.fill("#username", "ana")
        page.fill("#password", PASSWORD)
        page.click("main button.primary")
        page.wait_for_url("**/upload")
        for upload in (sample_dicom_path("CT_small.dcm"), str(png)):
            page.goto(server.url + "/upload")
            page.set_input_files("#file", upload)
            page.click("main button.primary")
            page.wait_for_url("**/predictions/*", timeout=120_000)
            assert page.inner_text("#label") in LABELS
            assert 0.5 <= float(page.inner_text("#confidence")) <= 1.0
            page.wait_for_load_state("load")
            loaded = page.evaluate("Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)")
            assert loaded == [True] * 4  # the input and three Grad-CAM overlays, served behind the log-in
            if upload.endswith(".dcm"):
                page.screenshot(path=os.path.join(out, "serve_result.png"), full_page=True)
            with page.expect_download() as download:
                page.click("#report-pdf")
            report = tmp_path / "report.pdf"
            download.value.save_as(report)
            document = pypdfium2.PdfDocument(str(report))
            assert page.inner_text("#label") in document[0].get_textpage().get_text_range()
            if upload.endswith(".dcm"):
                document[0].render(scale=1.2).to_pil().save(os.path.join(out, "serve_report.png"))
        page.click("#logout")
        page.wait_for_url("**/login")
        page.goto(server.url + "/history")
        assert page.url.endswith("/login")  # the session is gone
        browser.close()


def test_serve_user_creates_accounts_for_a_service_without_registration(dual_model, tmp_path, monkeypatch, capsys):
    data_dir = str(tmp_path / "data")
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["serve-user", "rita", "--role", "reviewer", "--data-dir", data_dir, "--password-stdin"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["serve-user", "bob", "--data-dir", data_dir, "--password-stdin"]) == 2
    assert "password needs at least 8 characters" in capsys.readouterr().err
    client = make_client(dual_model, data_dir, registration=False)
    assert client.get("/register").status_code == 404 and "Register" not in client.get("/login").text.split("<main>")[1]
    assert client.post("/api/token", json={"username": "rita", "password": PASSWORD}).status_code == 200


def test_server_killed_mid_prediction_leaves_no_half_record(live_server, dual_run, photos):
    """Last in the file: it kills the live server the browser and load tests used, and restarts it."""
    import threading

    import httpx

    from medzoo.serve.database import Database, default_url

    server = live_server
    data_dir = server.data_dir
    create_account(data_dir, "kim")
    before = Database(default_url(data_dir)).prediction_ids()
    second = png_bytes(photos[6])  # not uploaded by the tests before
    stored = os.path.join(data_dir, "uploads", hashlib.sha256(second).hexdigest() + ".png")

    def kill_once_the_upload_is_stored():  # the request is then inside the prediction: decoding or Grad-CAM
        deadline = time.time() + 60
        while not os.path.exists(stored) and time.time() < deadline:
            time.sleep(0.002)
        server.stop(kill=True)

    try:
        token = httpx.post(server.url + "/api/token", json={"username": "kim", "password": PASSWORD}).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        first = httpx.post(server.url + "/api/predictions", files={"file": ("a.png", png_bytes(photos[0]))},
                           headers=headers, timeout=120)  # fmt: skip
        assert first.status_code == 201
        killer = threading.Thread(target=kill_once_the_upload_is_stored)
        killer.start()
        with pytest.raises(httpx.TransportError):
            httpx.post(server.url + "/api/predictions", files={"file": ("b.png", second)}, headers=headers, timeout=120)
        killer.join()
    finally:
        server.stop(kill=True)
    assert os.path.isfile(stored) and "Traceback" not in server.output()
    assert first.json()["id"] not in before
    restarted = ServiceProcess(dual_run, data_dir).wait_ready()
    try:
        recorded = Database(default_url(data_dir)).prediction_ids()
        assert recorded == before | {first.json()["id"]}  # the killed prediction left no row
        assert set(os.listdir(os.path.join(data_dir, "predictions"))) == recorded  # nor a case folder, nor staging
        assert {"input.png", "report.pdf", "report.html", "chart.png"} <= set(
            os.listdir(os.path.join(data_dir, "predictions", first.json()["id"])))
        again = httpx.post(restarted.url + "/api/predictions", files={"file": ("b.png", second)}, headers=headers, timeout=120)
        assert again.status_code == 201  # the token survived the crash: it lives in the database
    finally:
        restarted.stop()
