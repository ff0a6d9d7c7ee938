"""S1's `medzoo` subcommands: prepare-video, and the video demo."""

from medzoo.console import report_failures

DEMO = {"out": "demo_video", "help": "video: S1 CNN-LSTM, streamed (4 epochs)"}


def run_demo(args):
    from medzoo.systems.video.pipeline import run_video_demo

    run_video_demo(out_dir=args.out or DEMO["out"], epochs=4 if args.epochs is None else args.epochs, seed=args.seed)
    return 0


def _prepare_video(args):
    from medzoo.data.video_cache import prepare_videos

    summary = prepare_videos(args.source, args.destination, args.frames, args.size, args.faces, args.frame_step)
    print(f"prepared {summary['prepared']}, skipped {summary['skipped']} (cached already), "
          f"failed {len(summary['failed'])}")
    return report_failures(args.command, summary["failed"], summary["prepared"] + summary["skipped"])


def add_commands(commands):
    """Adds S1's subcommands to the `medzoo` parser's subparsers."""
    prepare = commands.add_parser(
        "prepare-video", help="sample frames (and MTCNN faces) from videos once into .npz caches"
    )
    prepare.add_argument("source", help="folder of videos, or of class folders of videos")
    prepare.add_argument("destination", help="cache folder (same layout, .npz per video)")
    prepare.add_argument("--frames", type=int, default=10, help="frames per clip (default: 10)")
    prepare.add_argument("--size", type=int, default=224, help="frame side (default: 224)")
    prepare.add_argument("--faces", action="store_true", help="crop the MTCNN face of each frame")
    prepare.add_argument("--frame-step", type=int,
                         help="every Nth frame from the first (S1 faces: 5); default: spread over the video")
    prepare.set_defaults(run=_prepare_video)
