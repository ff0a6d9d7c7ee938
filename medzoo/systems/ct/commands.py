"""S3's part of the `medzoo` command: the CT demo (S3 trains and compares through `train` and `experiment`)."""

DEMO = {"out": "demo_ct", "help": "ct: S3's two models on a real head CT"}


def run_demo(args):
    from medzoo.systems.ct.pipeline import run_ct_demo

    run_ct_demo(out_dir=args.out or DEMO["out"], latency_runs=args.runs, seed=args.seed)
    return 0

