"""GCS staging; its own module so the embedded default never imports the Google libraries."""

from __future__ import annotations

from typing import BinaryIO

from dagster_gcp import GCSResource
from pydantic import Field, PrivateAttr

from optimizely_assets.resources.staging import CHUNK_BYTES, StagedObject, Staging


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
            etag = (blob.metadata or {}).get("source_etag")
            out[key] = StagedObject(key, int(blob.size or 0), etag)
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
