"""Init container of the seed Job: wait for MLflow and the model bucket, then fetch the market CSV.

The seed is an ordinary Job (not a hook), created together with MLflow and the object store, so it
waits here for what it needs instead of relying on hook ordering. The chart inlines this file as
`python -c` with the image's own Python (stdlib + boto3): the rendered Job is self-contained.
Every wait is bounded by WAIT_SECONDS; a failure exits non-zero and the Job retries.
"""

from __future__ import annotations

import hashlib
import os
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

DEADLINE = time.monotonic() + float(os.environ.get("WAIT_SECONDS", "900"))
CSV_PATH = Path(os.environ.get("CSV_PATH", "/data/btc.csv"))


def wait_for(what: str, check: Callable[[], object]) -> None:
    while True:
        try:
            check()
        except Exception as exc:  # any failure means "not yet" until the deadline
            if time.monotonic() > DEADLINE:
                raise SystemExit(f"gave up waiting for {what}: {exc}") from exc
            print(f"waiting for {what}: {exc}", flush=True)
            time.sleep(3)
        else:
            print(f"ready: {what}", flush=True)
            return


def mlflow_answers() -> None:
    url = os.environ["MLFLOW_TRACKING_URI"].rstrip("/") + "/health"
    with urllib.request.urlopen(url, timeout=5) as response:
        response.read()


def s3_keys() -> dict[str, str]:
    """The object-store keys, mounted as files (never environment variables) in SECRETS_DIR."""
    directory = Path(os.environ["SECRETS_DIR"])
    return {
        "aws_access_key_id": (directory / "AWS_ACCESS_KEY_ID").read_text().strip(),
        "aws_secret_access_key": (directory / "AWS_SECRET_ACCESS_KEY").read_text().strip(),
    }


def bucket_exists(bucket: str) -> Callable[[], object]:
    def check() -> object:
        import boto3
        from botocore.config import Config

        client = boto3.client(
            "s3",
            endpoint_url=os.environ["S3_ENDPOINT_URL"],
            region_name=os.environ.get("AWS_REGION", "us-east-1"),
            **s3_keys(),
            config=Config(s3={"addressing_style": "path"}, connect_timeout=5, read_timeout=20),
        )
        return client.head_bucket(Bucket=bucket)

    return check


def fetch_csv() -> None:
    url = os.environ["CSV_URL"]
    partial = CSV_PATH.with_suffix(".partial")
    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=30) as response, partial.open("wb") as out:
        while chunk := response.read(1 << 16):
            digest.update(chunk)
            out.write(chunk)
    expected = os.environ.get("CSV_SHA256", "").lower()
    if expected and digest.hexdigest() != expected:
        partial.unlink()
        raise SystemExit(f"{url}: sha256 {digest.hexdigest()} is not the expected {expected}")
    partial.replace(CSV_PATH)
    print(f"downloaded {url}: {CSV_PATH.stat().st_size} bytes, sha256 {digest.hexdigest()}", flush=True)


def main() -> None:
    wait_for("MLflow", mlflow_answers)
    bucket = os.environ.get("MLFLOW_BUCKET")
    if bucket:
        wait_for(f"bucket {bucket}", bucket_exists(bucket))
    if os.environ.get("CSV_URL"):
        wait_for(os.environ["CSV_URL"], fetch_csv)


main()
