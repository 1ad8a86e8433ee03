"""A letter's status and history, kept as a ledger of two kinds of record (no boto3 here).

Writing every step of every letter as its own record costs a write per letter per step: five for a
delivered letter, which at 100,000 letters a run is most of the bill and most of the work. So:

- the **letter record** is written once, when the letter is accepted (its reference, batch, line,
  BerichtID, chunk). It changes again only for the rare moves of one letter alone: a processing
  report that arrives late (`settled`), or an operator's resend (the letter moves to a new batch);
- the **chunk record** (one per GLOBE batch, up to 1,000 letters) carries what happens to the chunk's
  letters together: the steps (routed, rendered, sent) with their times, each letter's route, and
  finally each letter's final state (`outcome`), written once.

`compose` joins the two into what a letter's single record used to say: its status, reason, route
and timestamped history. Statuses still only move forward: the chunk's steps are written on the
rank of the step, its outcome only once, and a letter's own record wins only when it was settled
after the chunk.
"""
from __future__ import annotations

from collections.abc import Iterable

from bbconnect.status import RANK, Route, Status

ROUTE_CODES = {Route.DIGITAL.value: "d", Route.PAPER.value: "p", Route.BOTH.value: "b"}
ROUTE_OF_CODE = {code: route for route, code in ROUTE_CODES.items()}
STATUS_CODES = {Status.DELIVERED.value: "D", Status.PAPER.value: "P", Status.FAILED.value: "F"}
STATUS_OF_CODE = {code: status for status, code in STATUS_CODES.items()}


def letter_key(tenant: str, reference: str) -> str:
    return f"{tenant}#{reference}"


def rejected_key(tenant: str, batch_id: str, line: int) -> str:
    """A rejected row may have no (or a duplicate) reference: it is kept under its place in the file."""
    return f"{tenant}#rejected#{batch_id}#{line}"


def chunk_key(tenant: str, batch_id: str, index: int) -> str:
    return f"{tenant}#chunk#{batch_id}#{int(index):05d}"


# ------------------------------------------------------------------ the chunk's letters, compactly
# A chunk record lists its letters' references once (`references`); their routes and final states
# are kept in that order: the routes as one string (a letter a letter), the outcome as a list of
# short codes. A 1,000-letter chunk record stays a few tens of KB, so its writes stay cheap.
def encode_routes(references: list[str], routes: dict[str, str]) -> str:
    return "".join(ROUTE_CODES.get(routes.get(reference, ""), "-") for reference in references)


def encode_outcome(entries: list[dict], references: list[str] | None = None) -> tuple[list[str], list[str]]:
    """Per letter (in the order of `references`, else of `entries`) a short code `S.r.c.p` (status
    letter, index of the reason and of Logius' code in the shared list or -1, paper copy 0/1), and
    that list. 1,000 letters stay far below DynamoDB's 400 KB item limit however long the reasons
    are: a reason is stored once per chunk. A letter without an entry gets "-"."""
    texts: list[str] = []
    position: dict[str, int] = {}

    def index_of(text: str | None) -> int:
        if not text:
            return -1
        if text not in position:
            position[text] = len(texts)
            texts.append(text)
        return position[text]

    by_reference = {
        entry["reference"]: f"{STATUS_CODES[entry['status']]}.{index_of(entry.get('reason'))}."
                            f"{index_of(entry.get('code'))}.{1 if entry.get('paper') else 0}"
        for entry in entries
    }
    order = references if references is not None else [entry["reference"] for entry in entries]
    return [by_reference.get(reference, "-") for reference in order], texts


def decode_outcome(code: str, texts: list[str]) -> dict:
    status, reason, logius_code, paper = code.split(".")
    return {"status": STATUS_OF_CODE[status], "reason": texts[int(reason)] if int(reason) >= 0 else None,
            "code": texts[int(logius_code)] if int(logius_code) >= 0 else None, "paper_copy": paper == "1"}


# ------------------------------------------------------------------ one letter, composed
def _entry(at: str | None, status: str, detail: str | None = None, reason: str | None = None) -> dict:
    entry = {"at": at, "status": status}
    if reason:
        entry["reason"] = reason
    if detail:
        entry["detail"] = detail
    return entry


def compose(letter: dict, chunk: dict | None, positions: dict[str, int] | None = None) -> dict:
    """The letter as one record: the fields of its letter record, plus status, reason, route,
    route_source, paper_copy, code, globe_batch_id and a history in time order. `positions`: the
    chunk's references by place (`positions_of`), when many letters of one chunk are composed."""
    view = {key: value for key, value in letter.items() if key not in ("history", "rank", "kind")}
    own_history = list(letter.get("history") or [])
    if letter.get("status") == Status.REJECTED.value or letter.get("kind") == "rejected":
        return {**view, "history": own_history}
    history = [entry for entry in own_history if not entry.get("settled")]
    status, reason = Status.ACCEPTED.value, None
    position = _position_in_chunk(letter, chunk, positions)
    if chunk is not None and position is not None:
        status, reason = _compose_chunk(view, history, chunk, letter["reference"], position)
    settled = [entry for entry in own_history if entry.get("settled")]
    if letter.get("settled") and settled:
        status, reason = letter["status"], letter.get("reason")
        view["updated_at"] = settled[-1]["at"]
    history.extend(settled)
    history.sort(key=lambda entry: (entry.get("at") or "", RANK.get(Status(entry["status"]), 0)))
    view.update(status=status, reason=reason, history=history)
    return view


def _position_in_chunk(letter: dict, chunk: dict | None, positions: dict[str, int] | None) -> int | None:
    """The letter's place in `chunk` when that is the chunk the letter belongs to, else None."""
    if chunk is None or chunk.get("batch_id") != letter.get("batch_id"):
        return None
    if int(chunk.get("chunk", -1)) != int(letter.get("chunk", -2)):
        return None
    return (positions if positions is not None else positions_of(chunk)).get(letter["reference"])


def _compose_chunk(view: dict, history: list[dict], chunk: dict, reference: str, position: int) -> tuple[str, str | None]:
    """What the chunk record says of the letter at `position`: its route (into `view`), its steps
    (onto `history`) and its final state. Returns the letter's status and reason so far."""
    routes = chunk.get("routes") or ""
    route = ROUTE_OF_CODE.get(routes[position]) if position < len(routes) else None
    # A chunk that sent nothing to Logius (all its letters on paper) has no GLOBE batch to name.
    view.update(route=route, route_source=chunk.get("route_source") if route else None,
                globe_batch_id=chunk.get("globe_batch_id") if chunk.get("globe_batch_sent", True) else None)
    steps = _chunk_steps(chunk, route, reference in set(chunk.get("set_aside") or []))
    history.extend(steps)
    status = steps[-1]["status"] if steps else Status.ACCEPTED.value
    outcome = chunk.get("outcome") or []
    code = outcome[position] if position < len(outcome) else None
    if code and code != "-":
        final = decode_outcome(code, list(chunk.get("texts") or []))
        view.update(paper_copy=final["paper_copy"], code=final["code"], updated_at=chunk.get("settled_at"))
        history.append(_entry(chunk.get("settled_at"), final["status"], reason=final["reason"]))
        return final["status"], final["reason"]
    if chunk.get("history"):
        view["updated_at"] = chunk["history"][-1]["at"]
    return status, None


def _chunk_steps(chunk: dict, route: str | None, set_aside: bool) -> list[dict]:
    """The chunk's steps that concern a letter on `route`: routed when it has a route; rendered and
    sent only when it went into the GLOBE batch (not on paper alone, not set aside)."""
    steps = []
    for step in chunk.get("history") or []:
        step_status = step["status"]
        if step_status == Status.ROUTED.value:
            if route is None:
                continue
            detail = f"route {route} (decided by {chunk.get('route_source')})"
        elif route == Route.PAPER.value or route is None or set_aside:
            continue
        else:
            detail = step.get("detail")
        steps.append(_entry(step["at"], step_status, detail))
    return steps


def positions_of(chunk: dict) -> dict[str, int]:
    """Where each of the chunk's letters is in its `references` (and so in `routes` and `outcome`)."""
    return {reference: index for index, reference in enumerate(chunk.get("references") or [])}


def compose_all(items: Iterable[dict]) -> list[dict]:
    """Every letter (and rejected row) among `items` (a scan of the letters table), composed with
    its chunk record."""
    chunks: dict[str, tuple[dict, dict[str, int]]] = {}
    letters: list[dict] = []
    for item in items:
        if item.get("kind") == "chunk":
            chunks[item["letter_key"]] = (item, positions_of(item))
        else:
            letters.append(item)
    views = []
    for item in letters:
        chunk: dict | None = None
        positions: dict[str, int] | None = None
        if item.get("kind") != "rejected" and item.get("chunk") is not None:
            chunk, positions = chunks.get(chunk_key(item["tenant"], item["batch_id"], int(item["chunk"])), (None, None))
        views.append(compose(item, chunk, positions))
    return views
