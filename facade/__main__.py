"""`python -m facade [--host H] [--port P]`: run the REST facade with uvicorn (127.0.0.1:8000 by default)."""

from __future__ import annotations

import argparse
import logging

import uvicorn

from facade.main import create_app
from facade.settings import get_settings


def main(argv: list[str] | None = None) -> None:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m facade", description=__doc__)
    parser.add_argument("--host", default=settings.facade_host)
    parser.add_argument("--port", type=int, default=settings.facade_port)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
