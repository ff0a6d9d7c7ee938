"""Mayo Clinic STRIP AI -> slides.csv, patients.csv and the stage-2 tile manifest for S5's candidate study.

    medzoo tile STRIP_AI/train tiles/ --size 600 --min-tissue 0.3
    python tools/strip_ai.py STRIP_AI/ --tiles tiles/tiles.csv --out strip_ai/
    medzoo tune --config configs/slide_origin_candidates.yaml --set data.train=strip_ai/origin_tiles.csv --out study/
    medzoo slide STRIP_AI/train --background ... --origin ... --patients strip_ai/patients.csv

slides.csv: slide (path), slide_id, patient, centre, label. patients.csv:
slide (file name), patient, label (`medzoo slide --patients`).
origin_tiles.csv: path, label, id (the patient: splits never put a patient on
both sides), slide, centre (`--set fold_by=centre` holds out hospitals).
"""

import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", help="the STRIP AI folder (train.csv, train/<image_id>.tif)")
    parser.add_argument("--out", required=True, help="folder for slides.csv, patients.csv, origin_tiles.csv")
    parser.add_argument("--tiles", help="the tiles.csv `medzoo tile` wrote for train/ (adds origin_tiles.csv)")
    args = parser.parse_args(argv)

    from medzoo.systems.slide.strip_ai import write_strip_ai
    from medzoo.errors import InputError

    try:
        written = write_strip_ai(args.root, args.out, args.tiles)
    except InputError as error:
        print(f"strip_ai: error: {error}", file=sys.stderr)
        return 2
    slides = written["slides.csv"]
    print(f"{args.out}/slides.csv: {len(slides)} slides, {len({r['patient'] for r in slides})} patients, "
          f"{len({r['centre'] for r in slides})} centres, {sum(r['label'] == 'CE' for r in slides)} CE")
    if "origin_tiles.csv" in written:
        print(f"{args.out}/origin_tiles.csv: {len(written['origin_tiles.csv'])} tiles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
