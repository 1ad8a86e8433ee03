"""A batch's and a chunk's work files, read and written typed (`service.contracts`), under the keys of
`service.keys`: the one place that knows which file holds what."""
from __future__ import annotations

from dataclasses import dataclass

from bbconnect.letters import Rejection
from bbconnect.service import keys
from bbconnect.service.contracts.intake import MANIFEST, REJECTIONS, ChunkFile, ManifestItem, SourceFile
from bbconnect.service.contracts.paper import ChunkOutcome
from bbconnect.service.contracts.rendering import RenderedFile
from bbconnect.service.contracts.routing import ROUTES, RouteEntry
from bbconnect.service.ports import Blobs


def read_chunk(work: Blobs, key: str) -> ChunkFile:
    """The chunk's `letters.json` (the map item's `chunk.key`)."""
    return ChunkFile.model_validate(work.get_json(key))


@dataclass(frozen=True)
class ChunkFiles:
    """The work files of one chunk (`batches/<batch id>/chunks/<index>/`)."""

    work: Blobs
    batch_id: str
    index: int

    @classmethod
    def of(cls, work: Blobs, chunk: ChunkFile) -> ChunkFiles:
        return cls(work, chunk.batch_id, chunk.index)

    def key(self, name: str) -> str:
        return keys.chunk(self.batch_id, self.index, name)

    def write_letters(self, chunk: ChunkFile) -> str:
        key = self.key(keys.LETTERS)
        self.work.put_json(key, chunk.dump())
        return key

    def routes(self) -> dict[str, RouteEntry] | None:
        found = self.work.get_json_or_none(self.key(keys.ROUTES))
        return None if found is None else ROUTES.validate_python(found)

    def write_routes(self, routes: dict[str, RouteEntry]) -> None:
        self.work.put_json(self.key(keys.ROUTES), {reference: entry.dump() for reference, entry in routes.items()})

    def rendered(self) -> RenderedFile | None:
        found = self.work.get_json_or_none(self.key(keys.RENDERED))
        return None if found is None else RenderedFile.model_validate(found)

    def write_rendered(self, rendered: RenderedFile) -> None:
        self.work.put_json(self.key(keys.RENDERED), rendered.model_dump(mode="json"))

    def write_berichten(self, xml: bytes) -> None:
        self.work.put(self.key(keys.BERICHTEN), xml, "application/xml")

    def outcome(self) -> ChunkOutcome | None:
        found = self.work.get_json_or_none(self.key(keys.OUTCOME))
        return None if found is None else ChunkOutcome.model_validate(found)

    def write_outcome(self, outcome: ChunkOutcome) -> None:
        self.work.put_json(self.key(keys.OUTCOME), outcome.model_dump(mode="json"))


@dataclass(frozen=True)
class BatchFiles:
    """The work files of one batch (`batches/<batch id>/`)."""

    work: Blobs
    batch_id: str

    def manifest(self) -> list[ManifestItem] | None:
        found = self.work.get_json_or_none(keys.manifest(self.batch_id))
        return None if found is None else MANIFEST.validate_python(found)

    def write_manifest(self, manifest: list[ManifestItem]) -> str:
        key = keys.manifest(self.batch_id)
        self.work.put_json(key, [item.dump() for item in manifest])
        return key

    def source(self) -> SourceFile:
        return SourceFile.model_validate(self.work.get_json(keys.source(self.batch_id)))

    def write_source(self, source: SourceFile) -> None:
        self.work.put_json(keys.source(self.batch_id), source.dump())

    def rejections(self) -> list[Rejection]:
        return REJECTIONS.validate_python(self.work.get_json(keys.rejections(self.batch_id)))

    def write_rejections(self, rejections: list[Rejection]) -> None:
        self.work.put_json(keys.rejections(self.batch_id), [r.model_dump(mode="json") for r in rejections])
