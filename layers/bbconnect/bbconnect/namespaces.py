"""The XML namespaces bbconnect reads and writes, each defined once.

The standard ones (SOAP, XML Signature, WS-Security, WS-Addressing, ebMS 2.0, CPA, XAdES) are shared
by the ebMS, WUS and proof modules, which import them from here. A namespace that belongs to one
Logius vocabulary alone (GLOBE's batch, the WUS validation service, the subscription list) stays
with the module that speaks it.
"""
from __future__ import annotations

from typing import Final

__all__ = [
    "CPA_NS",
    "DS_NS",
    "EB_NS",
    "EXC_C14N_NS",
    "SOAP12_NS",
    "SOAP_NS",
    "WSA_2004_NS",
    "WSA_NS",
    "WSSE_NS",
    "WSU_NS",
    "XADES_NS",
    "XLINK_NS",
    "XML_NS",
    "XSI_NS",
]

# W3C
XML_NS: Final = "http://www.w3.org/XML/1998/namespace"
XSI_NS: Final = "http://www.w3.org/2001/XMLSchema-instance"
XLINK_NS: Final = "http://www.w3.org/1999/xlink"
DS_NS: Final = "http://www.w3.org/2000/09/xmldsig#"
EXC_C14N_NS: Final = "http://www.w3.org/2001/10/xml-exc-c14n#"  # also the algorithm's identifier
SOAP12_NS: Final = "http://www.w3.org/2003/05/soap-envelope"
WSA_NS: Final = "http://www.w3.org/2005/08/addressing"

# SOAP 1.1 (ebMS 2.0 and Logius' WUS services both use it)
SOAP_NS: Final = "http://schemas.xmlsoap.org/soap/envelope/"
WSA_2004_NS: Final = "http://schemas.xmlsoap.org/ws/2004/08/addressing"  # the member submission WS-Addressing

# OASIS: ebMS 2.0, CPP/CPA 2.0, WS-Security 1.0
EB_NS: Final = "http://www.oasis-open.org/committees/ebxml-msg/schema/msg-header-2_0.xsd"
CPA_NS: Final = "http://www.oasis-open.org/committees/ebxml-cppa/schema/cpp-cpa-2_0.xsd"
WSSE_NS: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU_NS: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"

# ETSI: XAdES 1.3.2 (the proof of dispatch's signature)
XADES_NS: Final = "http://uri.etsi.org/01903/v1.3.2#"
