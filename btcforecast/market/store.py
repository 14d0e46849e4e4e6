"""Where market data lives between runs: one Parquet object, in S3 or in a local file.

Every component reads the same object. Requests ask for ranges many times a second, so the whole
object is kept decoded in memory and range reads are slices of it; the cache is revalidated against
the object's ETag (S3) or mtime and size (local file) at most every ``check_interval`` seconds, so
a replacement written by another process is picked up soon without re-reading on every request.

Writes never damage the previous data: a local write goes to a temporary file in the same folder
and is moved over the old one with ``os.replace``; an S3 write goes to a temporary key, is verified,
then copied to the final key (a single atomic server-side operation) and the temporary key removed.
The provenance label (``csv:...``, ``exchange:...``, ``synthetic``) is stored in the Parquet
key-value metadata and restored on read.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import os
import tempfile
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from btcforecast.errors import InputError, Unavailable
from btcforecast.market.bars import (
    COLUMNS,
    INDEX_NAME,
    SOURCE_ATTR,
    SYNTHETIC,
    MarketDataError,
    validate_bars,
    with_source,
)
from btcforecast.settings import CoreSettings

SOURCE_METADATA_KEY = b"btcforecast.source"
DEFAULT_CHECK_INTERVAL = 5.0
_UNKNOWN_SOURCE = "unknown"


class MarketDataUnavailable(Unavailable):
    """The market data store (S3) cannot be reached or refuses us; services answer 503."""


class MarketDataNotFound(Unavailable):
    """The store holds no market data yet (nothing was imported): services cannot answer until it does."""


@dataclass(frozen=True)
class StoreInfo:
    """What the store holds, for logs, ``/health`` and the CLI."""

    uri: str
    exists: bool
    rows: int = 0
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None
    source: str | None = None

    @property
    def synthetic(self) -> bool:
        return self.source == SYNTHETIC


def to_parquet_bytes(df: pd.DataFrame) -> bytes:
    """Serialise canonical bars, with their source label in the key-value metadata."""
    frame = df.loc[:, list(COLUMNS)].copy()
    frame.attrs = {}
    table = pa.Table.from_pandas(frame, preserve_index=True)
    source = str(df.attrs.get(SOURCE_ATTR) or _UNKNOWN_SOURCE)
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), SOURCE_METADATA_KEY: source.encode()}
    )
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def from_parquet_bytes(data: bytes) -> pd.DataFrame:
    """Decode what :func:`to_parquet_bytes` wrote, restoring the UTC index and the source label."""
    table = pq.read_table(io.BytesIO(data))
    source = (table.schema.metadata or {}).get(SOURCE_METADATA_KEY, _UNKNOWN_SOURCE.encode()).decode()
    df = table.to_pandas()
    df.attrs = {}
    df.index = pd.DatetimeIndex(df.index).tz_convert("UTC").rename(INDEX_NAME)
    return with_source(df.astype("float64"), source)


class MarketStore(ABC):
    """One Parquet object of canonical bars, read through a revalidated in-memory cache."""

    uri: str

    def __init__(
        self, *, check_interval: float = DEFAULT_CHECK_INTERVAL, clock: Callable[[], float] = time.monotonic
    ):
        self.check_interval = check_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: pd.DataFrame | None = None
        self._version: str | None = None
        self._checked_at: float | None = None
        self.load_count = 0  # how many times the whole object was read; exposed for tests and metrics

    # What a backend provides.
    @abstractmethod
    def _version_token(self) -> str | None:
        """A token that changes whenever the object is replaced; None when there is no object."""

    @abstractmethod
    def _load(self) -> tuple[bytes, str]:
        """The whole object and its version token; raise MarketDataNotFound when there is none."""

    @abstractmethod
    def _replace(self, data: bytes) -> str:
        """Atomically replace the object with ``data``; return the new version token."""

    def exists(self) -> bool:
        """True when the store holds an object."""
        return self._version_token() is not None

    def read(self, start: Any = None, end: Any = None) -> pd.DataFrame:
        """Bars from ``start`` to ``end`` inclusive (either may be None); a copy the caller may change.

        Naive times mean UTC. Raises MarketDataNotFound when nothing was stored yet.
        """
        df = self._current()
        lo, hi = _utc_or_none(start), _utc_or_none(end)
        out = df.loc[lo:hi].copy() if lo is not None or hi is not None else df.copy()
        out.attrs = dict(df.attrs)
        return out

    def peek(self) -> pd.DataFrame | None:
        """The cached bars themselves if revalidated less than ``check_interval`` ago, else None.

        No I/O and never waits (None while another thread holds the cache): for a caller on an
        event loop that would otherwise hop to a thread on every request. Not a copy: do not change
        it. The same object comes back until the data is replaced, so identity tells a caller that
        what it derived from it is still current.
        """
        if not self._lock.acquire(blocking=False):
            return None
        try:
            fresh = self._checked_at is not None and self._clock() - self._checked_at < self.check_interval
            return self._cached if fresh else None
        finally:
            self._lock.release()

    def write(self, df: pd.DataFrame) -> None:
        """Validate ``df`` and replace the stored object with it atomically."""
        validate_bars(df)
        if SOURCE_ATTR not in df.attrs:
            raise MarketDataError("refusing to store bars without a source label (df.attrs['source'])")
        data = to_parquet_bytes(df)
        with self._lock:
            version = self._replace(data)
            self._cached = from_parquet_bytes(data)
            self._version = version
            self._checked_at = self._clock()

    def info(self) -> StoreInfo:
        """Rows, range and provenance of the stored data (exists=False when there is none)."""
        try:
            df = self._current()
        except MarketDataNotFound:
            return StoreInfo(uri=self.uri, exists=False)
        first = df.index[0] if len(df) else None
        last = df.index[-1] if len(df) else None
        return StoreInfo(self.uri, True, len(df), first, last, df.attrs.get(SOURCE_ATTR))

    def _current(self) -> pd.DataFrame:
        with self._lock:
            now = self._clock()
            fresh = self._checked_at is not None and now - self._checked_at < self.check_interval
            if self._cached is not None and fresh:
                return self._cached
            token = self._version_token()
            if token is None:
                self._cached, self._version = None, None
                raise MarketDataNotFound(f"no market data at {self.uri}; import or download some first")
            if self._cached is None or token != self._version:
                data, token = self._load()
                self._cached = from_parquet_bytes(data)
                self._version = token
                self.load_count += 1
            self._checked_at = now
            return self._cached


def _utc_or_none(value: Any) -> pd.Timestamp | None:
    if value is None:
        return None
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


class LocalParquetStore(MarketStore):
    """The embedded default: a Parquet file on local disk."""

    def __init__(self, path: str | Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = Path(path)
        self.uri = str(self.path)

    def _version_token(self) -> str | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return f"{st.st_mtime_ns}:{st.st_size}:{st.st_ino}"

    def _load(self) -> tuple[bytes, str]:
        try:
            with self.path.open("rb") as f:
                st = os.fstat(f.fileno())
                return f.read(), f"{st.st_mtime_ns}:{st.st_size}:{st.st_ino}"
        except FileNotFoundError as e:
            raise MarketDataNotFound(f"no market data at {self.path}") from e

    def _replace(self, data: bytes) -> str:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        token = self._version_token()
        assert token is not None
        return token


class S3ParquetStore(MarketStore):
    """A Parquet object in S3 (MinIO in a cluster, SeaweedFS locally), reached with boto3."""

    def __init__(self, bucket: str, key: str, client: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bucket, self.key, self.client = bucket, key, client
        self.uri = f"s3://{bucket}/{key}"

    def _call(self, what: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        """Run one S3 call, turning "cannot reach / refused" into MarketDataUnavailable."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(**kwargs)
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            if code in {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}:
                raise
            if status >= 500 or status in (401, 403) or code in {"AccessDenied", "InvalidAccessKeyId"}:
                raise MarketDataUnavailable(f"S3 {what} {self.uri} failed: {code or status}") from e
            raise
        except BotoCoreError as e:
            raise MarketDataUnavailable(f"S3 {what} {self.uri}: cannot reach the object store: {e}") from e

    @staticmethod
    def _is_missing(e: Exception) -> bool:
        from botocore.exceptions import ClientError

        if not isinstance(e, ClientError):
            return False
        return str(e.response.get("Error", {}).get("Code", "")) in {
            "404",
            "NoSuchKey",
            "NotFound",
            "NoSuchBucket",
        }

    def _version_token(self) -> str | None:
        try:
            head = self._call("head", self.client.head_object, Bucket=self.bucket, Key=self.key)
        except Exception as e:
            if self._is_missing(e):
                return None
            raise
        return str(head["ETag"])

    def _load(self) -> tuple[bytes, str]:
        try:
            obj = self._call("get", self.client.get_object, Bucket=self.bucket, Key=self.key)
            return obj["Body"].read(), str(obj["ETag"])
        except Exception as e:
            if self._is_missing(e):
                raise MarketDataNotFound(f"no market data at {self.uri}") from e
            raise

    def _ensure_bucket(self) -> None:
        try:
            self._call("head bucket", self.client.head_bucket, Bucket=self.bucket)
        except Exception as e:
            if not self._is_missing(e):
                raise
            self._call("create bucket", self.client.create_bucket, Bucket=self.bucket)

    def _replace(self, data: bytes) -> str:
        self._ensure_bucket()
        tmp_key = f"{self.key}.tmp-{uuid.uuid4().hex}"
        md5 = hashlib.md5(data, usedforsecurity=False)
        try:
            # Content-MD5 makes the server reject a body damaged in transit.
            self._call(
                "put",
                self.client.put_object,
                Bucket=self.bucket,
                Key=tmp_key,
                Body=data,
                ContentMD5=base64.b64encode(md5.digest()).decode(),
            )
            head = self._call("verify", self.client.head_object, Bucket=self.bucket, Key=tmp_key)
            if int(head["ContentLength"]) != len(data):
                raise MarketDataUnavailable(
                    f"S3 verify {self.uri}: stored {head['ContentLength']} bytes, expected {len(data)}"
                )
            self._call(
                "copy",
                self.client.copy_object,
                Bucket=self.bucket,
                Key=self.key,
                CopySource={"Bucket": self.bucket, "Key": tmp_key},
            )
        finally:
            with contextlib.suppress(Exception):
                self.client.delete_object(Bucket=self.bucket, Key=tmp_key)
        token = self._version_token()
        if token is None:
            raise MarketDataUnavailable(f"S3 write {self.uri}: the object is missing right after the copy")
        return token


def s3_client(settings: CoreSettings) -> Any:
    """A boto3 S3 client from settings: endpoint, keys, region, path-style, short timeouts."""
    import boto3
    from botocore.config import Config

    secret = settings.aws_secret_access_key.get_secret_value() if settings.aws_secret_access_key else None
    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=secret,
        region_name=settings.aws_region,
        config=Config(
            s3={"addressing_style": "path"},
            connect_timeout=3,
            read_timeout=15,
            retries={"max_attempts": 2, "mode": "standard"},
        ),
    )


def open_store(
    target: CoreSettings | str | Path,
    settings: CoreSettings | None = None,
    *,
    check_interval: float = DEFAULT_CHECK_INTERVAL,
    client: Any = None,
) -> MarketStore:
    """The store for ``settings.resolved_market_data_uri``, or for an explicit URI or path.

    ``s3://bucket/key`` gives an :class:`S3ParquetStore` whose boto3 client is built from
    ``settings`` (or ``target`` when it is the settings) unless ``client`` is given; anything else
    is a local path.
    """
    if isinstance(target, CoreSettings):
        settings = settings or target
        uri = target.resolved_market_data_uri
    else:
        uri = str(target)
    if uri.startswith("s3://"):
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        if not bucket or not key:
            raise InputError(f"market data URI {uri!r} must look like s3://bucket/key")
        if client is None:
            if settings is None:
                raise InputError(f"{uri}: S3 settings (endpoint, keys) are needed to open an S3 store")
            client = s3_client(settings)
        return S3ParquetStore(bucket, key, client, check_interval=check_interval)
    return LocalParquetStore(uri.removeprefix("file://"), check_interval=check_interval)
