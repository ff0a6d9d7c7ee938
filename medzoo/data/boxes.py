"""Box annotations: medzoo's CSV (path, x1, y1, x2, y2, label) and importers for VOC, COCO and YOLO.

Boxes are absolute pixels, xyxy, x2 > x1 and y2 > y1. An image without the
object has a row with empty coordinates (the localizer learns "no valve").
"""

import os

import numpy as np

from medzoo.errors import InputError

COORDINATES = ("x1", "y1", "x2", "y2")  # also a manifest's box columns (`medzoo.data.datasets`)
BOX_COLUMNS = ("path", *COORDINATES, "label", "id")


def _box(values, where):
    try:
        x1, y1, x2, y2 = (float(value) for value in values)
    except (TypeError, ValueError) as error:
        raise InputError(f"{where}: box coordinates must be numbers, got {list(values)!r}.") from error
    if not (np.isfinite([x1, y1, x2, y2]).all() and x2 > x1 and y2 > y1 and min(x1, y1) >= 0):
        raise InputError(f"{where}: box {[x1, y1, x2, y2]} must have 0 <= x1 < x2 and 0 <= y1 < y2.")
    return [x1, y1, x2, y2]


def read_box_csv(path):
    """Reads a box CSV into rows {"path", "box" ([x1, y1, x2, y2] or None), "label", "id"}.

    Relative image paths are taken from the CSV's folder. A row with all four
    coordinates empty is an image without the object. The optional id column
    (the patient) defaults to the image's file name without its suffix.

    Examples:
        >>> import tempfile
        >>> path = tempfile.mkdtemp() + "/boxes.csv"
        >>> _ = open(path, "w").write("path,x1,y1,x2,y2,label\\na.png,1,2,30,40,calcified\\n")
        >>> rows = read_box_csv(path)
        >>> rows[0]["box"], rows[0]["label"], rows[0]["path"].endswith("a.png")
        ([1.0, 2.0, 30.0, 40.0], 'calcified', True)
    """
    from medzoo.io.tables import read_csv_rows

    folder = os.path.dirname(os.path.abspath(path))
    rows = []
    for number, row in enumerate(read_csv_rows(path, ("path",), "box table", columns=("label",)), start=2):
        coordinates = [row.get(key, "") for key in COORDINATES]
        where = f"{path}: line {number}"
        box = None if all(value in ("", None) for value in coordinates) else _box(coordinates, where)
        identifier = row.get("id") or os.path.splitext(os.path.basename(row["path"]))[0]
        rows.append({"path": os.path.join(folder, row["path"]), "box": box, "label": row["label"] or "",
                     "id": identifier})
    return rows


def write_box_csv(path, rows):
    """Writes rows {"path", "box", "label"[, "id"]} as a box CSV, atomically; paths relative to its folder."""
    from medzoo.io import write_csv

    folder = os.path.dirname(os.path.abspath(path))
    table = []
    for row in rows:
        box = row["box"] if row["box"] is not None else [""] * 4
        identifier = row.get("id") or os.path.splitext(os.path.basename(row["path"]))[0]
        table.append(dict(zip(BOX_COLUMNS, [os.path.relpath(row["path"], folder), *box, row["label"], identifier])))
    write_csv(path, table, columns=BOX_COLUMNS)


def read_voc(xml_path, image_dir=None):
    """Pascal VOC XML (one image) -> box rows; the image is `<filename>` in `image_dir` (default: the XML's folder).

    Examples:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> _ = open(folder + "/a.xml", "w").write(
        ...     "<annotation><filename>a.png</filename><object><name>valve</name>"
        ...     "<bndbox><xmin>10</xmin><ymin>20</ymin><xmax>50</xmax><ymax>60</ymax></bndbox>"
        ...     "</object></annotation>")
        >>> [(row["box"], row["label"]) for row in read_voc(folder + "/a.xml")]
        [([10.0, 20.0, 50.0, 60.0], 'valve')]
    """
    import xml.etree.ElementTree as ElementTree  # expat >= 2.4.1 refuses entity expansion bombs

    try:
        root = ElementTree.parse(xml_path).getroot()
    except (ElementTree.ParseError, OSError) as error:
        raise InputError(f"{xml_path}: not a readable Pascal VOC XML file ({error}).") from error
    filename = root.findtext("filename")
    if not filename:
        raise InputError(f"{xml_path}: Pascal VOC annotation has no <filename>.")
    image = os.path.join(image_dir or os.path.dirname(os.path.abspath(xml_path)), os.path.basename(filename))
    rows = []
    for index, item in enumerate(root.iter("object")):
        box = item.find("bndbox")
        values = [None if box is None else box.findtext(key) for key in ("xmin", "ymin", "xmax", "ymax")]
        rows.append({"path": image, "label": item.findtext("name") or "",
                     "box": _box(values, f"{xml_path}: object {index}")})  # fmt: skip
    return rows or [{"path": image, "box": None, "label": ""}]


def read_coco(json_path, image_dir=None):
    """COCO detection JSON -> box rows (bbox [x, y, width, height] becomes xyxy; images without boxes kept).

    Examples:
        >>> import json, tempfile
        >>> path = tempfile.mkdtemp() + "/coco.json"
        >>> _ = open(path, "w").write(json.dumps({"images": [{"id": 1, "file_name": "a.png"}],
        ...     "categories": [{"id": 3, "name": "valve"}],
        ...     "annotations": [{"image_id": 1, "category_id": 3, "bbox": [10, 20, 40, 40]}]}))
        >>> [(row["box"], row["label"]) for row in read_coco(path)]
        [([10.0, 20.0, 50.0, 60.0], 'valve')]
    """
    from medzoo.io.tables import read_json

    data = read_json(json_path, "COCO annotation file", dict)
    try:
        folder = image_dir or os.path.dirname(os.path.abspath(json_path))
        images = {item["id"]: os.path.join(folder, os.path.basename(item["file_name"])) for item in data["images"]}
        names = {item["id"]: item["name"] for item in data.get("categories", [])}
        rows, annotated = [], set()
        for index, item in enumerate(data.get("annotations", [])):
            x, y, width, height = item["bbox"]
            where = f"{json_path}: annotation {index}"
            if item["image_id"] not in images:
                raise InputError(f"{where}: image_id {item['image_id']!r} is not in 'images'.")
            rows.append({"path": images[item["image_id"]], "label": names.get(item["category_id"], ""),
                         "box": _box([x, y, float(x) + float(width), float(y) + float(height)], where)})  # fmt: skip
            annotated.add(item["image_id"])
    except (KeyError, TypeError, ValueError) as error:
        raise InputError(f"{json_path}: not a COCO detection file (missing or malformed {error}).") from error
    return rows + [{"path": path, "box": None, "label": ""} for key, path in images.items() if key not in annotated]


def read_yolo(label_dir, image_dir, class_names):
    """YOLO txt labels (one file per image: `class cx cy w h`, normalised) -> box rows in pixels.

    Each `<stem>.txt` in `label_dir` pairs with `<stem>.<png|jpg|jpeg|bmp>` in
    `image_dir`, whose header gives the pixel size.
    """
    from medzoo.io.image import declared_image_size

    rows = []
    for name in sorted(os.listdir(label_dir)):
        stem, suffix = os.path.splitext(name)
        if suffix != ".txt":
            continue
        images = [os.path.join(image_dir, stem + ext) for ext in (".png", ".jpg", ".jpeg", ".bmp")]
        image = next((path for path in images if os.path.isfile(path)), None)
        if image is None:
            raise InputError(f"{os.path.join(label_dir, name)}: no image {stem}.png/.jpg/.jpeg/.bmp in {image_dir}.")
        with open(image, "rb") as handle:
            height, width = declared_image_size(handle.read(1 << 16), image)
        with open(os.path.join(label_dir, name), encoding="utf-8") as handle:
            lines = [line.split() for line in handle if line.strip()]
        for number, fields in enumerate(lines, start=1):
            where = f"{os.path.join(label_dir, name)}: line {number}"
            try:
                label, cx, cy, box_width, box_height = int(fields[0]), *map(float, fields[1:5])
                if label < 0:
                    raise IndexError(label)
                name_of_class = class_names[label]
            except (ValueError, IndexError) as error:
                raise InputError(f"{where}: expected 'class cx cy w h' with a class index below "
                                 f"{len(class_names)}, got {' '.join(fields)!r}.") from error  # fmt: skip
            box = [(cx - box_width / 2) * width, (cy - box_height / 2) * height,
                   (cx + box_width / 2) * width, (cy + box_height / 2) * height]  # fmt: skip
            rows.append({"path": image, "label": name_of_class, "box": _box(np.clip(box, 0, None), where)})
        if not lines:
            rows.append({"path": image, "box": None, "label": ""})
    return rows
