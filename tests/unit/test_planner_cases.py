"""Planner fixtures: one case per file in tests/planner_cases (desired + observed -> changes)."""

from __future__ import annotations

import pathlib

import pytest
from ruamel.yaml import YAML

from decl.core.plan import Action
from decl.core.planner import PlanOptions, plan
from decl.core.resource import Desired, Marks, Observed, Snapshot, split_address
from decl.core.traits import KindTraits, Policy

CASES = sorted((pathlib.Path(__file__).parent.parent / "planner_cases").glob("*.yaml"))
PROJECT = "lab"


def _desired(raw: dict) -> Desired:
    kind, name = split_address(raw["address"])
    return Desired(
        address=raw["address"], kind=kind, name=name, provider=raw.get("provider", "test"),
        host=raw.get("host", "local"), state=raw.get("state", "present"), spec=raw["spec"],
        sensitive=frozenset(raw.get("sensitive", [])),
        depends_on=tuple(raw.get("depends_on", [])),
        prevent_destroy=raw.get("prevent_destroy", False),
        ignore_changes=tuple(raw.get("ignore_changes", [])), adopt=raw.get("adopt", False),
    )


def _observed(raw: dict, desired: dict[str, Desired]) -> Observed:
    kind, name = split_address(raw["address"])
    mark = raw.get("marks", "own")
    marks = None
    if mark == "own":  # our marks with the current spec hash: differences are drift
        marks = Marks(PROJECT, raw["address"], desired[raw["address"]].spec_hash
                      if raw["address"] in desired else "x")
    elif mark == "own-old":  # our marks from an older manifest
        marks = Marks(PROJECT, raw["address"], "old")
    elif mark == "own-incomplete":  # written first by an apply that did not finish
        marks = Marks(PROJECT, raw["address"], desired[raw["address"]].spec_hash,
                      complete=False)
    elif mark == "other":
        marks = Marks("other", raw["address"], "x")
    return Observed(address=raw["address"], kind=kind, name=name,
                    provider=raw.get("provider", "test"), host=raw.get("host", "local"),
                    state=raw.get("state", "present"), spec=raw["spec"], marks=marks)


def _traits(raw: dict | None) -> KindTraits:
    raw = raw or {}
    return KindTraits(
        policies={k: Policy(v) for k, v in raw.get("policies", {}).items()},
        destroys_data=raw.get("destroys_data"),
        size_fields=frozenset(raw.get("size_fields", [])),
        half_made=raw.get("half_made", False),
    )


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_planner_case(case: pathlib.Path) -> None:
    data = YAML(typ="safe").load(case.read_text())
    desired = [_desired(d) for d in data.get("desired", [])]
    by_address = {d.address: d for d in desired}
    observed = tuple(_observed(o, by_address) for o in data.get("observed", []))
    unavailable = {(p, h): reason for p, h, reason in data.get("unavailable", [])}
    in_flight = frozenset((a, h) for a, h in data.get("in_flight", []))
    snapshot = Snapshot(observed=observed, unavailable=unavailable, in_flight=in_flight)
    traits = _traits(data.get("traits"))
    kinds = {d.kind for d in desired} | {o.kind for o in observed}
    options = PlanOptions(**{k: tuple(v) if isinstance(v, list) else v
                             for k, v in data.get("options", {}).items()})
    result = plan(PROJECT, desired, snapshot, {("test", k): traits for k in kinds}, options)

    expect = data["expect"]
    got = [c for c in result.changes]
    assert [c.address for c in got] == [c["address"] for c in expect["changes"]], \
        data["description"]
    for change, wanted in zip(got, expect["changes"], strict=True):
        assert change.action is Action(wanted["action"]), data["description"]
        for key in ("cause", "origin", "destroys_data", "in_flight"):
            if key in wanted:
                assert getattr(change, key) == wanted[key], data["description"]
        if "fields" in wanted:
            fields = [f.to_json() for f in change.fields]
            for field, expected in zip(fields, wanted["fields"], strict=True):
                for key, value in expected.items():
                    assert field[key] == value, (data["description"], field)
    if "orphans" in expect:
        assert [(o.address, o.action.value) for o in result.orphans] == \
            [(o["address"], o["action"]) for o in expect["orphans"]]
    assert [e.message for e in result.errors] == expect.get("errors", [])
    assert [u.message for u in result.unavailable] == expect.get("unavailable", [])
