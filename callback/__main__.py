"""`python -m callback [--host H] [--port P]`: run the receiver with uvicorn (127.0.0.1:9001 by default)."""

from __future__ import annotations

import argparse

import uvicorn

from callback.main import create_app
from callback.settings import get_settings


def main(argv: list[str] | None = None) -> None:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m callback", description=__doc__)
    parser.add_argument("--host", default=settings.callback_host)
    parser.add_argument("--port", type=int, default=settings.callback_port)
    args = parser.parse_args(argv)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
