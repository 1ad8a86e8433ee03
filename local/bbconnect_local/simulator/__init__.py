"""A stand-in for Logius' GLOBE (MijnOverheid Berichtenbox) on one machine, for local tests.

    pki = TestPKI(tmp_path / "pki")
    with LogiusSimulator(SimulatorConfig(subscribed={"999990019"}), pki) as sim:
        sim.ebms_url, sim.wus_url, sim.ca_cert_path   # point the sender here
        ...
        sim.wait_idle()
        sim.delivery_log, sim.deliveries_of(bericht_id), sim.results

It is an independent implementation of the GLOBE side, written from the docs and the official
XSDs/WSDL, and deliberately shares no code with bbconnect's sender: disagreements are findings.
"""
from bbconnect_local.simulator.core import (
    ACTION_REQUEST,
    ACTION_RESULT,
    BERICHTENBOX_SERVICE,
    BERICHTENBOX_SERVICE_TYPE,
    EBMS_PATH,
    LOGIUS_TEST_OIN,
    WUS_PATH,
    DeliveryRecord,
    LogiusSimulator,
    ReceivedBatch,
    ResultRecord,
    SimulatorConfig,
)
from bbconnect_local.simulator._xml import NIL_GUID, mask_bsn
from bbconnect_local.simulator.globe import VERWERKINGSCODES
from bbconnect_local.simulator.wus import SOAP_ACTION as WUS_SOAP_ACTION

__all__ = [
    "ACTION_REQUEST",
    "ACTION_RESULT",
    "BERICHTENBOX_SERVICE",
    "BERICHTENBOX_SERVICE_TYPE",
    "EBMS_PATH",
    "LOGIUS_TEST_OIN",
    "NIL_GUID",
    "VERWERKINGSCODES",
    "WUS_PATH",
    "WUS_SOAP_ACTION",
    "DeliveryRecord",
    "LogiusSimulator",
    "ReceivedBatch",
    "ResultRecord",
    "SimulatorConfig",
    "mask_bsn",
]
