"""Print-and-post providers behind `bbconnect.printing.PrintProvider`.

`FileDropPrintProvider` drops each job in the tenant's outbox, where the provider (or an operator)
collects it: `<tenant>/print/<job>.pdf` and `<tenant>/print/<job>-manifest.csv`. The manifest is
written last, so a collector that waits for the manifest never sees half a job. Dropping the same
job again writes the same keys: a retried submit does not make a second job.
"""
from __future__ import annotations

from bbconnect.printing import PrintJob, PrintProvider
from bbconnect.service import keys
from bbconnect.service.ports import Blobs

__all__ = ["FileDropPrintProvider", "PrintProvider"]


class FileDropPrintProvider:
    def __init__(self, outbox: Blobs):
        self._outbox = outbox

    @staticmethod
    def keys_for(job: PrintJob) -> tuple[str, str]:
        """Where the job's PDF and manifest go in the outbox."""
        return keys.print_job(job.tenant or "", job.name)

    def submit(self, job: PrintJob, merged_pdf: bytes, manifest: bytes) -> str:
        if not job.tenant:
            raise ValueError(f"print job {job.name!r} has no tenant to drop it for")
        pdf_key, manifest_key = self.keys_for(job)
        self._outbox.put(pdf_key, merged_pdf, "application/pdf", letter_content=True)
        self._outbox.put(manifest_key, manifest, "text/csv", letter_content=True)
        return f"s3://{self._outbox.bucket}/{pdf_key}"
