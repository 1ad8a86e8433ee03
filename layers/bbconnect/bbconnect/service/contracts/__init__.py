"""What passes between the steps of a batch, typed: every state's input and output (wire-compatible with
`statemachine/batch.asl.json`: its JSONPaths name these fields), every message on the send queue and
every work file in S3. One module per step boundary, in the order a letter goes:

- `intake`: the dropped file (the S3 event on the intake queue), the execution's input, what Ingest
  answers, and the files it writes (`manifest.json`, each chunk's `letters.json`, `source.json`,
  `rejections.json`, the bad-file `error.json`);
- `routing`: what CheckSubscriptions answers, and `routes.json`;
- `rendering`: what Render answers, and `rendered.json`;
- `sending`: the send queue's messages, the Send task's output (`$.send`), one attempt and its outcome;
- `results`: what AwaitResult answers (`$.result`);
- `paper`: what Fallback answers, and `outcome.json`;
- `report`: what Finalize gets and answers.

They live in the service package, not the domain core: they are the wire formats of the deployment
(the state machine, the queues, the work bucket), and only the services and handlers use them.
Reading is lenient (unknown fields are ignored, so a file written by an earlier or later version
still reads); writing goes through `dump`, which leaves out what is not set (None), as the files and
states always did."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainSerializer

# A moment as the files and states have always written it: ISO 8601 with its offset (`+00:00`).
IsoDatetime = Annotated[datetime, PlainSerializer(lambda value: value.isoformat(), return_type=str, when_used="json")]


class Contract(BaseModel):
    model_config = ConfigDict(extra="ignore")

    def dump(self) -> dict[str, Any]:
        """As JSON goes on the wire: None fields left out."""
        return self.model_dump(mode="json", exclude_none=True)


class TaskError(Contract):
    """What a Catch puts at its ResultPath: the error's name and cause."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    Error: str = "error"
    Cause: str | None = None
