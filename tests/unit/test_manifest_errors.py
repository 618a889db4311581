"""Every kind of bad input gets one message with file, line, column and a snippet, exit 1."""

from __future__ import annotations

import subprocess
import sys

import pytest

CASES = [
    ("yaml_syntax", "version: 1\nproject: x\nvenvs:\n  a: {path: [1\n",
     "{f}:5:1: YAML syntax error: expected ',' or ']', but got '<stream end>'"),
    ("duplicate_key", "version: 1\nproject: x\nproject: y\n",
     '{f}:3:1: duplicate key "project" with value "y" (original value: "x")'),
    ("unknown_field", "version: 1\nproject: x\nvenvs:\n  a:\n    path: /tmp/a\n    pakages: [x]\n",
     "{f}:6:5: unknown field 'pakages'; did you mean 'packages'? (in venvs -> a -> pakages)"),
    ("wrong_type", "version: 1\nproject: x\nvms:\n  a:\n    cpus: many\n",
     "{f}:5:11: Input should be a valid integer, unable to parse string as an integer, "
     "got 'many' (in vms -> a -> cpus)"),
    ("bad_size", "version: 1\nproject: x\nvms:\n  a:\n    memory: 2 gigs\n",
     "{f}:5:13: invalid size '2 gigs': use a number with a unit such as 512MiB, 2GiB or 20G "
     "(in vms -> a -> memory)"),
    ("undefined_variable", 'version: 1\nproject: x\nvenvs:\n  a:\n    path: "{{ root }}/a"\n',
     "{f}:5:11: undefined variable: 'root' is undefined (in venvs -> a -> path)"),
    ("template_syntax", 'version: 1\nproject: x\nvenvs:\n  a:\n    path: "{{ root "\n',
     "{f}:5:11: template error: unexpected end of template, expected 'end of print "
     "statement'. (in venvs -> a -> path)"),
    ("unknown_provider", "version: 1\nproject: x\nvms:\n  a:\n    provider: hyperkit\n",
     "{f}:5:15: unknown provider 'hyperkit' for vms; did you mean 'hyperv'? "
     "(in vms -> a -> provider)"),
    ("unknown_default_provider",
     "version: 1\nproject: x\ndefaults: {vm_provider: qemmu}\nvms:\n  a: {cpus: 1}\n",
     "{f}:3:25: unknown provider 'qemmu' for vms; did you mean 'qemu'? "
     "(in defaults -> vm_provider)"),
    ("provider_of_another_kind",
     "version: 1\nproject: x\nvms:\n  a:\n    provider: docker\n",
     "{f}:5:15: provider 'docker' does not handle vms (it handles containers, networks, "
     "volumes) (in vms -> a -> provider)"),
    ("libvirt_unknown_option",
     "version: 1\nproject: x\nvms:\n  a:\n    provider: libvirt\n"
     "    options: {domain_typ: kvm}\n",
     "{f}:6:15: unknown option 'domain_typ'; did you mean 'domain_type'? "
     "(in vms -> a -> options -> domain_typ)"),
    ("qemu_unknown_option",
     "version: 1\nproject: x\nvms:\n  a:\n    provider: qemu\n    options:\n"
     "      acel: tcg\n",
     "{f}:7:7: unknown option 'acel'; did you mean 'accel'? "
     "(in vms -> a -> options -> acel)"),
    ("virtualbox_unknown_option",
     "version: 1\nproject: x\nvms:\n  a:\n    provider: virtualbox\n    options:\n"
     "      ostyp: Ubuntu_64\n",
     "{f}:7:7: unknown option 'ostyp'; did you mean 'ostype'? "
     "(in vms -> a -> options -> ostyp)"),
    ("vmware_unknown_option",
     "version: 1\nproject: x\nvms:\n  a:\n    provider: vmware\n    options:\n"
     "      vm_dri: /vms\n",
     "{f}:7:7: unknown option 'vm_dri'; did you mean 'vm_dir'? "
     "(in vms -> a -> options -> vm_dri)"),
    ("parallels_unknown_option",
     "version: 1\nproject: x\nvms:\n  a:\n    provider: parallels\n    options:\n"
     "      vm_dri: /vms\n",
     "{f}:7:7: unknown option 'vm_dri'; did you mean 'vm_dir'? "
     "(in vms -> a -> options -> vm_dri)"),
    ("utm_unknown_option",
     "version: 1\nproject: x\nvms:\n  a:\n    provider: utm\n    options:\n"
     "      bakend: qemu\n",
     "{f}:7:7: unknown option 'bakend'; did you mean 'backend'? "
     "(in vms -> a -> options -> bakend)"),
    ("esxi_unknown_option",
     "version: 1\nproject: x\nvms:\n  a:\n    provider: esxi\n    options:\n"
     "      datastor: ds1\n",
     "{f}:7:7: unknown option 'datastor'; did you mean 'datastore'? "
     "(in vms -> a -> options -> datastor)"),
    ("xen_unknown_option",
     "version: 1\nproject: x\nvms:\n  a:\n    provider: xen\n    options:\n"
     "      config_dri: /etc/xen\n",
     "{f}:7:7: unknown option 'config_dri'; did you mean 'config_dir'? "
     "(in vms -> a -> options -> config_dri)"),
    ("virtualbox_disk_size",
     "version: 1\nproject: x\nvms:\n  a:\n    provider: virtualbox\n"
     "    disks: [{size: 10G}]\n",
     "{f}:6:20: VirtualBox sizes disks in whole MiB (in vms -> a -> disks -> 0 -> size)"),
    ("vmware_image_url",
     "version: 1\nproject: x\nvms:\n  a:\n    provider: vmware\n    disks:\n"
     "      - {image: https://x.org/a.qcow2, checksum: 'sha256:00'}\n",
     "{f}:7:17: the vmware provider copies local .vmdk images only (vmware-vdiskmanager -r); "
     "download or convert the image first (in vms -> a -> disks -> 0 -> image)"),
    ("vmware_arch",
     "version: 1\nproject: x\nvms:\n  a:\n    provider: vmware\n    arch: riscv64\n",
     "{f}:6:11: the vmware provider cannot run arch riscv64 (it runs: aarch64, x86_64) "
     "(in vms -> a -> arch)"),
    ("hyperv_unknown_option",
     "version: 1\nproject: x\nvms:\n  a:\n    provider: hyperv\n    options:\n"
     "      swich: Lab\n",
     "{f}:7:7: unknown option 'swich'; did you mean 'switch'? "
     "(in vms -> a -> options -> swich)"),
    ("bad_option_value",
     "version: 1\nproject: x\nvms:\n  a:\n    provider: qemu\n    options:\n"
     "      accel: fast\n",
     "{f}:7:14: Input should be 'auto', 'kvm' or 'tcg', got 'fast' "
     "(in vms -> a -> options -> accel)"),
    ("vm_field_the_backend_cannot_do",
     "version: 1\nproject: x\nvms:\n  a:\n    provider: hyperv\n    memory: 1000MB\n",
     "{f}:6:13: the hyperv provider needs memory in whole multiples of 2MiB and at least "
     "32MiB, not 1000000000B (in vms -> a -> memory)"),
    ("parallels_disk_image",
     "version: 1\nproject: x\nvms:\n  a:\n    provider: parallels\n"
     "    disks: [{image: /i/debian.hdd}]\n",
     "{f}:6:21: the parallels provider makes empty disks only (Parallels keeps disks inside "
     "the VM bundle); leave out image (in vms -> a -> disks -> 0 -> image)"),
    ("utm_size_of_an_imported_image",
     "version: 1\nproject: x\nvms:\n  a:\n    provider: utm\n"
     "    disks: [{image: /i/debian.qcow2, size: 20GiB}]\n",
     "{f}:6:44: UTM cannot resize an imported image (leave out size) "
     "(in vms -> a -> disks -> 0 -> size)"),
    ("utm_apple_backend_bios",
     "version: 1\nproject: x\nvms:\n  a:\n    provider: utm\n    firmware: bios\n"
     "    options: {backend: apple}\n",
     "{f}:6:15: options.backend apple boots with UEFI only (firmware: bios is not possible) "
     "(in vms -> a -> firmware)"),
    ("utm_unknown_backend",
     "version: 1\nproject: x\nvms:\n  a:\n    provider: utm\n    options: {backend: vz}\n",
     "{f}:6:24: Input should be 'qemu' or 'apple', got 'vz' "
     "(in vms -> a -> options -> backend)"),
    ("bad_port",
     'version: 1\nproject: x\ncontainers:\n  c:\n    image: busybox\n'
     '    ports: ["8080:80", "99999:80"]\n',
     "{f}:6:24: port '99999:80' is not [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTO] "
     "(in containers -> c -> ports -> 1)"),
    ("bad_port_protocol",
     'version: 1\nproject: x\ncontainers:\n  c:\n    image: busybox\n'
     '    ports: ["80/icmp"]\n',
     "{f}:6:13: port '80/icmp': protocol must be tcp, udp or sctp "
     "(in containers -> c -> ports -> 0)"),
    ("bad_volume_spec",
     'version: 1\nproject: x\ncontainers:\n  c:\n    image: busybox\n'
     '    volumes:\n      - data\n',
     "{f}:7:9: volume 'data' is not SOURCE:TARGET[:ro|rw] (a volume name or a host path, "
     "then the path in the container) (in containers -> c -> volumes -> 0)"),
    ("bad_restart_policy",
     "version: 1\nproject: x\ncontainers:\n  c:\n    image: busybox\n"
     "    restart: sometimes\n",
     "{f}:6:14: restart policy 'sometimes' is not one of no, always, unless-stopped, "
     "on-failure or on-failure:N (in containers -> c -> restart)"),
    ("reserved_label",
     "version: 1\nproject: x\ncontainers:\n  c:\n    image: busybox\n"
     "    labels: {io.decl.project: other}\n",
     "{f}:6:14: label 'io.decl.project': the io.decl. prefix is reserved for decl's own "
     "marks (in containers -> c -> labels -> io.decl.project)"),
    ("depends_on_missing",
     "version: 1\nproject: x\nvenvs:\n  a:\n    path: /tmp/a\n    depends_on: [venv.b]\n",
     "{f}:6:18: depends_on names 'venv.b', which is not in the manifest; did you mean "
     "'venv.a'? (in venvs -> a -> depends_on -> 0)"),
    ("dependency_cycle",
     "version: 1\nproject: x\nvenvs:\n  a:\n    path: /tmp/a\n    depends_on: [venv.b]\n"
     "  b:\n    path: /tmp/b\n    depends_on: [venv.a]\n",
     "{f}:6:17: dependency cycle: venv.a -> venv.b -> venv.a (in venvs -> a -> depends_on)"),
    ("invalid_project", "version: 1\nproject: My_Lab\n",
     "{f}:2:10: invalid project name 'My_Lab': use lowercase letters, digits and '-', "
     "starting with a letter or digit, at most 63 characters (in project)"),
    ("invalid_resource_name", 'version: 1\nproject: x\nvenvs:\n  "bad name":\n    path: /tmp/a\n',
     "{f}:4:3: invalid name 'bad name': use letters, digits, '-', '_' or '.', starting with "
     "a letter or digit, at most 63 characters (in venvs -> bad name)"),
    ("empty_file", "# nothing here\n",
     "{f}:1:1: the manifest is empty: write at least `version: 1` and `project: NAME`"),
    ("wrong_version", "version: 2\nproject: x\n",
     "{f}:1:10: Input should be 1, got 2 (in version)"),
    ("missing_field", 'version: 1\nproject: x\ncontainers:\n  web: {ports: ["80"]}\n',
     "{f}:4:8: missing required field 'image' (in containers -> web)"),
    ("missing_secret",
     "version: 1\nproject: x\ncontainers:\n  web:\n    image: busybox\n"
     "    env: {A: \"{{ secret('DECL_TEST_NOPE') }}\"}\n",
     "{f}:6:14: secret 'DECL_TEST_NOPE' is not set: export DECL_TEST_NOPE=... or pass "
     "--secret-file (in containers -> web -> env -> A)"),
    ("unknown_host", "version: 1\nproject: x\nvenvs:\n  a: {path: /tmp/a, host: nas}\n",
     "{f}:4:27: unknown host 'nas' (hosts: local) (in venvs -> a -> host)"),
    ("windows_path",
     'version: 1\nproject: x\nwsl:\n  d: {source: {distribution: Ubuntu}, location: "WSL/dev"}\n',
     "{f}:4:49: 'WSL/dev' is not an absolute Windows path (C:\\dir\\... or \\\\server\\share"
     "\\...) (in wsl -> d -> location)"),
    ("not_a_mapping", "- a\n- b\n",
     "{f}:1:1: the manifest must be a mapping with `version` and `project`"),
]


def run_validate(path: str) -> subprocess.CompletedProcess[str]:
    # `plan` needs every secret; `validate` accepts a manifest whose secrets are not set.
    command = "plan" if "missing_secret" in path else "validate"
    return subprocess.run([sys.executable, "-m", "decl", command, "-f", path],
                          capture_output=True, text=True, check=False)


@pytest.mark.parametrize(("name", "text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_manifest_gets_one_clear_message(tmp_path, name, text, expected):
    manifest = tmp_path / f"{name}.yaml"
    manifest.write_text(text)
    done = run_validate(str(manifest))
    assert done.returncode == 1
    assert done.stdout == ""
    first = done.stderr.splitlines()[0]
    assert first == "error: " + expected.format(f=manifest)
    assert "Traceback" not in done.stderr


def test_snippet_points_at_the_column(tmp_path):
    manifest = tmp_path / "m.yaml"
    manifest.write_text("version: 1\nproject: x\nvms:\n  a:\n    cpus: many\n")
    lines = run_validate(str(manifest)).stderr.splitlines()
    assert lines[1] == "   5 |     cpus: many"
    assert lines[2].index("^") == lines[1].index("many")


def test_missing_file(tmp_path):
    done = run_validate(str(tmp_path / "nope.yaml"))
    assert done.returncode == 1
    assert done.stderr.strip() == f"error: manifest file not found: {tmp_path / 'nope.yaml'}"


def test_debug_shows_the_traceback(tmp_path):
    manifest = tmp_path / "m.yaml"
    manifest.write_text("version: 2\nproject: x\n")
    done = subprocess.run([sys.executable, "-m", "decl", "--debug", "validate", "-f",
                           str(manifest)], capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert "Traceback" in done.stderr
