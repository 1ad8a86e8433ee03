"""S3 objects as bytes and JSON."""
from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError


class BlobStore:
    def __init__(self, s3, bucket: str):
        self._s3 = s3
        self.bucket = bucket

    def get(self, key: str) -> bytes:
        return self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def get_or_none(self, key: str) -> bytes | None:
        try:
            return self.get(key)
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def get_json(self, key: str) -> Any:
        return json.loads(self.get(key))

    def get_json_or_none(self, key: str) -> Any | None:
        data = self.get_or_none(key)
        return None if data is None else json.loads(data)

    def put_json(self, key: str, value: Any) -> None:
        self.put(key, json.dumps(value, ensure_ascii=False, default=str).encode(), "application/json")

    def head(self, key: str) -> dict | None:
        try:
            return self._s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
