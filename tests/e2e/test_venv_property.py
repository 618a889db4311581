"""Property: for random package sets applied one after another, apply converges (the next
plan is empty) and a second apply changes nothing."""

from __future__ import annotations

import json
import pathlib
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.venv_helpers import decl, installed
from tests.wheelhouse import standard_wheelhouse

SPECS = {
    "alpha": ["alpha", "alpha==1.0", "alpha==2.0", "alpha>=1.5", "alpha<2"],
    "beta": ["beta", "beta==1.0"],
    "delta": ["delta", "delta>=1.0"],
    "gamma": ["gamma"],
}

package_sets = st.dictionaries(st.sampled_from(sorted(SPECS)), st.integers(0, 4),
                               max_size=4).map(
    lambda chosen: sorted(SPECS[name][index % len(SPECS[name])] for name, index in
                          chosen.items()))


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(package_sets, min_size=1, max_size=3))
def test_any_sequence_of_package_sets_converges(steps):
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        wheels = standard_wheelhouse(root / "wheels")
        manifest = root / "decl.yaml"
        for packages in steps:
            manifest.write_text(json.dumps({"version": 1, "project": "prop", "venvs": {"p": {
                "path": str(root / "venv"), "backend": "venv", "pip": False,
                "packages": packages, "find_links": [str(wheels)], "no_index": True}}}))
            done = decl("apply", "-y", "-f", str(manifest))
            assert done.returncode == 0, done.stdout + done.stderr
            plan = decl("plan", "--detailed-exitcode", "-f", str(manifest))
            assert plan.returncode == 0, (packages, plan.stdout)
            again = decl("apply", "-y", "-f", str(manifest))
            assert again.returncode == 0 and "No changes." in again.stdout
            names = {p.split("=")[0].split(">")[0].split("<")[0] for p in packages}
            if "beta" in names:
                names.add("gamma")
            assert set(installed(str(root / "venv"))) == names
        decl("destroy", "-y", "-f", str(manifest))
