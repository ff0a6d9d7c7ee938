"""What the service does, without the web: accounts, log-in, predictions with reports, reviews, the manifest.

The pages and the JSON API (`medzoo.serve.app`) both call this class, so
they cannot disagree.

Examples:
    >>> service = Service(Settings(model="runs/stroke", data_dir="serve_data"))   # doctest: +SKIP
    >>> user = service.register("ana", "long enough")                           # doctest: +SKIP
    >>> service.predict(user, open("scan.dcm", "rb").read(), "scan.dcm").label  # doctest: +SKIP
    'ischemic'
"""

import dataclasses
import datetime
import logging
import os
import re
import shutil
import uuid

from medzoo.errors import InputError
from medzoo.io.isolated import set_workers
from medzoo.serve import security
from medzoo.serve.database import Database, default_url, utc_now

LOG = logging.getLogger("medzoo.serve")
IMAGE_NAME = re.compile(r"(input|chart|gradcam_[A-Za-z0-9_.-]+)\.png")


@dataclasses.dataclass
class Settings:
    """How `medzoo serve` runs (its command-line options)."""

    model: str
    data_dir: str
    db: str = None  # None: sqlite:///<data_dir>/medzoo.db
    registration: bool = True
    review_threshold: float = 0.8
    max_upload_bytes: int = 50 * 1024 * 1024
    session_hours: float = 8.0
    secure_cookies: bool = True
    max_login_failures: int = 5
    login_window_s: float = 300.0
    decode_workers: int = 2  # uploads decoded at once, each in a worker process (bounds their memory)
    api_docs: bool = False  # /api/docs (Swagger UI) loads its script from a CDN: off unless asked for


class AuthError(Exception):
    """Wrong user name or password, or a throttled log-in (`retry_after` > 0)."""

    def __init__(self, message, retry_after=0.0):
        super().__init__(message)
        self.retry_after = retry_after


class Service:
    def __init__(self, settings, model=None):
        from medzoo.serve.analysis import ServiceModel

        self.settings = settings
        os.makedirs(settings.data_dir, exist_ok=True)
        self.db = Database(settings.db or default_url(settings.data_dir))
        self.model = model or ServiceModel(settings.model)
        self.throttle = security.LoginThrottle(settings.max_login_failures, settings.login_window_s)
        set_workers(settings.decode_workers)
        self.remove_unrecorded_cases()

    def case_folder(self, prediction_id):
        return os.path.join(self.settings.data_dir, "predictions", prediction_id)

    def remove_unrecorded_cases(self):
        """Deletes case folders and uploads with no database row, and staging leftovers (a crash between file and row)."""
        for part in ("predictions", "uploads"):
            folder = os.path.join(self.settings.data_dir, part)
            names = os.listdir(folder) if os.path.isdir(folder) else []
            for name in (n for n in names if n.startswith(".tmp-")):
                shutil.rmtree(os.path.join(folder, name), ignore_errors=True)
        folder = os.path.join(self.settings.data_dir, "predictions")
        if os.path.isdir(folder):
            recorded = self.db.prediction_ids()
            for name in set(os.listdir(folder)) - recorded:
                shutil.rmtree(os.path.join(folder, name), ignore_errors=True)
        folder = os.path.join(self.settings.data_dir, "uploads")
        if os.path.isdir(folder):  # an upload no prediction refers to (kept by an older version, or a crash)
            recorded = self.db.input_digests()
            for name in os.listdir(folder):
                if name.split(".")[0] not in recorded and os.path.isfile(os.path.join(folder, name)):
                    os.remove(os.path.join(folder, name))

    # accounts
    def register(self, username, password, role="clinician"):
        security.check_new_account(username, password)
        return self.db.create_user(username, security.hash_password(password), role)

    def log_in(self, address, username, password, kind):
        """(token, LoginSession) for a right password; AuthError otherwise (throttled after repeated failures)."""
        wait = self.throttle.retry_after(address, username)
        if wait > 0:
            raise AuthError(f"Too many failed log-ins; try again in {int(wait) + 1} s.", retry_after=wait)
        user = self.db.user_named(username or "")
        if not security.verify_password(user.password_hash if user else None, password or ""):
            self.throttle.failed(address, username)
            raise AuthError("Wrong user name or password.")
        self.throttle.succeeded(address, username)
        if security.HASHER.check_needs_rehash(user.password_hash):
            self.db.set_password_hash(user.id, security.hash_password(password))
        token, digest = security.new_token()
        csrf = security.new_token()[0]
        self.db.add_login_session(digest, user.id, kind, csrf, datetime.timedelta(hours=self.settings.session_hours))
        return token, self.db.session_user(digest, kind)[1]

    def authenticate(self, token, kind):
        """(User, LoginSession) of a live token, or (None, None)."""
        return self.db.session_user(security.token_digest(token), kind) if token else (None, None)

    def log_out(self, token):
        self.db.end_login_session(security.token_digest(token))

    # predictions
    def predict(self, user, data, file_name):
        """Stores the upload, classifies it, writes the case folder, then logs the prediction (one transaction)."""
        from medzoo.serve.reports import iso_time, write_case_folder
        from medzoo.serve.uploads import decode_upload, store_upload

        digest, kind, _, (image, note) = store_upload(
            data, self.settings.data_dir, self.settings.max_upload_bytes,
            lambda path, kind: decode_upload(path, self.model.recipe))  # fmt: skip
        result = self.model.analyse(image)
        prediction_id, created_at = uuid.uuid4().hex, utc_now()
        case = {"id": prediction_id, "created_at": iso_time(created_at), "user": user.username,
                "file_name": display_name(file_name), "model_version": self.model.version,
                "recipe": self.model.recipe.to_dict(), "input_sha256": digest, "note": note,
                "threshold": self.settings.review_threshold, **result}  # fmt: skip
        write_case_folder(self.case_folder(prediction_id), case, image, result["overlays"])
        prediction = self.db.add_prediction(
            id=prediction_id, user_id=user.id, created_at=created_at, model_version=self.model.version,
            input_sha256=digest, input_kind=kind, file_name=case["file_name"], label=result["label"],
            confidence=result["confidence"], probabilities=result["probabilities"],
            needs_review=result["confidence"] < self.settings.review_threshold,
            report_path=f"predictions/{prediction_id}/report.pdf")  # fmt: skip
        # Ids, hash prefix and label only: no file name, no DICOM header field ever reaches the log.
        LOG.info("prediction %s by user %d: %s %.3f (input %s, review %s)", prediction_id, user.id,
                 prediction.label, prediction.confidence, digest[:12], prediction.needs_review)  # fmt: skip
        return prediction

    def visible_prediction(self, user, prediction_id):
        """The prediction if `user` may see it (its owner, or a reviewer); None otherwise (also for a bad id)."""
        prediction = self.db.prediction(prediction_id) if re.fullmatch(r"[0-9a-f]{32}", prediction_id or "") else None
        if prediction is None or (prediction.user_id != user.id and user.role != "reviewer"):
            return None
        return prediction

    def case_file(self, prediction, name):
        """Path of a case image or report; None unless `name` is one the service writes."""
        if not (IMAGE_NAME.fullmatch(name) or name in ("report.html", "report.pdf")):
            return None
        path = os.path.join(self.case_folder(prediction.id), name)
        return path if os.path.isfile(path) else None

    def case_images(self, prediction):
        """[(file name, title)] of the case's images, the model input first."""
        folder = self.case_folder(prediction.id)
        names = sorted(n for n in os.listdir(folder) if n.startswith("gradcam_")) if os.path.isdir(folder) else []
        return [("input.png", "model input")] + [(name, "Grad-CAM: " + name[8:-4]) for name in names]

    # review
    def review(self, reviewer, prediction_id, label, comment=""):
        if reviewer.role != "reviewer":
            raise PermissionError("reviewers only.")
        if label not in self.model.labels:
            raise InputError(f"label {label!r}: expected one of {', '.join(self.model.labels)}.")
        if self.visible_prediction(reviewer, prediction_id) is None:
            raise InputError(f"no prediction {prediction_id!r}.")
        review = self.db.add_review(prediction_id, reviewer.id, label, (comment or "")[:2000])
        LOG.info("review of %s by user %d: %s", prediction_id, reviewer.id, label)
        return review

    def manifest_rows(self):
        """Reviewed cases as manifest rows (path, label = the reviewer's, id = input hash, predicted, prediction)."""
        return feedback_rows(self.db, self.settings.data_dir)


def feedback_rows(db, data_dir):
    """The retraining manifest of `db`'s reviewed cases (uploads under `data_dir`)."""
    from medzoo.serve.uploads import upload_path

    rows = []
    for prediction, review in db.reviewed_cases():
        path = upload_path(data_dir, prediction.input_sha256, prediction.input_kind)
        rows.append({"path": path, "label": review.label, "id": prediction.input_sha256,
                     "predicted": prediction.label, "prediction": prediction.id})  # fmt: skip
    return rows


def display_name(file_name):
    """The upload's own name as text to show (never a path): its last component, printable, at most 255 characters."""
    name = re.split(r"[\\/]", str(file_name or "upload"))[-1]
    return "".join(ch for ch in name if ch.isprintable())[:255] or "upload"

