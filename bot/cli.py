"""The `saveyourlife` command: predict, ask, chat, bot, serve, train, evaluate."""

from __future__ import annotations

import argparse
import sys

TRAIN_EXTRA_HINT = ("training needs TensorFlow, which is in the `train` extra:\n"
                    "    .venv/bin/pip install -e '.[train]'")


def _parser():
    from .settings import Settings

    settings = Settings()
    parser = argparse.ArgumentParser(prog="saveyourlife", description="Brain-MRI screening bot (not a medical device).")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("start", help="run the bot if TELEGRAM_BOT_TOKEN is set, else the console chat (default)")

    predict = sub.add_parser("predict", help="classify image files: MRI? tumour? which type?")
    predict.add_argument("files", nargs="+")
    predict.add_argument("--json", action="store_true", help="one JSON object per line per file")
    predict.add_argument("--heatmap", metavar="DIR", help="write an occlusion heatmap PNG per tumour image to DIR")

    ask = sub.add_parser("ask", help="answer questions about brain tumours")
    ask.add_argument("text", nargs="*", help="the question (default: one per line on stdin)")
    ask.add_argument("--json", action="store_true")
    ask.add_argument("--lang", choices=("es", "en"))

    sub.add_parser("chat", help="console chat through the same router as the bot")
    sub.add_parser("bot", help="run the Telegram bot (polling, or webhook when WEBHOOK_URL is set)")
    serve = sub.add_parser("serve", help="webhook server on uvicorn/Starlette, N worker processes (needs WEBHOOK_SECRET)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workers", type=int, default=1, help="worker processes, each with its own models (default 1)")

    train = sub.add_parser("train", help="train models and export .tflite (needs the train extra)")
    evaluate = sub.add_parser("evaluate", help="evaluate the exported models on the test split (needs the train extra)")
    try:
        from training.cli import add_arguments
    except ImportError:
        for p in (train, evaluate):
            p.add_argument("rest", nargs=argparse.REMAINDER)
    else:
        add_arguments(train, evaluate, settings.models_dir)
    return parser, settings


def main(argv: list[str] | None = None) -> int:
    """Run one command; a setup problem (models folder, knowledge file, database URL) is one line and exit code 2."""
    from pydantic import ValidationError

    from inference.errors import ConfigurationError

    try:
        return _run(argv)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except ValidationError as exc:  # a setting from the environment or .env
        first = exc.errors()[0]
        print(f"error: setting {'.'.join(map(str, first['loc']))}: {first['msg']}", file=sys.stderr)
    return 2


def _run(argv: list[str] | None) -> int:
    parser, settings = _parser()
    args = parser.parse_args(argv)
    command = args.command or "start"
    if command in ("train", "evaluate"):
        try:
            import tensorflow  # noqa: F401

            from training import cli as training_cli
        except ImportError:
            print(TRAIN_EXTRA_HINT, file=sys.stderr)
            return 2
        return training_cli.run_train(args) if command == "train" else training_cli.run_evaluate(args)
    if command == "predict":
        from .commands.predict import run_predict

        return run_predict(args, settings)
    if command == "ask":
        from .commands.ask import run_ask

        return run_ask(args, settings)
    if command == "chat" or (command == "start" and not settings.telegram_bot_token):
        from .console import run_console

        return run_console(settings)
    if command == "serve":
        from .serve import run_serve

        return run_serve(settings, args.host, args.port, args.workers)
    from .app import run_bot

    return run_bot(settings)


if __name__ == "__main__":
    sys.exit(main())
