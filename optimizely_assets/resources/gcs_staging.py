"""GCS staging; its own module so the embedded default never imports the Google libraries."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from dagster_gcp import GCSResource
from pydantic import Field, PrivateAttr

from optimizely_assets.resources.staging import (
    CHUNK_BYTES,
    StagedObject,
    Staging,
    Suppressed,
    decode_suppressed,
    encode_suppressed,
)

_SUPPRESSED_BLOBS = "_suppressed/"  # per day: the record of a file scrubbed to nothing (deleted)


class GCSStaging(Staging):
    """A GCS bucket; BigQuery load jobs read the staged ``gs://`` URIs."""

    gcs: GCSResource
    bucket: str = Field(description="Staging bucket, in the BigQuery dataset's location.")
    prefix: str = "optimizely"

    _client = PrivateAttr(default=None)

    @property
    def client(self):
        if self._client is None:
            self._client = self.gcs.get_client()
        return self._client

    def _name(self, key: str) -> str:
        return f"{self.prefix.strip('/')}/{key}" if self.prefix else key

    def uri(self, key: str) -> str:
        return f"gs://{self.bucket}/{self._name(key)}"

    def existing(self, prefix: str) -> dict[str, StagedObject]:
        out: dict[str, StagedObject] = {}
        strip = len(self._name(""))
        for blob in self.client.list_blobs(self.bucket, prefix=self._name(prefix)):
            key = blob.name[strip:]
            meta = blob.metadata or {}
            if key.startswith(_SUPPRESSED_BLOBS) or "/_suppressed/" in key:
                continue
            out[key] = StagedObject(key, int(blob.size or 0), meta.get("source_etag"), meta.get("source_key"))
        return out

    def put(self, key: str, stream: BinaryIO, size: int, source_etag: str, source_key: str) -> None:
        blob = self.client.bucket(self.bucket).blob(self._name(key), chunk_size=CHUNK_BYTES)
        blob.metadata = {"source_etag": source_etag, "source_key": source_key}
        # Resumable upload in 8 MiB chunks straight from the S3 body: memory stays flat.
        blob.upload_from_file(stream, size=size, content_type="application/octet-stream")

    def read(self, key: str) -> bytes:
        return self.client.bucket(self.bucket).blob(self._name(key)).download_as_bytes()

    def delete(self, keys: list[str]) -> None:
        bucket = self.client.bucket(self.bucket)
        for key in keys:
            blob = bucket.blob(self._name(key))
            if blob.exists():
                blob.delete()

    def commit_day(self, prefix: str, sources: dict[str, tuple[str, str]]) -> None:
        """Nothing to do: each GCS object carries its source ETag and key in its own metadata."""

    def fetch(self, key: str, dest: Path) -> Path:
        self.client.bucket(self.bucket).blob(self._name(key)).download_to_filename(str(dest))
        return dest

    def replace(self, key: str, path: Path, obj: StagedObject, suppressed: Suppressed) -> None:
        bucket = self.client.bucket(self.bucket)
        meta = {
            "source_etag": obj.source_etag or "",
            "source_key": obj.source_key or "",
            "suppressed": encode_suppressed(suppressed),
        }
        if suppressed.deleted:
            # Nothing left: the object goes; a marker beside the day's files keeps the count.
            day, name = key.rsplit("/", 1)
            marker = bucket.blob(self._name(f"{day}/_suppressed/{name}"))
            marker.metadata = meta
            marker.upload_from_string(b"", content_type="application/octet-stream")
            blob = bucket.blob(self._name(key))
            if blob.exists():
                blob.delete()
            return
        blob = bucket.blob(self._name(key), chunk_size=CHUNK_BYTES)
        blob.metadata = meta
        blob.upload_from_filename(str(path), content_type="application/octet-stream")

    def suppressed(self, prefix: str) -> dict[str, Suppressed]:
        out: dict[str, Suppressed] = {}
        strip = len(self._name(""))
        for blob in self.client.list_blobs(self.bucket, prefix=self._name(prefix)):
            text = (blob.metadata or {}).get("suppressed")
            if text:
                out[blob.name[strip:].replace("/_suppressed/", "/")] = decode_suppressed(text)
        return out
