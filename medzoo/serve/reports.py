"""A prediction's report: images, probability chart, HTML and PDF, written into one folder atomically.

    predictions/<id>/
      input.png            the image as the model saw it (after the recipe)
      gradcam_<name>.png   Grad-CAM overlays (Keras models; one per backbone, and "combined")
      chart.png            class probabilities against the review threshold
      report.html          self-contained (images inline)
      report.pdf

Examples:
    >>> findings({"label": "ischemic", "confidence": 0.62, "threshold": 0.8, "overlays": [], "note": None})[0][0]
    "The model's answer is 'ischemic' with confidence 0.62."
"""

import base64
import datetime
import os

import numpy as np

from medzoo.io.atomic import replace_path, staging_path, write_bytes_atomic

DISCLAIMER = "medzoo models are research software, not a diagnostic device: a clinician confirms every finding."


def findings(case):
    """(findings, recommended next steps): the report's sentences for one prediction."""
    found = [f"The model's answer is {case['label']!r} with confidence {case['confidence']:.2f}."]
    if case["overlays"]:
        found.append(f"Grad-CAM marks the regions that raised the score of {case['label']!r} (red: most); "
                     "a dual-backbone model has one map per backbone and their mean.")  # fmt: skip
    else:
        found.append("No Grad-CAM map: the service runs an exported LiteRT/ONNX model, which has no gradients; "
                     "the image shown is the model's input.")  # fmt: skip
    if case.get("note"):
        found.append(case["note"] + ".")
    if case["confidence"] < case["threshold"]:
        steps = [f"The confidence is below the review threshold {case['threshold']:.2f}: the case is in the "
                 "review queue. Wait for a reviewer's confirmation before acting on it."]  # fmt: skip
    else:
        steps = [f"The confidence is at or above the review threshold {case['threshold']:.2f}."]
    return found, steps + [DISCLAIMER]


def _chart(probabilities, threshold, path):
    from matplotlib.figure import Figure  # no pyplot: the service draws from several threads

    from medzoo.io.figures import save_figure

    names = list(probabilities)
    figure = Figure(figsize=(5, 0.5 + 0.45 * len(names)), dpi=100)
    axes = figure.subplots()
    axes.barh(names, [probabilities[name] for name in names], color="#3b7dd8")
    axes.axvline(threshold, color="#c0392b", linestyle="--", label=f"review threshold {threshold:.2f}")
    axes.set_xlim(0, 1)
    axes.set_xlabel("probability")
    axes.legend(loc="lower right", fontsize=8)
    return save_figure(figure, path)


def write_case_folder(folder, case, image, overlays):
    """Writes the images, chart and both reports of `case` into `folder` (staged, then renamed into place).

    Args:
        folder: str. predictions/<id> under the data dir; must not exist yet.
        case: dict. id, created_at, user, file_name, label, confidence,
            probabilities, threshold, model_version, recipe, input_sha256, note.
        image: (H, W, 3) float32 0..255. The model's input.
        overlays: {name: uint8 RGB}. Grad-CAM overlays ({} for LiteRT/ONNX).
    """
    from medzoo.io import write_image

    with staging_path(folder) as staged:
        os.makedirs(staged)
        images = {"input": write_image(os.path.join(staged, "input.png"), np.uint8(np.clip(image, 0, 255)))}
        for name, overlay in overlays.items():
            images[f"Grad-CAM: {name}"] = write_image(os.path.join(staged, f"gradcam_{name}.png"), overlay)
        chart = _chart(case["probabilities"], case["threshold"], os.path.join(staged, "chart.png"))
        case = {**case, "overlays": sorted(overlays)}
        write_bytes_atomic(os.path.join(staged, "report.html"), render_html(case, images, chart))
        write_bytes_atomic(os.path.join(staged, "report.pdf"), render_pdf(case, images, chart))
        replace_path(staged, folder)
    return folder


def _data_uri(path):
    with open(path, "rb") as handle:
        return "data:image/png;base64," + base64.b64encode(handle.read()).decode()


def render_html(case, images, chart):
    from medzoo.serve.templating import TEMPLATES

    found, steps = findings(case)
    return TEMPLATES.get_template("report.html").render(
        case=case, findings=found, steps=steps, chart=_data_uri(chart),
        images={title: _data_uri(path) for title, path in images.items()})  # fmt: skip


def _latin1(text):
    """The PDF's built-in Helvetica covers Latin-1 only."""
    return str(text).encode("latin-1", "replace").decode("latin-1")


def render_pdf(case, images, chart):
    """The report as PDF bytes (fpdf2; the same sections as the HTML report)."""
    from fpdf import FPDF

    found, steps = findings(case)
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, "medzoo prediction report", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    rows = [("prediction", case["id"]), ("time (UTC)", case["created_at"]), ("user", case["user"]),
            ("file", case["file_name"]), ("class", case["label"]), ("confidence", f"{case['confidence']:.3f}"),
            ("model version", case["model_version"]), ("input SHA-256", case["input_sha256"])]  # fmt: skip
    for key, value in rows:
        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(35, 6, _latin1(key))
        pdf.set_font("Helvetica", "", 10)
        pdf.multi_cell(0, 6, _latin1(value), new_x="LMARGIN", new_y="NEXT")
    for title, sentences in (("Findings", found), ("Recommended next steps", steps)):
        pdf.ln(2)
        pdf.set_font("Helvetica", "B", 12)
        pdf.cell(0, 8, title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 10)
        for sentence in sentences:
            pdf.multi_cell(0, 5, _latin1("- " + sentence), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    side = 56  # mm: three images a row
    for position, (title, path) in enumerate(images.items()):
        if position % 3 == 0:
            if pdf.get_y() + side + 8 > pdf.h - 15:
                pdf.add_page()
            top = pdf.get_y()
        x = pdf.l_margin + (position % 3) * (side + 4)
        pdf.set_xy(x, top)
        pdf.set_font("Helvetica", "", 8)
        pdf.cell(side, 5, _latin1(title))
        pdf.image(path, x=x, y=top + 5, w=side, h=side)
        if position % 3 == 2 or position == len(images) - 1:
            pdf.set_xy(pdf.l_margin, top + side + 8)
    pdf.image(chart, w=110)
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 8, "Preprocessing recipe", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Courier", "", 8)
    pdf.multi_cell(0, 4, _latin1(recipe_text(case["recipe"])), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def recipe_text(recipe):
    """The recipe as `key: value` lines."""
    return "\n".join(f"{key}: {value}" for key, value in recipe.items())


def iso_time(moment):
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
