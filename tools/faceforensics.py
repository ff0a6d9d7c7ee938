"""FaceForensics++ -> medzoo manifests, one per official split (train/val/test.csv), or all.csv.

    python tools/faceforensics.py /data/FaceForensics++ --out manifests/ffpp --compression c23
    medzoo prepare-video manifests/ffpp/train.csv cache/ffpp_train --frames 10 --size 224

Columns: path (relative to the manifest), label (real | fake), id (identity
group: target and source of every swap joined), video, method (original or
the manipulation).
"""

import argparse
import sys


def main(argv=None):
    from medzoo.systems.video.public_sets import FF_METHODS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", help="FaceForensics++ folder (original_sequences/, manipulated_sequences/[, splits/])")
    parser.add_argument("--out", required=True, help="folder for the manifests")
    parser.add_argument("--compression", default="c23", choices=("raw", "c23", "c40"), help="(default: c23)")
    parser.add_argument("--methods", nargs="+", default=list(FF_METHODS), choices=FF_METHODS,
                        help="manipulations to include (default: all present)")
    args = parser.parse_args(argv)

    from medzoo.systems.video.public_sets import faceforensics_rows, write_manifests
    from medzoo.errors import InputError

    try:
        written = write_manifests(args.root, args.out, faceforensics_rows(args.root, args.compression, args.methods))
    except InputError as error:
        print(f"faceforensics: error: {error}", file=sys.stderr)
        return 2
    for path, rows in written.items():
        methods = sorted({row["method"] for row in rows})
        print(f"{path}: {len(rows)} videos ({', '.join(methods)}), {len({row['id'] for row in rows})} identity groups")
    return 0


if __name__ == "__main__":
    sys.exit(main())
