"""A stand-in for Logius' GLOBE (MijnOverheid Berichtenbox) on one machine, for local tests.

    pki = TestPKI(tmp_path / "pki")
    with LogiusSimulator(SimulatorConfig(subscribed={"999990019"}), pki) as sim:
        sim.ebms_url, sim.wus_url, sim.ca_cert_path   # point the sender here
        ...
        sim.wait_idle()
        sim.delivery_log, sim.deliveries_of(bericht_id), sim.results, sim.fault_counts

    # the same, misbehaving 10 % of the time (reproducibly):
    SimulatorConfig(subscribed={...}, fault_seed=7).with_fault_rate(0.1)

It is an independent implementation of the GLOBE side, written from the docs and the official
XSDs/WSDL, and deliberately shares no code with bbconnect's sender: disagreements are findings.
core.py describes the behaviour (acknowledgement modes, MessageStatus, the bulk subscription list),
faults.py the fault kinds, bulk.py the (invented) AbonnementAntwoord schema.
"""
from bbconnect_local.simulator._xml import ABO_NS, NIL_GUID, mask_bsn
from bbconnect_local.simulator.core import (
    ACK_MODES,
    ACTION_BULK_REQUEST,
    ACTION_BULK_RESULT,
    ACTION_REQUEST,
    ACTION_RESULT,
    BERICHTENBOX_SERVICE,
    BERICHTENBOX_SERVICE_TYPE,
    EBMS_PATH,
    LOGIUS_TEST_OIN,
    WUS_PATH,
    BulkResultRecord,
    DeliveryRecord,
    LogiusSimulator,
    ReceivedBatch,
    ReceivedBulkRequest,
    ResultRecord,
    SignalIn,
    SignalRecord,
    SimulatorConfig,
)
from bbconnect_local.simulator.faults import FAULT_KINDS, RANDOM_CODES, FaultEvent
from bbconnect_local.simulator.globe import VERWERKINGSCODES
from bbconnect_local.simulator.wus import SOAP_ACTION as WUS_SOAP_ACTION

__all__ = [
    "ABO_NS",
    "ACK_MODES",
    "ACTION_BULK_REQUEST",
    "ACTION_BULK_RESULT",
    "ACTION_REQUEST",
    "ACTION_RESULT",
    "BERICHTENBOX_SERVICE",
    "BERICHTENBOX_SERVICE_TYPE",
    "EBMS_PATH",
    "FAULT_KINDS",
    "LOGIUS_TEST_OIN",
    "NIL_GUID",
    "RANDOM_CODES",
    "VERWERKINGSCODES",
    "WUS_PATH",
    "WUS_SOAP_ACTION",
    "BulkResultRecord",
    "DeliveryRecord",
    "FaultEvent",
    "LogiusSimulator",
    "ReceivedBatch",
    "ReceivedBulkRequest",
    "ResultRecord",
    "SignalIn",
    "SignalRecord",
    "SimulatorConfig",
    "mask_bsn",
]
