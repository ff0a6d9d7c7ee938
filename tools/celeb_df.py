"""Celeb-DF v2 -> medzoo manifests: train.csv and test.csv (the official test list), no identity in both.

    python tools/celeb_df.py /data/Celeb-DF-v2 --out manifests/celeb_df
    medzoo prepare-video manifests/celeb_df/train.csv cache/celeb_df_train --frames 10 --size 224
    medzoo train --config configs/deepfake_s1.yaml --set data.train=cache/celeb_df_train --run-dir runs/s1

Columns: path (relative to the manifest), label (real | fake), id (identity
group: splitting by it never puts a person on both sides), video.
"""

import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", help="Celeb-DF v2 folder (Celeb-real/, YouTube-real/, Celeb-synthesis/, List_of_testing_videos.txt)")
    parser.add_argument("--out", required=True, help="folder for train.csv and test.csv")
    args = parser.parse_args(argv)

    from medzoo.systems.video.public_sets import celeb_df_rows, write_manifests
    from medzoo.errors import InputError

    try:
        train, test, left_out = celeb_df_rows(args.root)
        written = write_manifests(args.root, args.out, {"train": train, "test": test})
    except InputError as error:
        print(f"celeb_df: error: {error}", file=sys.stderr)
        return 2
    for path, rows in written.items():
        print(f"{path}: {len(rows)} videos, {sum(row['label'] == 'fake' for row in rows)} fake, "
              f"{len({row['id'] for row in rows})} identity groups")
    print(f"left out of train: {left_out} videos whose identity group is in the test list")
    return 0


if __name__ == "__main__":
    sys.exit(main())
