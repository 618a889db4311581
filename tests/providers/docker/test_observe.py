"""The verify after a change reads one object with one inspect, and a whole pass when one
inspect cannot tell (a fake engine that records the paths it is asked for)."""

from __future__ import annotations

from typing import Any

from decl.core.resource import Desired
from decl.providers.docker import provider as docker_provider
from decl.providers.docker.reader import EngineError, EngineNotFound, Reader

LABELS = {"io.decl.project": "lab", "io.decl.address": "network.web"}


class FakeEngine(Reader):
    """Answers GETs from a table (path -> data, or an exception to raise)."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        self.asked.append(path)
        answer = self.answers.get(path, EngineNotFound("no such object"))
        if isinstance(answer, Exception):
            raise answer
        return answer


def network(name: str, ident: str = "n1") -> dict[str, Any]:
    return {"Name": name, "Id": ident, "Driver": "bridge", "Labels": LABELS,
            "IPAM": {"Config": []}, "Internal": False}


def observe(monkeypatch, engine: FakeEngine, kind: str = "network", name: str = "web"):
    monkeypatch.setattr(docker_provider, "_reader", lambda conn: engine)

    class Conn:
        host = "local"

    desired = Desired(address=f"{kind}.{name}", kind=kind, name=name, provider="docker",
                      host="local", state="present", spec={})
    return docker_provider.DockerProvider().observe(Conn(), "lab", desired)


def test_a_network_is_verified_by_one_inspect(monkeypatch):
    engine = FakeEngine({"/networks/web": network("web")})
    observed = observe(monkeypatch, engine)
    assert engine.asked == ["/networks/web"]
    assert observed.spec["driver"] == "bridge" and observed.marks.project == "lab"
    assert "users" not in observed.handle  # an inspect does not say whose they are


def test_a_missing_network_or_volume_is_absent_after_one_inspect(monkeypatch):
    for kind in ("network", "volume"):
        engine = FakeEngine({})
        assert observe(monkeypatch, engine, kind) is None
        assert engine.asked == [f"/{kind}s/web"]


def test_an_ambiguous_name_or_another_network_falls_back_to_the_whole_pass(monkeypatch):
    listed = {"/containers/json": [], "/networks": [network("web", "n2")],
              "/volumes": {"Volumes": []}}
    for answer in (EngineError(400, "network web is ambiguous (2 matches found on name)"),
                   network("other", "web0")):
        engine = FakeEngine({**listed, "/networks/web": answer})
        observed = observe(monkeypatch, engine)
        assert engine.asked[0] == "/networks/web" and "/networks" in engine.asked
        assert observed.handle["id"] == "n2"  # what the pass found by that name
