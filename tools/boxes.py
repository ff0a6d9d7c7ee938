"""Box annotations from annotation tools -> medzoo's box CSV (path, x1, y1, x2, y2, label).

    python tools/boxes.py voc annotations/ --out boxes.csv                  # Pascal VOC *.xml (LabelImg, CVAT)
    python tools/boxes.py coco instances.json --images images/ --out boxes.csv
    python tools/boxes.py yolo labels/ --images images/ --names valve --out boxes.csv

Boxes are written in pixels, xyxy; images without an object keep a row with
empty coordinates. The label column is what the classifier learns: give the
class (e.g. calcified / normal) as the box's name in the annotation tool.
"""

import argparse
import glob
import os
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("format", choices=("voc", "coco", "yolo"))
    parser.add_argument("source", help="VOC: folder of .xml; COCO: the .json; YOLO: folder of .txt labels")
    parser.add_argument("--images", help="image folder (default: next to the annotations)")
    parser.add_argument("--names", nargs="+", help="YOLO: class names in index order")
    parser.add_argument("--out", required=True, help="the box CSV to write")
    args = parser.parse_args(argv)

    from medzoo.data.boxes import read_coco, read_voc, read_yolo, write_box_csv
    from medzoo.errors import InputError

    try:
        if args.format == "voc":
            rows = [row for path in sorted(glob.glob(os.path.join(args.source, "*.xml")))
                    for row in read_voc(path, args.images)]  # fmt: skip
        elif args.format == "coco":
            rows = read_coco(args.source, args.images)
        else:
            if not args.names:
                raise InputError("yolo: --names is required (the class names in index order).")
            rows = read_yolo(args.source, args.images or args.source, args.names)
        if not rows:
            raise InputError(f"{args.source}: no {args.format} annotations found.")
        write_box_csv(args.out, rows)
    except InputError as error:
        print(f"boxes: error: {error}", file=sys.stderr)
        return 2
    boxed = sum(row["box"] is not None for row in rows)
    print(f"{args.out}: {len(rows)} rows, {boxed} boxes, {len({row['path'] for row in rows})} images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
