"""What the esxi and xen providers refuse before any host is touched: one message with
file, line and column, exit 1 (the checks of their validate hooks)."""

from __future__ import annotations

import subprocess
import sys

import pytest

CASES = [
    ("esxi_display_name",
     'version: 1\nproject: x\nvms:\n  a:\n    provider: esxi\n    options:\n'
     '      display_name: "bad/name"\n',
     "{f}:7:21: use letters, digits, spaces and _ . ( ) + -, at most 80, starting with a "
     "letter or digit, got 'bad/name' (in vms -> a -> options -> display_name)"),
    ("esxi_memory",
     "version: 1\nproject: x\nvms:\n  a:\n    provider: esxi\n    memory: 1001MiB\n",
     "{f}:6:13: the esxi provider needs memory in whole multiples of 4MiB and at least 4MiB, "
     "not 1001MiB (in vms -> a -> memory)"),
    ("esxi_disk_image",
     "version: 1\nproject: x\nvms:\n  a:\n    provider: esxi\n    disks:\n"
     "      - image: /isos/base.vmdk\n",
     "{f}:7:16: the esxi provider does not make disks from images yet "
     "(in vms -> a -> disks -> 0 -> image)"),
    ("esxi_cloud_init",
     "version: 1\nproject: x\nvms:\n  a:\n    provider: esxi\n    cloud_init: {user: me}\n",
     "{f}:6:17: the esxi provider does not support cloud_init yet "
     "(in vms -> a -> cloud_init)"),
    ("xen_pvh_without_kernel",
     "version: 1\nproject: x\nvms:\n  a:\n    provider: xen\n    options:\n"
     "      type: pvh\n",
     "{f}:7:13: a pvh guest needs options.kernel or options.bootloader "
     "(in vms -> a -> options -> type)"),
    ("xen_maxvcpus_below_cpus",
     "version: 1\nproject: x\nvms:\n  a:\n    provider: xen\n    cpus: 4\n    options:\n"
     "      maxvcpus: 2\n",
     "{f}:8:17: maxvcpus 2 is below cpus 4 (in vms -> a -> options -> maxvcpus)"),
    ("xen_unknown_option",
     "version: 1\nproject: x\nvms:\n  a:\n    provider: xen\n    options:\n"
     "      config_dri: /etc/xen\n",
     "{f}:7:7: unknown option 'config_dri'; did you mean 'config_dir'? "
     "(in vms -> a -> options -> config_dri)"),
]


@pytest.mark.parametrize(("name", "text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_refused_with_its_position(tmp_path, name, text, expected):
    manifest = tmp_path / f"{name}.yaml"
    manifest.write_text(text)
    done = subprocess.run([sys.executable, "-m", "decl", "validate", "-f", str(manifest)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    first = done.stderr.splitlines()[0]
    assert first == "error: " + expected.format(f=manifest)
    assert "Traceback" not in done.stderr
