"""Property, for parallels and utm against the fakes: for random VM sets applied one after
another, with an unmarked VM already there, every apply converges (the next plan is empty)
and the unmarked VM is left byte for byte as it was."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from decl.providers.utm import applescript as a
from tests.fakes.mac.harness import FakeMac

NAMES = ["web", "db", "cache"]

vm_spec = st.fixed_dictionaries({
    "cpus": st.integers(1, 4),
    "memory": st.sampled_from(["512MiB", "1GiB", "2GiB"]),
    "state": st.sampled_from(["running", "stopped"]),
    "network": st.sampled_from([{"mode": "nat"}, {"mode": "none"},
                                {"mode": "bridge", "bridge": "en0"}]),
})
vm_sets = st.dictionaries(st.sampled_from(NAMES), vm_spec, min_size=0, max_size=3)


def decl(fake: FakeMac, root: pathlib.Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**fake.env(), "DECL_STATE_DIR": str(root / "state"), "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "decl", *args], capture_output=True,
                          text=True, env=env, timeout=300, check=False)


def stranger(fake: FakeMac, provider: str) -> str:
    """Make an unmarked VM named "stranger"; return its state as JSON."""
    if provider == "parallels":
        assert fake.run("prlctl", "create", "stranger").returncode == 0
        return json.dumps(fake.parallels_vms()["stranger"], sort_keys=True)
    config = a.record([("name", a.string("stranger")), ("architecture", a.string("aarch64"))])
    assert fake.run("osascript", "-e", a.make_vm("qemu", config)).returncode == 0
    return json.dumps(fake.utm_vms()["stranger"], sort_keys=True)


def current(fake: FakeMac, provider: str) -> dict[str, str]:
    vms = fake.parallels_vms() if provider == "parallels" else fake.utm_vms()
    return {name: json.dumps(vm, sort_keys=True) for name, vm in vms.items()}


@pytest.mark.parametrize("provider", ["parallels", "utm"])
@settings(max_examples=4, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(steps=st.lists(vm_sets, min_size=1, max_size=2))
def test_random_vm_sets_converge_and_leave_strangers_alone(provider, steps):
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        fake = FakeMac(root / "mac.json")
        before = stranger(fake, provider)
        manifest = root / "decl.yaml"
        for vms in steps:
            document = {"version": 1, "project": "prop", "vms": {
                name: {"provider": provider, "disks": [{"size": "2GiB"}],
                       "options": {"shutdown_timeout": 1}, **spec}
                for name, spec in vms.items()}}
            manifest.write_text(json.dumps(document))
            done = decl(fake, root, "apply", "-y", "--prune", "-f", str(manifest))
            assert done.returncode == 0, done.stdout + done.stderr
            plan = decl(fake, root, "plan", "--detailed-exitcode", "-f", str(manifest))
            assert plan.returncode == 0, (vms, plan.stdout + plan.stderr)
            assert current(fake, provider)["stranger"] == before
            assert set(current(fake, provider)) == set(vms) | {"stranger"}
