"""One batch file through the services in memory (tests/fakes: the state machine's path, each task called
as its state calls it, on the in-memory ports), for what the steps decide together: where each letter
ends and what the tenant's report says. The wiring itself (the ASL, the template, moto) is tests/e2e's."""
from __future__ import annotations

from fakes import FakeLogius, world
from fakes.pipeline import bsn, drop, rows, run_batch


def test_given_a_file_of_a_subscribed_and_an_unsubscribed_citizen_when_it_runs_then_one_is_delivered_and_one_goes_on_paper():
    # Given two letters of gemeente-lv, the first citizen with a Berichtenbox, the second without
    subscribed, unsubscribed = bsn(1), bsn(2)
    memory = world(logius=FakeLogius({subscribed}))
    start = drop(memory, "gemeente-lv", "run.jsonl", rows([("mem-1", subscribed), ("mem-2", unsubscribed)]))
    # When the file runs
    answer, report = run_batch(memory, start)
    # Then the first is delivered digitally (in the one GLOBE batch posted), the second goes on paper, in a print job
    assert answer["status"] == "completed" and answer["unfinished_chunks"] == 0
    assert answer["counts"] == {"received": 2, "rejected": 0, "delivered": 1, "paper": 1, "failed": 0}
    assert report is not None
    assert [(letter["reference"], letter["status"]) for letter in report["letters"]] == [("mem-1", "DELIVERED"), ("mem-2", "PAPER")]
    assert len(memory.logius.posted) == 1 and len(answer["print_jobs"]) == 1
    # And every letter is in exactly one final state in the ledger
    assert {memory.letters.get("gemeente-lv", reference)["status"] for reference in ("mem-1", "mem-2")} == {"DELIVERED", "PAPER"}


def test_given_a_citizen_whose_box_is_not_active_when_the_report_says_so_then_the_letter_goes_on_paper():
    # Given a subscribed citizen for whom GLOBE's processing report says NietActiefOfGeabonneerd
    citizen = bsn(3)
    memory = world(logius=FakeLogius({citizen}, result_codes={citizen: "NietActiefOfGeabonneerd"}))
    start = drop(memory, "gemeente-lv", "inactive.jsonl", rows([("mem-3", citizen)]))
    # When the file runs
    answer, report = run_batch(memory, start)
    # Then the letter was sent, and on the report's word it goes on paper
    assert len(memory.logius.posted) == 1
    assert answer["counts"]["paper"] == 1 and answer["counts"]["delivered"] == 0
    assert report is not None and report["letters"][0]["status"] == "PAPER"


def test_given_two_executions_of_one_chunk_when_one_is_acknowledged_while_the_other_starts_its_attempt_then_both_are_told_sent_and_one_message_went():
    from bbconnect.service.ingest import ingest
    from bbconnect.service.render import render
    from bbconnect.service.send import Sender
    from bbconnect.service.subscriptions import check_subscriptions

    # Given a chunk ready to send, and two executions of it (a restarted one beside the first)
    citizen = bsn(4)
    memory = world(logius=FakeLogius({citizen}))
    batch = ingest(drop(memory, "gemeente-lv", "race.jsonl", rows([("mem-race", citizen)])), memory.services)
    item = memory.work.get_json(batch["manifest"]["key"])[0]
    state = {"tenant": batch["tenant"], "batch_id": batch["batch_id"], "timing": batch["timing"], "chunk": item}
    state["subscriptions"] = {"routes": check_subscriptions(state, memory.services, sleep=lambda seconds: None)}
    state["render"] = {"rendered": render(state, memory.services)}
    request = {"tenant": batch["tenant"], "batch_id": batch["batch_id"], "chunk": item}
    # When the second execution starts its attempt just after the first one's was acknowledged
    start_attempt = memory.batches.start_attempt

    def first_acknowledged_meanwhile(globe_id, **fields):
        memory.batches.start_attempt = start_attempt
        Sender(memory.services).handle({**request, "task_token": "first"})
        return start_attempt(globe_id, **fields)

    memory.batches.start_attempt = first_acknowledged_meanwhile
    second = Sender(memory.services).handle({**request, "task_token": "second"})
    # Then the batch stays acknowledged, one message was posted, and both executions are told it was sent
    assert memory.batches.globe(item["globe_batch_id"]).state == "acknowledged"
    assert len(memory.logius.posted) == 1
    assert second.sent is True
    assert {answer["token"]: answer["sent"] for answer in memory.executions.told} == {"first": True, "second": True}


class _Adapter:
    """A vendor's ebms-core adapter: refuses a MessageId it has, reports each it has as delivered."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.while_sending = lambda: None

    def send_batch(self, cpa_id, from_oin, to_oin, service, action, conversation_id, payload, content_type, *, message_id):
        from bbconnect.adapters.ebms_adapter import EbmsAdapterRefused

        if message_id in self.messages:
            raise EbmsAdapterRefused(f"message {message_id} already exists", status=409)
        self.messages.append(message_id)
        self.while_sending, during = (lambda: None), self.while_sending
        during()
        return message_id

    def status(self, message_id: str) -> str:
        return "delivered" if message_id in self.messages else "unknown"


def test_given_a_hand_over_to_the_adapter_when_a_second_execution_sees_it_delivered_before_the_first_records_it_then_it_stays_acknowledged(
        tmp_path):
    import json
    import shutil
    from dataclasses import replace

    from fakes import CONFIG_DIR

    from bbconnect.service.ingest import ingest
    from bbconnect.service.render import render
    from bbconnect.service.send import Sender
    from bbconnect.service.subscriptions import check_subscriptions

    # Given gemeente-lv sending through its own ebMS adapter, and a chunk ready to send
    shutil.copytree(CONFIG_DIR, tmp_path / "tenants")
    shutil.copytree(CONFIG_DIR.parent / "cpa", tmp_path / "cpa")
    config = json.loads((CONFIG_DIR / "gemeente-lv.json").read_text(encoding="utf-8"))
    config["connections"]["lv-logius"]["adapter"] = {"base_url": "https://adapter.example"}
    (tmp_path / "tenants" / "gemeente-lv.json").write_text(json.dumps(config), encoding="utf-8")
    citizen, adapter = bsn(5), _Adapter()
    memory = world(config_dir=tmp_path / "tenants", logius=FakeLogius({citizen}))
    services = replace(memory.services, ebms_adapter=lambda connection: adapter)
    batch = ingest(drop(memory, "gemeente-lv", "adapter.jsonl", rows([("mem-adapter", citizen)])), services)
    item = memory.work.get_json(batch["manifest"]["key"])[0]
    state = {"tenant": batch["tenant"], "batch_id": batch["batch_id"], "timing": batch["timing"], "chunk": item}
    state["subscriptions"] = {"routes": check_subscriptions(state, services, sleep=lambda seconds: None)}
    state["render"] = {"rendered": render(state, services)}
    request = {"tenant": batch["tenant"], "batch_id": batch["batch_id"], "chunk": item}

    # When, while the first execution hands the batch over, a second one (a redelivered message) hands
    # it over too, is refused as a MessageId the adapter has, asks, and hears it was delivered
    def second_execution() -> None:
        Sender(services).handle({**request, "task_token": "second"})
        check, _ = memory.scheduled[-1]
        Sender(services).handle(check)

    adapter.while_sending = second_execution
    first = Sender(services).handle({**request, "task_token": "first"})
    # Then the batch stays acknowledged (the first's late hand-over record does not make it `sending`
    # again), the adapter got one message, and both executions are told it was sent
    assert memory.batches.globe(item["globe_batch_id"]).state == "acknowledged"
    assert len(adapter.messages) == 1 and first.sent is True
    assert {answer["token"]: answer["sent"] for answer in memory.executions.told} == {"first": True, "second": True}
