"""S3 objects as bytes and JSON."""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

# The tag the outbox lifecycle rule for letter content matches (template.yaml, OutboxBucket).
LETTER_CONTENT_TAG = "bbconnect-letter-content"


def _version(version_id: str | None) -> dict[str, str]:
    return {"VersionId": version_id} if version_id else {}


class JsonBlobs(ABC):
    """JSON on top of a store's bytes: one way to read and write it, for S3 and for the tests' fake."""

    @abstractmethod
    def get(self, key: str, *, version_id: str | None = None) -> bytes: ...

    @abstractmethod
    def get_or_none(self, key: str) -> bytes | None: ...

    @abstractmethod
    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream", *, letter_content: bool = False,
            locked_until: datetime | None = None) -> None: ...

    def get_json(self, key: str) -> Any:
        return json.loads(self.get(key))

    def get_json_or_none(self, key: str) -> Any | None:
        data = self.get_or_none(key)
        return None if data is None else json.loads(data)

    def put_json(self, key: str, value: Any) -> None:
        self.put(key, json.dumps(value, ensure_ascii=False, default=str).encode(), "application/json")


class BlobStore(JsonBlobs):
    def __init__(self, s3, bucket: str):
        self._s3 = s3
        self.bucket = bucket

    def get(self, key: str, *, version_id: str | None = None) -> bytes:
        """The object's bytes; with `version_id`, that version's (a versioned bucket keeps each drop)."""
        return self._s3.get_object(Bucket=self.bucket, Key=key, **_version(version_id))["Body"].read()

    def stream(self, key: str, piece_bytes: int = 4 * 1024 * 1024, *, version_id: str | None = None):
        """The object's bytes in pieces of at most `piece_bytes`, as S3 sends them (never whole)."""
        body = self._s3.get_object(Bucket=self.bucket, Key=key, **_version(version_id))["Body"]
        try:
            yield from body.iter_chunks(piece_bytes)
        finally:
            body.close()

    def get_or_none(self, key: str) -> bytes | None:
        try:
            return self.get(key)
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream", *, letter_content: bool = False,
            locked_until: datetime | None = None) -> None:
        """`letter_content`: the object holds letters (PDFs, addresses). It is tagged so the bucket's
        lifecycle deletes it after the retention period, while reports and proofs stay as long as
        the audit trail. `locked_until`: the object is evidence, written under S3 Object Lock in
        compliance mode: no one can delete or overwrite this version before that time."""
        extra: dict[str, Any] = {"Tagging": f"{LETTER_CONTENT_TAG}=true"} if letter_content else {}
        if locked_until is not None:
            extra.update(ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=locked_until)
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, **extra)

    def put_if_absent(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> bool:
        """Write the object only if there is none under the key (S3 conditional write). False when
        one is there already, or another writer won the race: the way to claim something once."""
        try:
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, IfNoneMatch="*")
            return True
        except ClientError as error:
            if error.response["Error"]["Code"] in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
                return False
            raise

    def delete(self, key: str) -> None:
        """Remove the object; removing one that is not there is no error."""
        self._s3.delete_object(Bucket=self.bucket, Key=key)

    def list_keys(self, prefix: str) -> list[str]:
        """The keys under the prefix, in S3's (lexicographic) order."""
        keys: list[str] = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return keys

    def head(self, key: str, *, version_id: str | None = None) -> dict | None:
        try:
            return self._s3.head_object(Bucket=self.bucket, Key=key, **_version(version_id))
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404", "NotFound", "NoSuchVersion"):
                return None
            raise
