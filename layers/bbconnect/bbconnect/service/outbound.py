"""Building an outbound ebMS message the way the connection's CPA says (:mod:`bbconnect.service.channels`):
PartyIds with the CPA's types and roles, TimeToLive only when reliable (none for best effort),
AckRequested / DuplicateElimination / SyncReply as the channel says, and signed (ebMS 2.0 §4.1,
XMLDSig with the XPath filter and one reference per MIME part) when the CPA asks for it.

:func:`build_message` is the one place that turns a channel and a payload into the bytes that are
stored and posted; the send stage and the subscription requests call it, and it is called when the
message may go (its Timestamp and TimeToLive start then)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from bbconnect.ebms import message as ebms
from bbconnect.service.channels import Channel, ChannelError


@dataclass(frozen=True)
class Outbound:
    """A built message: what goes on the wire, and what its acknowledgement must show."""

    message: ebms.EbmsMessage
    headers: dict[str, str]
    body: bytes = field(repr=False)
    # for a signed acknowledgement: the (URI, DigestValue) pairs it must name, and the certificate
    # (PEM) it must be signed with
    ack_references: tuple[tuple[str, str], ...] = ()
    ack_certificate: str | None = None


def message_host(channel: Channel) -> str:
    """The host part of our MessageIds (Digikoppeling: uuid@host)."""
    return "bbconnect." + (urlsplit(channel.endpoint).hostname or "local")


def _check_identity(channel: Channel, certificate_pem: bytes) -> None:
    if channel.signing_certificate is None:
        return
    ours = x509.load_pem_x509_certificate(certificate_pem).public_bytes(serialization.Encoding.DER)
    if ours != channel.signing_certificate:
        named = x509.load_der_x509_certificate(channel.signing_certificate).subject.rfc4514_string()
        have = x509.load_pem_x509_certificate(certificate_pem).subject.rfc4514_string()
        raise ChannelError(f"CPA {channel.cpa_id} names signing certificate {named!r}; the connection's certificate "
                           f"is {have!r}: messages signed with it would not verify")


def sign_envelope(message: ebms.EbmsMessage, key_pem: bytes, certificate_pem: bytes, *,
                  digest_method: str | None = None, signature_method: str | None = None) -> bytes:
    """The SOAP envelope of ``message``, signed (ebms2.md §6.2)."""
    from bbconnect.ebms.signing import RSA_SHA256, SHA256, sign_ebms  # signxml: loaded only where something is signed

    return sign_ebms(ebms.envelope_of(message), message.payloads, key_pem, certificate_pem,
                     digest_method=digest_method or SHA256, signature_method=signature_method or RSA_SHA256)


def build_message(channel: Channel, *, action: str, conversation_id: str, payloads: Sequence[ebms.Payload],
                  now: datetime, attempt_seconds: float,
                  signing_identity: Callable[[], tuple[bytes, bytes]] | None = None,
                  message_id: str | None = None) -> Outbound:
    """The ebMS message for ``action`` over ``channel``, serialised (and signed when the CPA asks).
    ``signing_identity()`` gives (key PEM, certificate PEM); it is called only for a signed channel."""
    message = ebms.EbmsMessage(
        cpa_id=channel.cpa_id, conversation_id=conversation_id, service=channel.service,
        service_type=channel.service_type, action=action, from_party=channel.from_party, to_party=channel.to_party,
        message_id=message_id or ebms.new_message_id(message_host(channel)), timestamp=now,
        time_to_live=channel.time_to_live(now, attempt_seconds=attempt_seconds),
        ack_requested=channel.ack_requested, duplicate_elimination=channel.duplicate_elimination,
        sync_reply=channel.sync_reply,
        ack_signature_requested=channel.ack_requested and channel.ack_signature_requested,
        payloads=tuple(payloads),
    )
    if not channel.signed:
        headers, body = ebms.serialize(message)
        return Outbound(message, headers, body)
    if signing_identity is None:
        raise ChannelError(f"CPA {channel.cpa_id} asks for signed messages and no signing key was given")
    key_pem, certificate_pem = signing_identity()
    _check_identity(channel, certificate_pem)
    envelope = sign_envelope(message, key_pem, certificate_pem, digest_method=channel.hash_function,
                             signature_method=channel.signature_algorithm)
    headers, body = ebms.serialize(message, envelope=envelope)
    if not message.ack_signature_requested:
        return Outbound(message, headers, body)
    from bbconnect.ebms.signing import signature_references  # as sign_envelope's

    references = tuple((r.uri, r.digest_value) for r in signature_references(envelope))
    if channel.ack_certificate is None:  # channel_for refuses such a CPA: never here
        raise ChannelError(f"CPA {channel.cpa_id} asks for signed acknowledgements and names no certificate to check them")
    ack_pem = x509.load_der_x509_certificate(channel.ack_certificate).public_bytes(serialization.Encoding.PEM)
    return Outbound(message, headers, body, references, ack_pem.decode("ascii"))


def acknowledgment_holds(answer_soap: bytes, answer: ebms.EbmsMessage, *, references: Sequence[Sequence[str]],
                         certificate_pem: str | None) -> str | None:
    """Why a (signed) Acknowledgment of one of our messages does not count, or None when it does.
    With ``references`` (we asked for a signed acknowledgement): it must be signed by
    ``certificate_pem`` and name exactly the references we signed (as ebms-core checks)."""
    if not references:
        return None
    from bbconnect.ebms.signing import EbmsSignatureError, check_acknowledged_references, verify_ebms  # as above

    if not certificate_pem:
        return "a signed acknowledgement was asked for, and there is no certificate to check it with"
    try:
        verify_ebms(answer_soap, {}, certificate_pem)
        check_acknowledged_references(answer.ack_references, [(uri, digest) for uri, digest in references])
    except EbmsSignatureError as error:
        return f"the signed acknowledgement does not hold: {error}"
    return None
