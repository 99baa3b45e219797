"""Optimizely's S3 bucket as the source; its own module so the embedded default never loads boto3."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError
from dagster_aws.s3 import S3Resource
from pydantic import Field, PrivateAttr

from optimizely_assets.e3.layout import account_prefix
from optimizely_assets.e3.parquet_footer import Footer, read_footer
from optimizely_assets.resources.optimizely_auth import OptimizelyCredentialsResource
from optimizely_assets.resources.source import ExportSource, SourceObject


class S3ExportSource(ExportSource):
    """Optimizely's bucket, with temporary credentials from a PAT or with plain AWS credentials.

    With ``optimizely`` set, bucket and account come from the API's ``s3Path`` and the
    credentials refresh themselves before they expire (mid-copy too). Without it, ``s3``
    (dagster-aws) supplies the credentials: keys, a profile, or the ambient role.
    """

    s3: S3Resource = Field(default_factory=S3Resource)
    optimizely: OptimizelyCredentialsResource | None = None
    bucket: str = "optimizely-events-data"
    account_id: str | None = Field(default=None, description="Required unless optimizely is set.")
    max_attempts: int = Field(default=8, description="botocore retries for 5xx and throttling.")

    _client = PrivateAttr(default=None)
    _bucket = PrivateAttr(default=None)
    _root = PrivateAttr(default=None)

    def _connect(self) -> None:
        if self._client is not None:
            return
        config = Config(
            signature_version="s3v4",
            retries={"max_attempts": self.max_attempts, "mode": "standard"},
            max_pool_connections=32,
        )
        region = self.s3.region_name or "us-east-1"
        if self.optimizely is not None:
            creds, first = self.optimizely.refreshable()
            session = botocore.session.get_session()
            session._credentials = creds  # botocore has no public setter for refreshable creds
            client = boto3.Session(botocore_session=session).client(
                "s3", region_name=region, endpoint_url=self.s3.endpoint_url, config=config
            )
            self._bucket, self._root = first.bucket, first.prefix
        else:
            if not self.account_id:
                raise ValueError("S3 source needs OPTIMIZELY_ACCOUNT_ID when OPTIMIZELY_PAT is not set")
            session = boto3.Session(
                aws_access_key_id=self.s3.aws_access_key_id,
                aws_secret_access_key=self.s3.aws_secret_access_key,
                aws_session_token=self.s3.aws_session_token,
                profile_name=self.s3.profile_name,
            )
            client = session.client(
                "s3", region_name=region, endpoint_url=self.s3.endpoint_url, config=config
            )
            self._bucket, self._root = self.bucket, account_prefix(self.account_id)
        self._client = client

    @property
    def client(self):
        self._connect()
        return self._client

    @property
    def root(self) -> str:
        self._connect()
        return self._root

    @property
    def bucket_name(self) -> str:
        self._connect()
        return self._bucket

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket_name}/{key}"

    def head(self, key: str) -> SourceObject | None:
        try:
            r = self.client.head_object(Bucket=self.bucket_name, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return SourceObject(key, r["ContentLength"], r["ETag"].strip('"'), r["LastModified"])

    def list_objects(self, prefix: str) -> list[SourceObject]:
        out: list[SourceObject] = []
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket_name, Prefix=prefix)
        for page in pages:
            for o in page.get("Contents", []):
                out.append(SourceObject(o["Key"], o["Size"], o["ETag"].strip('"'), o["LastModified"]))
        return out

    def list_days(self, type_prefix: str) -> list[str]:
        prefix = type_prefix.rstrip("/") + "/date="
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket_name, Prefix=prefix, Delimiter="/"
        )
        return sorted(
            cp["Prefix"][len(prefix) :].rstrip("/") for page in pages for cp in page.get("CommonPrefixes", [])
        )

    def footer(self, obj: SourceObject, value_columns: tuple[str, ...] = ()) -> Footer:
        def fetch(start: int, end: int) -> bytes:
            r = self.client.get_object(
                Bucket=self.bucket_name, Key=obj.key, Range=f"bytes={start}-{end}", IfMatch=obj.etag
            )
            return r["Body"].read()

        return read_footer(obj.size, fetch, self.uri(obj.key), value_columns)

    @contextmanager
    def open_stream(self, key: str) -> Iterator[BinaryIO]:
        body = self.client.get_object(Bucket=self.bucket_name, Key=key)["Body"]
        try:
            yield body
        finally:
            body.close()
