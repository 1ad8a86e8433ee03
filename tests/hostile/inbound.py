"""Good inbound documents to turn hostile (a GLOBE result, an ebMS message, a CPA, a subscription
answer), a listening HTTP server that counts what an attack fetches, and fake services for the inbound
endpoint that record every write."""
from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

from bbconnect.ebms import message as ebms
from bbconnect.logius.globe import BatchResult, LetterResult, build_result
from bbconnect.service.records import InboundRecord
from bbconnect.tenants import load_tenant_config

SENDER_OIN = "00000001899410741000"
LOGIUS_OIN = "00000004003214345001"
CPA_ID = "CPA-GLOBE-00000001899410741000-01"


def globe_result(batch_id: str | None = None) -> bytes:
    now = datetime(2027, 2, 26, 9, 0, tzinfo=UTC)
    return build_result(BatchResult(
        batch_id=batch_id or str(uuid.uuid4()), leverancier_code=SENDER_OIN, total_received=1, processed_ok=1,
        no_active_box=0, technical_problem=0, berichttype_incorrect=0, publish_date_incorrect=0, created_date_incorrect=0,
        received_at=now, processed_at=now,
        letters=[LetterResult(bericht_id=str(uuid.uuid4()), berichttype="AANSLAG", code="Verwerkt", stage="NA")]))


def subscription_answer() -> bytes:
    return (b'<ns0:AbonnementAntwoord xmlns:ns0="http://schemas.overheid.nl/GEB/AbonnementServiceProcessor/2014/02">'
            b"<BerichtLeverancier><OIN>" + SENDER_OIN.encode() + b"</OIN></BerichtLeverancier>"
            b"<VerzoekId>req-1</VerzoekId><PeilDatum>2027-02-20T03:00:00Z</PeilDatum>"
            b"<Abonnementen><Abonnement><BSN>999990019</BSN><Actief>true</Actief></Abonnement></Abonnementen>"
            b"</ns0:AbonnementAntwoord>")


def inbound_message(payload: bytes | None = None, *, action: str = ebms.ACTION_BV_RESULT) -> ebms.EbmsMessage:
    """A message from Logius to the sender, as GLOBE posts it to the inbound endpoint."""
    return ebms.EbmsMessage(
        cpa_id=CPA_ID, conversation_id=str(uuid.uuid4()), service=ebms.BERICHTENBOX_SERVICE,
        service_type=ebms.SERVICE_TYPE, action=action,
        from_party=ebms.Party(LOGIUS_OIN, ebms.ROLE_LOGIUS), to_party=ebms.Party(SENDER_OIN, ebms.ROLE_SENDER),
        message_id=ebms.new_message_id("logius.test"), timestamp=datetime.now(UTC), ack_requested=True,
        duplicate_elimination=True, sync_reply=True,
        payloads=(ebms.Payload("result@logius.test", "application/xml", globe_result() if payload is None else payload),),
    )


def signal_envelope() -> tuple[dict[str, str], bytes]:
    """A plain text/xml ebMS signal (an Acknowledgment from Logius)."""
    ours = inbound_message()
    business = ebms.EbmsMessage(
        cpa_id=CPA_ID, conversation_id="c", service=ebms.BERICHTENBOX_SERVICE, service_type=ebms.SERVICE_TYPE,
        action=ebms.ACTION_BV_REQUEST, from_party=ebms.Party(SENDER_OIN, ebms.ROLE_SENDER),
        to_party=ebms.Party(LOGIUS_OIN, ebms.ROLE_LOGIUS), message_id=ebms.new_message_id("bbconnect.test"),
        timestamp=ours.timestamp, ack_requested=True)
    return ebms.serialize(ebms.acknowledgment_for(business, host="logius.test", now=ours.timestamp))


class CountingServer:
    """A local HTTP server that records every request: a fetched entity, DTD or XInclude shows up here."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        hits = self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.append(self.path)
                body = b'<!ENTITY leak "LEAKED">'
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> CountingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


# ---------------------------------------------------------------------------- fake inbound services
@dataclass
class Recorder:
    writes: list[tuple] = field(default_factory=list)


class FakeStore:
    def __init__(self, name: str, recorder: Recorder) -> None:
        self.name, self.bucket, self._recorder = name, name, recorder
        self.objects: dict[str, bytes] = {}

    def put(self, key, data, content_type="application/octet-stream", **kwargs):
        self._recorder.writes.append((self.name, "put", key))
        self.objects[key] = bytes(data)

    def put_json(self, key, value):
        self._recorder.writes.append((self.name, "put_json", key))

    def get(self, key):
        return self.objects[key]

    def get_or_none(self, key):
        return self.objects.get(key)

    def get_json_or_none(self, key):
        return None


class FakeBatches:
    """What the inbound endpoint asks of the batches table: nothing is known, every write is recorded."""

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder
        self.inbound: dict[tuple[str, str], dict] = {}

    def inbound_seen(self, cpa_id, message_id):
        found = self.inbound.get((cpa_id, message_id))
        return None if found is None else InboundRecord.model_validate(found)

    def record_inbound(self, cpa_id, message_id, **item):
        self._recorder.writes.append(("batches", "record_inbound", message_id))
        self.inbound[(cpa_id, message_id)] = item

    def globe(self, globe_batch_id):
        return None

    def globe_of_message(self, message_id):
        return None

    def record_result(self, *args, **kwargs):
        self._recorder.writes.append(("batches", "record_result", args))
        return True

    def update_globe(self, *args, **kwargs):
        self._recorder.writes.append(("batches", "update_globe", args))

    def get(self, key):
        return None


REPO_ROOT = Path(__file__).resolve().parents[2]


class FakeConfigs:
    """The demo tenant's configuration with its CPA (osb-rm, acknowledgement in the HTTP response)."""

    def __init__(self, cpa: str = "gemeente-lv.xml") -> None:
        self.config = load_tenant_config((REPO_ROOT / "config" / "tenants" / "gemeente-lv.json").read_bytes(),
                                          source="gemeente-lv.json")
        self.cpa_xml = (REPO_ROOT / "config" / "cpa" / cpa).read_bytes()

    def connection_by_cpa(self, cpa_id):
        connection = self.config.connections["lv-logius"]
        return ("gemeente-lv", connection) if cpa_id == connection.cpa_id else None

    def cpa(self, tenant, connection):
        return self.cpa_xml

    def get(self, tenant):
        return self.config


def fake_services() -> tuple[SimpleNamespace, Recorder]:
    recorder = Recorder()
    services = SimpleNamespace(
        settings=SimpleNamespace(accepted_logius_oins=frozenset({LOGIUS_OIN})),
        work=FakeStore("work", recorder), outbox=FakeStore("outbox", recorder), inbox=FakeStore("inbox", recorder),
        batches=FakeBatches(recorder), letters=SimpleNamespace(), configs=FakeConfigs(),
        schedule=None, secrets=None, executions=None,  # the ports the sync profile's answers never use
    )
    return services, recorder
