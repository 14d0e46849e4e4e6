"""Start a program that reads its secrets only from its environment, with them taken from files.

MLflow's server takes its S3 keys and its database URL from environment variables alone. The chart
mounts them as files (a pod spec that names no secret in `env` keeps them out of `kubectl describe`,
crash reports and every child the kubelet starts); this wrapper, inlined as `python -c`, puts each
file of SECRETS_DIR into the environment under its own name and then replaces itself with the
program: `python -c <this> mlflow server ...`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def secrets_from(directory: Path) -> dict[str, str]:
    """Each regular file whose name is a variable name (not the volume's `..data` links) -> its text."""
    return {
        path.name: path.read_text().strip()
        for path in sorted(directory.iterdir())
        if path.is_file() and path.name.isidentifier()
    }


def main() -> None:
    os.environ.update(secrets_from(Path(os.environ["SECRETS_DIR"])))
    os.execvp(sys.argv[1], sys.argv[1:])


main()
