"""The buckets Job: create the object-store buckets the release uses, when they are missing.

An ordinary Job (not a hook), so `helm install --wait` never waits on it before it may run. It uses
the app image's own Python and boto3 (no `mc`, no object-store image), so it works against the
bundled MinIO and any external S3 endpoint alike. Idempotent: existing buckets are left alone.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

DEADLINE = time.monotonic() + float(os.environ.get("WAIT_SECONDS", "600"))
REGION = os.environ.get("AWS_REGION", "us-east-1")


def s3_keys() -> dict[str, str]:
    """The object-store keys, mounted as files (never environment variables) in SECRETS_DIR."""
    directory = Path(os.environ["SECRETS_DIR"])
    return {
        "aws_access_key_id": (directory / "AWS_ACCESS_KEY_ID").read_text().strip(),
        "aws_secret_access_key": (directory / "AWS_SECRET_ACCESS_KEY").read_text().strip(),
    }


def ensure(client: Any, bucket: str) -> str:
    try:
        client.head_bucket(Bucket=bucket)
        return "exists"
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in {"404", "NoSuchBucket", "NotFound"}:
            raise
    extra = {} if REGION == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": REGION}}
    client.create_bucket(Bucket=bucket, **extra)
    return "created"


def main() -> None:
    client = boto3.client(
        "s3",
        endpoint_url=os.environ["S3_ENDPOINT_URL"],
        region_name=REGION,
        **s3_keys(),
        config=Config(s3={"addressing_style": "path"}, connect_timeout=5, read_timeout=20),
    )
    for bucket in os.environ["BUCKETS"].split():
        while True:
            try:
                print(f"bucket {bucket}: {ensure(client, bucket)}", flush=True)
                break
            except Exception as exc:  # the store may still be starting: retry until the deadline
                if time.monotonic() > DEADLINE:
                    raise SystemExit(f"bucket {bucket}: gave up: {exc}") from exc
                print(f"bucket {bucket}: waiting for {os.environ['S3_ENDPOINT_URL']}: {exc}", flush=True)
                time.sleep(3)


main()
