"""Real echo frames with an aortic valve painted in: S4's localizer and classifier data offline.

No labelled valve set installs offline. This paints a valve-like structure
(a ring with three leaflet lines, the short-axis "Mercedes sign") into the
frames of the real apical 4-chamber cine from pydicom-data, inside its
sector, so localization and calcification are learned and measured on real
ultrasound backgrounds, text overlays included. A calcified valve carries
1-3 small bright spots (205-255) on its ring; a normal ring reaches up to 235
in places, so "any white pixel" (the paper's baseline) is not enough.
Each synthetic patient keeps one valve size and place (jittered per image),
so patient-level splits mean something; a tenth of the frames have no valve
(empty box and label: the localizer learns to say so). It stands in for data, not for
clinical validity: bring a labelled set through a box CSV or `tools/boxes.py`.
"""

import os

import numpy as np

CLASSES = ("normal", "calcified")


def _paint_valve(frame, center, radius, calcified, rng):
    """Paints one valve into `frame` (H, W, 3) uint8 in place; returns its box (x1, y1, x2, y2)."""
    import cv2

    layer = np.zeros(frame.shape[:2], np.float32)
    brightness = rng.uniform(110, 230)
    cv2.circle(layer, center, radius, brightness, thickness=max(2, radius // 8), lineType=cv2.LINE_AA)
    for angle in rng.uniform(0, 2 * np.pi) + np.array([0, 2, 4]) * np.pi / 3:  # three leaflets
        tip = (int(center[0] + radius * np.cos(angle)), int(center[1] + radius * np.sin(angle)))
        cv2.line(layer, center, tip, brightness * 0.8, thickness=max(1, radius // 12), lineType=cv2.LINE_AA)
    layer *= rng.uniform(0.75, 1.0, layer.shape)  # speckle on the tissue
    layer = np.minimum(cv2.GaussianBlur(layer, (0, 0), 1.0), 235)
    if calcified:
        for angle in rng.uniform(0, 2 * np.pi, rng.integers(1, 4)):
            spot = (int(center[0] + radius * np.cos(angle)), int(center[1] + radius * np.sin(angle)))
            cv2.circle(layer, spot, int(rng.integers(1, 4)), float(rng.uniform(205, 255)), -1, cv2.LINE_AA)
    frame[:] = np.maximum(frame, layer[..., None].astype(np.uint8))
    margin = max(2, radius // 8)
    return [center[0] - radius - margin, center[1] - radius - margin,
            center[0] + radius + margin + 1, center[1] + radius + margin + 1]  # fmt: skip


def write_painted_valves(out_dir, count=60, patients=20, calcified_fraction=0.36, without_valve=0.1, seed=0):
    """Writes `count` echo frames (PNG) with a painted valve and their box CSV; returns the CSV path.

    Args:
        out_dir: str. Folder for the PNGs and `boxes.csv` (path, x1, y1, x2, y2, label, id).
        count: int. Images. Defaults to 60 (the paper had 61).
        patients: int. Synthetic patients (ids). Defaults to 20.
        calcified_fraction: float. Share of calcified patients. Defaults to 0.36 (the paper's 22 of 61).
        without_valve: float. Share of frames left without a valve. Defaults to 0.1.
        seed: int. Defaults to 0.

    Examples:
        >>> from medzoo.data.boxes import read_box_csv
        >>> rows = read_box_csv(write_painted_valves("/tmp/medzoo-valves", count=4, patients=2))  # doctest: +SKIP
    """
    import cv2

    from medzoo.data.boxes import write_box_csv
    from medzoo.systems.echo.cone import find_cone
    from medzoo.data.samples import sample_dicom_path
    from medzoo.io import read_dicom, write_image

    path = sample_dicom_path("color3d_jpeg_baseline.dcm")
    cine = np.clip(read_dicom(path), 0, 255).astype(np.uint8)
    inside = find_cone(cine, path).mask()
    inside = cv2.erode(inside.astype(np.uint8), np.ones((121, 121), np.uint8)).astype(bool)  # room for the valve
    places = np.argwhere(inside)
    rng = np.random.default_rng(seed)
    calcified_patients = set(rng.permutation(patients)[: round(calcified_fraction * patients)].tolist())
    patient_valves = [(places[rng.integers(len(places))][::-1], int(rng.integers(28, 46))) for _ in range(patients)]
    os.makedirs(out_dir, exist_ok=True)
    rows = []
    for index in range(count):
        patient = index % patients
        (x, y), radius = patient_valves[patient]
        center = (int(x + rng.integers(-12, 13)), int(y + rng.integers(-12, 13)))
        frame = cine[rng.integers(len(cine))].copy()
        calcified = patient in calcified_patients
        painted = rng.uniform() >= without_valve
        box = _paint_valve(frame, center, int(radius + rng.integers(-3, 4)), calcified, rng) if painted else None
        image_path = write_image(os.path.join(out_dir, f"valve{index:03d}.png"), frame)
        rows.append({"path": image_path, "box": box, "label": CLASSES[calcified] if painted else "",
                     "id": f"patient{patient:02d}"})  # fmt: skip
    csv_path = os.path.join(out_dir, "boxes.csv")
    write_box_csv(csv_path, rows)
    return csv_path
