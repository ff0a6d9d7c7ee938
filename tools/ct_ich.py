"""PhysioNet CT-ICH v1.3.1 -> slices.csv (per-slice image models) and sequences/ (one cached sequence per patient).

    python tools/ct_ich.py /data/ct-ich-1.3.1 --out data/ct_ich --slices 30
    python tools/ct_ich.py /data/ct-ich-1.3.1 --out data/ct_ich_32 --slices 32   # ViViT's T
    medzoo experiment configs/ct_s3_*.yaml --set data.train=... --out runs/s3 --compare

Brain-window JPGs as the paper (masks and bone window left out); `--source
nifti` reads ct_scans/*.nii in HU through three CT windows instead. Ids are
patients (ctich<NNN>); a patient is "hemorrhage" when any slice is.
"""

import argparse
import sys


def main(argv=None):
    from medzoo.systems.ct.ct_ich import SOURCES
    from medzoo.systems.ct.sequences import FILLS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", help="the CT-ICH folder (hemorrhage_diagnosis.csv, Patients_CT/, ct_scans/)")
    parser.add_argument("--out", required=True, help="folder for slices.csv and sequences/")
    parser.add_argument("--slices", type=int, default=30, help="slices per patient sequence (the model's T)")
    parser.add_argument("--size", type=int, default=224, help="slice side in pixels")
    parser.add_argument("--fill", choices=FILLS, default="resample", help="how a shorter series reaches --slices")
    parser.add_argument("--source", choices=SOURCES, default="jpg", help="brain-window JPGs or NIfTI volumes")
    args = parser.parse_args(argv)

    from medzoo.systems.ct.ct_ich import prepare_ct_ich
    from medzoo.errors import InputError

    try:
        counts = prepare_ct_ich(args.root, args.out, args.slices, args.size, args.fill, args.source)
    except InputError as error:
        print(f"ct_ich: error: {error}", file=sys.stderr)
        return 2
    print(f"{args.out}/slices.csv: {counts['slices']} slices; {args.out}/sequences: {counts['patients']} patients "
          f"({counts['positive_patients']} with haemorrhage), {counts['prepared']} newly prepared")
    return 0


if __name__ == "__main__":
    sys.exit(main())
