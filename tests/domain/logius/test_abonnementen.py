"""The bulk subscription list: the request we send and the answer we read."""
from __future__ import annotations

import gzip
from datetime import UTC, datetime

import pytest
from lxml import etree

from bbconnect.logius.abonnementen import BulkAnswer, Subscription, build_request, is_subscribed, merge, parse_answer

OIN = "00000001899410741000"


def _answer(items: str, *, ns: bool = True) -> bytes:
    prefix = 'ns0:' if ns else ''
    declaration = ' xmlns:ns0="http://schemas.overheid.nl/GEB/AbonnementServiceProcessor/2014/02"' if ns else ''
    return (f'<{prefix}AbonnementAntwoord{declaration}><BerichtLeverancier><OIN>{OIN}</OIN></BerichtLeverancier>'
            f'<VerzoekId>req-1</VerzoekId><PeilDatum>2027-02-20T03:00:00Z</PeilDatum>'
            f'<Abonnementen>{items}</Abonnementen></{prefix}AbonnementAntwoord>').encode()


def test_given_a_bsn_list_when_requested_then_the_aanvraag_names_the_sender_and_each_bsn():
    root = etree.fromstring(build_request(OIN, "req-1", bsns=["999990019", "999990020"]))
    assert etree.QName(root).localname == "AbonnementAanvraag"
    assert root.findtext("BerichtLeverancier/OIN") == OIN
    assert [b.text for b in root.iterfind("BSNLijst/BSN")] == ["999990019", "999990020"]


def test_given_a_date_when_mutations_are_requested_then_only_the_mutatiedatum_is_sent():
    root = etree.fromstring(build_request(OIN, "req-2", since=datetime(2027, 2, 1, tzinfo=UTC)))
    assert root.findtext("MutatieDatum") == "2027-02-01T00:00:00Z"
    assert root.find("BSNLijst") is None
    with pytest.raises(ValueError):
        build_request(OIN, "x", bsns=["1"], since=datetime(2027, 2, 1, tzinfo=UTC))


def test_given_a_gzipped_answer_when_read_then_every_subscription_is_there_and_repr_shows_no_bsn():
    data = gzip.compress(_answer("<Abonnement><BSN>999990019</BSN><Actief>true</Actief></Abonnement>"
                                 "<Abonnement><BSN>999990020</BSN><BerichtType>AANSLAG</BerichtType><Actief>false</Actief></Abonnement>"))
    answer = parse_answer(data)
    assert answer.sender_oin == OIN and answer.request_id == "req-1"
    assert answer.as_of == datetime(2027, 2, 20, 3, tzinfo=UTC)
    assert answer.subscriptions == (Subscription("999990019", None, True), Subscription("999990020", "AANSLAG", False))
    assert "99999" not in repr(answer)


def test_given_mutations_when_merged_then_new_subscribers_join_and_cancelled_ones_leave():
    current = {"*": ["999990019"], "AANSLAG": ["999990032"]}
    answer = BulkAnswer(OIN, "r", datetime(2027, 2, 20, tzinfo=UTC), (
        Subscription("999990020", None, True), Subscription("999990032", "AANSLAG", False)))
    table = merge(current, answer, mutations=True)
    assert is_subscribed(table, "999990019", "AANSLAG") and is_subscribed(table, "999990020", "WOZ")
    assert not is_subscribed(table, "999990032", "AANSLAG")
    assert merge(current, answer, mutations=False) == {"*": {"999990020"}, "AANSLAG": set()}


@pytest.mark.parametrize("data,match", [
    (b"<Other/>", "AbonnementAntwoord"),
    (_answer("<Abonnement><Actief>true</Actief></Abonnement>"), "without a BSN"),
    (b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><AbonnementAntwoord>&e;</AbonnementAntwoord>', "DOCTYPE|entit"),
])
def test_given_a_broken_or_hostile_answer_when_read_then_it_is_refused(data, match):
    with pytest.raises(ValueError, match=match):
        parse_answer(data)
