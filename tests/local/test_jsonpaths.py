"""The local run compiles each JSONPath moto evaluates once (bbconnect_local.jsonpaths): the same
results, the originals back when the last deployment stops."""
from __future__ import annotations

import jsonpath_ng.ext
from moto.stepfunctions.parser.asl.utils import json_path

from bbconnect_local import jsonpaths


def test_given_installed_when_a_path_is_compiled_twice_then_it_is_compiled_once_and_finds_the_same():
    original = jsonpath_ng.ext.parse
    data = {"detail": {"tenant": "gemeente-lv", "lines": [1, 2]}}
    expected = [match.value for match in original("$.detail.lines[*]").find(data)]
    jsonpaths.install()
    try:
        first, second = jsonpath_ng.ext.parse("$.detail.lines[*]"), jsonpath_ng.ext.parse("$.detail.lines[*]")
        assert first is second
        assert [match.value for match in first.find(data)] == expected
        assert [match.value for match in second.find(data)] == expected  # evaluating did not change it
        assert json_path.extract_json("$.detail.tenant", data) == "gemeente-lv"
    finally:
        jsonpaths.uninstall()
    assert jsonpath_ng.ext.parse is original


def test_given_two_deployments_when_the_first_stops_then_the_cache_stays_until_the_second_does():
    original = json_path.parse
    jsonpaths.install()
    jsonpaths.install()
    jsonpaths.uninstall()
    assert json_path.parse is not original
    jsonpaths.uninstall()
    assert json_path.parse is original
    jsonpaths.uninstall()  # one too many: nothing to undo
    assert json_path.parse is original
