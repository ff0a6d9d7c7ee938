"""S2's `medzoo` subcommands: serve, serve-user and retrain (the clinician service and its feedback loop)."""

import sys

DEMO = None


def _serve(args):
    import logging

    import uvicorn

    from medzoo.serve.app import Settings, create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = Settings(model=args.model, data_dir=args.data_dir, db=args.db, registration=not args.no_register,
                        review_threshold=args.review_threshold, max_upload_bytes=int(args.max_upload_mb * 2**20),
                        secure_cookies=not args.insecure_cookies, decode_workers=args.decode_workers,
                        api_docs=args.api_docs)  # fmt: skip
    app = create_app(settings)
    print(f"medzoo serve: model {app.state.service.model.version} on http://{args.host}:{args.port} "
          f"(database {app.state.service.db.engine.url.render_as_string(hide_password=True)})", flush=True)  # fmt: skip
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", proxy_headers=args.proxy_headers)
    return 0


def _serve_user(args):
    import getpass

    from medzoo.serve.database import Database, default_url
    from medzoo.serve.security import check_new_account, hash_password

    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass(f"password for {args.username}: ")
    check_new_account(args.username, password)
    user = Database(args.db or default_url(args.data_dir)).create_user(args.username, hash_password(password), args.role)
    print(f"created {user.role} {user.username!r}")
    return 0


def _retrain(args):
    from medzoo.serve.retrain import retrain

    summary = retrain(args.run_dir, args.feedback, args.replay, args.held_out, args.out, data_dir=args.data_dir,
                      margin=args.margin, epochs=args.epochs, learning_rate=args.lr, replay_ratio=args.replay_ratio,
                      current=args.current, seed=args.seed, verbose=2 if args.progress else 0)  # fmt: skip
    print(f"{'set':10s} {'before':>7s} {'after':>7s}")
    for part in ("held_out", "feedback"):
        print(f"{part:10s} {summary['before'][part]:7.3f} {summary['after'][part]:7.3f}")
    verdict = "promoted" if summary["promoted"] else "NOT promoted"
    print(f"{summary['version']}: {verdict} (held-out loss {summary['held_out_loss']:+.3f}, margin {summary['margin']}; "
          f"{summary['feedback_cases']} feedback cases, {summary['replay_items']} replayed) -> {summary['run_dir']}")
    return 0 if summary["promoted"] else 3


def add_commands(commands):
    """Adds S2's subcommands to the `medzoo` parser's subparsers."""
    serve = commands.add_parser("serve", help="S2: the clinician web service (log-in, upload, Grad-CAM report, review)")
    serve.add_argument("--model", required=True, help="image model: run folder, .keras, .tflite or .onnx (a link is followed)")
    serve.add_argument("--data-dir", default="serve_data", help="uploads, reports and the SQLite database (default: serve_data)")
    serve.add_argument("--db", help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db (default: SQLite in --data-dir)")
    serve.add_argument("--host", default="127.0.0.1", help="(default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="(default: 8000)")
    serve.add_argument("--review-threshold", type=float, default=0.8,
                       help="predictions below this confidence go to the review queue (default: 0.8)")
    serve.add_argument("--max-upload-mb", type=float, default=50, help="(default: 50)")
    serve.add_argument("--no-register", action="store_true", help="no self-registration: accounts from `medzoo serve-user`")
    serve.add_argument("--decode-workers", type=int, default=2,
                       help="uploads decoded at once, each in its own worker process (default: 2)")
    serve.add_argument("--api-docs", action="store_true",
                       help="serve Swagger UI at /api/docs (its script comes from a CDN, outside the CSP; default: off)")
    serve.add_argument("--insecure-cookies", action="store_true",
                       help="send cookies over plain HTTP to hosts other than localhost (testing only)")
    serve.add_argument("--proxy-headers", action="store_true", help="trust X-Forwarded-For from a reverse proxy")
    serve.set_defaults(run=_serve)

    serve_user = commands.add_parser("serve-user", help="create a service account (password from a prompt or stdin)")
    serve_user.add_argument("username")
    serve_user.add_argument("--role", choices=("clinician", "reviewer"), default="clinician")
    serve_user.add_argument("--data-dir", default="serve_data", help="(default: serve_data)")
    serve_user.add_argument("--db", help="SQLAlchemy URL (default: SQLite in --data-dir)")
    serve_user.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    serve_user.set_defaults(run=_serve_user)

    retrain = commands.add_parser("retrain", help="S2: fine-tune on reviewed cases + replay; promote only if no forgetting")
    retrain.add_argument("run_dir", help="the serving model's run folder")
    retrain.add_argument("--feedback", required=True, help="the service's database URL, or a feedback manifest CSV")
    retrain.add_argument("--data-dir", help="the service's data folder (with a database URL)")
    retrain.add_argument("--replay", required=True, help="original training data (manifest or class folders)")
    retrain.add_argument("--held-out", required=True, help="original held-out set (manifest or class folders)")
    retrain.add_argument("--out", required=True, help="the new run folder (new model version)")
    retrain.add_argument("--margin", type=float, default=0.02, help="held-out accuracy it may lose (default: 0.02)")
    retrain.add_argument("--epochs", type=int, default=5, help="(default: 5)")
    retrain.add_argument("--lr", type=float, help="(default: the run's learning rate / 10)")
    retrain.add_argument("--replay-ratio", type=float, default=2.0, help="replayed items per feedback case (default: 2)")
    retrain.add_argument("--current", help="symbolic link to point at the new run when it is promoted")
    retrain.add_argument("--seed", type=int, default=0)
    retrain.add_argument("--progress", action="store_true", help="per-epoch progress")
    retrain.set_defaults(run=_retrain)
