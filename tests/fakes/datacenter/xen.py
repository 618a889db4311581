"""Fake Xen `xl` over one state directory (named by DECL_FAKE_XEN_STATE).

Behaviour copied from xen-project/xen tools/xl and libxl (sources in docs/facts/xen.md):
- xl keeps no stopped domains: `xl list` shows Domain-0 and the running domains only, with
  the header `Name ... ID   Mem VCPUs<TAB>State<TAB>Time(s)` and rows printed with
  `%-40s %5d %5lu %5d     %c%c%c%c%c%c  %8.1f`;
- `xl create FILE` prints `Parsing config from FILE` on stderr and parses the file with
  libxlu's syntax (KEY = VALUE, `#` comments, strings, numbers, [lists], `;` separators);
  an unreadable file fails with `Failed to read config file: ...` and exit code 3, a libxl
  failure (name in use, a missing disk, a missing bridge) with `libxl: error: ...` lines and
  exit code 3;
- a domain name or id that does not exist: `NAME is an invalid domain identifier (rc=-6)`
  on stderr, exit code 1;
- `xl shutdown [-w] [-F]` prints `Shutting down domain N`; a guest without PV drivers
  refuses unless -F is given; -w waits for the domain to go;
- `xl vcpu-set` beyond maxvcpus and `xl mem-set` beyond maxmem fail with libxl's own
  messages, exit code 1; mem-set sizes default to KiB (`2048m` for MiB).

Test knobs in the state: `guest` of a domain (set from the cfg's name through
`guests: {NAME: KIND}`) is "pv" (default: answers shutdown requests), "none" (no PV drivers)
or "hang" (accepts the request and never goes); `bridges` lists the bridges that exist;
`host_cpus` the physical CPUs.
"""

from __future__ import annotations

import os
import re
import sys
import time
from typing import Any

from tests.fakes.datacenter import state as fstate

ENV = "DECL_FAKE_XEN_STATE"
XEN_VERSION = "4.17.3"
ERROR_NOPARAVIRT = -10  # libxl_types.idl: (-10, "NOPARAVIRT")


def empty_state() -> dict[str, Any]:
    """A Xen host with Domain-0 only."""
    return {"xen_version": XEN_VERSION, "host_cpus": 8, "dom0_mem": 2048, "next_domid": 1,
            "domains": {}, "guests": {}, "bridges": ["xenbr0"], "faults": [], "calls": []}


# -- the config file syntax (libxlu) ------------------------------------------------------

class CfgError(ValueError):
    """A syntax error in a domain config file."""


_TOKEN = re.compile(r"""[ \t\r]*(?:(#[^\n]*)|("(?:[^"\\\n]|\\.)*")|('(?:[^'\\\n]|\\.)*')|"""
                    r"""(0x[0-9a-fA-F]+|[0-9]+)|([A-Za-z_][A-Za-z0-9_]*)|(\n)|(.))""")


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out = []
    line = 1
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            break
        pos = match.end()
        comment, dq, sq, number, ident, newline, other = match.groups()
        if comment is not None:
            continue
        if newline is not None:
            out.append(("sep", "\n", line))
            line += 1
        elif dq is not None or sq is not None:
            raw = (dq or sq)[1:-1]
            out.append(("str", re.sub(r"\\(.)", r"\1", raw), line))
        elif number is not None:
            out.append(("num", number, line))
        elif ident is not None:
            out.append(("id", ident, line))
        elif other is not None and not other.isspace():
            out.append(("sep" if other == ";" else "op", other, line))
    return out


def parse_cfg(text: str, source: str) -> dict[str, Any]:
    """KEY -> value (str, int or list) of a domain config file; CfgError on bad syntax."""
    tokens = _tokens(text)
    values: dict[str, Any] = {}
    index = 0

    def fail(line: int, what: str) -> CfgError:
        return CfgError(f'{source}:{line}: config parsing error near `{what}\': syntax error')

    def value(i: int) -> tuple[Any, int]:
        while i < len(tokens) and tokens[i][1] == "\n":
            i += 1
        if i >= len(tokens):
            raise fail(tokens[-1][2] if tokens else 1, "<end>")
        kind, text_, line = tokens[i]
        if kind == "str":
            return text_, i + 1
        if kind == "num":
            return int(text_, 0), i + 1
        if text_ == "[":
            items: list[Any] = []
            i += 1
            while True:
                while i < len(tokens) and tokens[i][1] == "\n":
                    i += 1
                if i < len(tokens) and tokens[i][1] == "]":
                    return items, i + 1
                item, i = value(i)
                items.append(item)
                while i < len(tokens) and tokens[i][1] == "\n":
                    i += 1
                if i < len(tokens) and tokens[i][1] == ",":
                    i += 1
                elif i < len(tokens) and tokens[i][1] == "]":
                    return items, i + 1
                else:
                    raise fail(tokens[i][2] if i < len(tokens) else line, "<list>")
        raise fail(line, text_)

    while index < len(tokens):
        kind, text_, line = tokens[index]
        if kind == "sep":
            index += 1
            continue
        if kind != "id" or index + 1 >= len(tokens) or tokens[index + 1][1] != "=":
            raise fail(line, text_)
        result, index = value(index + 2)
        values[text_] = result
        if index < len(tokens) and tokens[index][0] != "sep":
            raise fail(tokens[index][2], tokens[index][1])
    return values


def disk_target(spec: str) -> tuple[str | None, str | None]:
    """(target, vdev) of an xl disk spec (xl-disk-configuration(5))."""
    positional: list[str] = []
    named: dict[str, str] = {}
    rest = spec
    while rest:
        part, sep, tail = rest.partition(",")
        part = part.strip()
        if part.startswith("target="):
            named["target"] = rest.strip()[len("target="):]
            break
        if "=" in part:
            key, _, val = part.partition("=")
            named[key.strip()] = val.strip()
        elif part:
            positional.append(part)
        else:
            positional.append("")
        rest = tail if sep else ""
    fields = ["target", "format", "vdev", "access"]
    for name, val in zip(fields, positional, strict=False):
        named.setdefault(name, val)
    target = named.get("target") or None
    if target and not target.startswith("/"):
        target = "/dev/" + target
    return target, named.get("vdev") or None


# -- xl -----------------------------------------------------------------------------------

def main(argv: list[str]) -> int:
    """Entry point of the fake xl."""
    directory = fstate.state_dir(ENV)
    if argv[:1] == ["shutdown"] and "-w" in argv:
        return _shutdown_and_wait(directory, argv[1:])
    with fstate.locked(directory):
        data = fstate.load(directory, empty_state)
        code, out, err = _call(data, argv)
        fstate.save(directory, data)
    sys.stdout.write(out)
    sys.stderr.write(err)
    return code


def _call(data: dict[str, Any], argv: list[str]) -> tuple[int, str, str]:
    data["calls"].append(["xl", *argv])
    fault = fstate.take_fault(data, "xl", " ".join(argv))
    if fault is not None:
        return (int(fault.get("code", 1)), "",
                fault.get("message") or "libxl: error: libxl_domain.c:1523:"
                "libxl__destroy_domid: Domain 1:Non-existant domain\n")
    if not argv:
        return 1, "", "Usage xl [-vfNtT] <subcommand> [args]\n"
    command, args = argv[0], argv[1:]
    handler = COMMANDS.get(command)
    if handler is None:
        return 1, "", "command not implemented\n"  # xl's message for an unknown command
    return handler(data, args)


def _find(data: dict[str, Any], ident: str) -> tuple[str | None, str]:
    """(domain name or None, error) for a name or a domid."""
    if ident in ("0", "Domain-0"):
        return "Domain-0", ""
    for name, dom in data["domains"].items():
        if ident == name or ident == str(dom["domid"]):
            return name, ""
    return None, f"{ident} is an invalid domain identifier (rc=-6)\n"


def _row(name: str, domid: int, mem: int, vcpus: int, flags: str, seconds: float) -> str:
    return f"{name:<40} {domid:5d} {mem:5d} {vcpus:5d}     {flags}  {seconds:8.1f}\n"


def _list(data: dict[str, Any], args: list[str]) -> tuple[int, str, str]:
    flags = [a for a in args if a.startswith("-")]
    names = [a for a in args if not a.startswith("-")]
    if "-l" in flags or "--long" in flags:
        return 1, "", "option `l' is not supported by this fake\n"
    if len(names) > 1:
        return 1, "", "Usage: xl [-v] list [options] [Domain]\n"
    chosen = None
    if names:
        chosen, error = _find(data, names[0])
        if chosen is None:
            return 1, "", error
    out = "Name                                        ID   Mem VCPUs\tState\tTime(s)\n"
    now = time.time()
    if chosen in (None, "Domain-0"):
        out += _row("Domain-0", 0, data["dom0_mem"], data["host_cpus"], "r-----",
                    1234.5 + (now % 1000) / 10)
    for name, dom in sorted(data["domains"].items(), key=lambda kv: kv[1]["domid"]):
        if chosen not in (None, name):
            continue
        flag = "--ps--" if dom.get("shutting_down") else "-b----"
        out += _row(name, dom["domid"], dom["memory"], dom["vcpus"], flag,
                    max(0.0, now - dom["started"]) / 10)
    return 0, out, ""


def _create(data: dict[str, Any], args: list[str]) -> tuple[int, str, str]:
    quiet = "-q" in args or "--quiet" in args
    paused = "-p" in args
    extra = [a for a in args if "=" in a and not a.startswith("-")]
    files = [a for a in args if not a.startswith("-") and "=" not in a]
    if len(files) != 1:
        return 2, "", "'xl create' requires a config file\n"
    path = files[0]
    err = "" if quiet else f"Parsing config from {path}\n"
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        return 3, "", err + f"Failed to read config file: {path}: {exc.strerror}\n"
    try:
        cfg = parse_cfg(text + ("\n" + "\n".join(extra) if extra else ""), path)
    except CfgError as exc:
        return 1, "", err + f"Failed to parse config: {exc}\n"
    name = cfg.get("name")
    if not isinstance(name, str) or not name:
        return 1, "", err + "Domain name must be specified.\n"
    domid = data["next_domid"]
    if name in data["domains"] or name == "Domain-0":
        return 3, "", err + (
            f"libxl: error: libxl_domain.c:339:libxl__domain_rename: Domain {domid}:domain "
            f"with name \"{name}\" already exists.\n"
            f"libxl: error: libxl_create.c:1224:initiate_domain_create: Domain {domid}:"
            "cannot make domain: -6\n")
    kind = cfg.get("type", "pv")
    if kind in ("pv", "pvh") and not (cfg.get("kernel") or cfg.get("bootloader")):
        return 3, "", err + (  # wording unverified
            f"libxl: error: libxl_create.c:1270:initiate_domain_create: Domain {domid}:"
            f"{kind} guest without a kernel or bootloader\n")
    for spec in cfg.get("disk", []):
        target, vdev = disk_target(str(spec))
        if target and not os.path.exists(target):
            return 3, "", err + (
                f"libxl: error: libxl_device.c:397:libxl__device_disk_set_backend: Disk "
                f"vdev={vdev} failed to stat: {target}: No such file or directory\n"
                f"libxl: error: libxl_create.c:1545:domcreate_launch_dm: Domain {domid}:"
                "Unable to set disk defaults for disk 0\n")
    for spec in cfg.get("vif", []):
        bridge = "xenbr0"
        for part in str(spec).split(","):
            key, _, val = part.strip().partition("=")
            if key == "bridge":
                bridge = val
        if bridge not in data["bridges"]:
            return 3, "", err + (
                "libxl: error: libxl_exec.c:117:libxl_report_child_exitstatus: "
                f"/etc/xen/scripts/vif-bridge online [-1] exited with error status 1\n"
                f"libxl: error: libxl_device.c:1286:device_hotplug_child_death_cb: script: "
                f"Could not find bridge device {bridge}\n"
                f"libxl: error: libxl_create.c:1957:domcreate_attach_devices: Domain "
                f"{domid}:unable to add vif devices\n")
    memory = int(cfg.get("memory", 32))
    vcpus = int(cfg.get("vcpus", 1))
    data["next_domid"] += 1
    data["domains"][name] = {
        "domid": domid, "cfg": os.path.abspath(path), "memory": memory,
        "maxmem": int(cfg.get("maxmem", memory)), "vcpus": vcpus,
        "maxvcpus": int(cfg.get("maxvcpus", vcpus)), "type": kind,
        "guest": data["guests"].get(name, "pv"), "started": time.time(),
        "paused": paused,
    }
    return 0, "", err


def _shutdown_request(data: dict[str, Any], name: str, force_acpi: bool
                      ) -> tuple[int, str]:
    """Send the shutdown request; (exit code, stderr). Removes a domain that obeys."""
    dom = data["domains"][name]
    err = f"Shutting down domain {dom['domid']}\n"
    guest = dom.get("guest", "pv")
    if guest == "none":
        if not force_acpi:
            return 1, err + ("PV control interface not available: external graceful "
                             "shutdown not possible.\n"
                             "Use \"-F\" to fallback to ACPI power event.\n"
                             f"shutdown failed (rc={ERROR_NOPARAVIRT})\n")
        err += "PV control interface not available: sending ACPI power button event.\n"
    if guest == "hang":
        dom["shutting_down"] = True
        return 0, err
    del data["domains"][name]
    return 0, err


def _shutdown(data: dict[str, Any], args: list[str]) -> tuple[int, str, str]:
    names = [a for a in args if not a.startswith("-")]
    if not names:
        return 1, "", "You must specify -a or a domain id.\n\n"
    name, error = _find(data, names[0])
    if name is None:
        return 1, "", error
    if name == "Domain-0":
        return 1, "", "shutdown failed (rc=-3)\n"
    code, err = _shutdown_request(data, name, "-F" in args)
    return code, "", err


def _shutdown_and_wait(directory: str, args: list[str]) -> int:
    with fstate.locked(directory):
        data = fstate.load(directory, empty_state)
        data["calls"].append(["xl", "shutdown", *args])
        fault = fstate.take_fault(data, "xl", " ".join(["shutdown", *args]))
        domid = -1
        names = [a for a in args if not a.startswith("-")]
        if fault is not None:
            code, err = int(fault.get("code", 1)), fault.get("message") or \
                "shutdown failed (rc=-3)\n"
        elif not names:
            code, err = 1, "You must specify -a or a domain id.\n\n"
        else:
            name, err = _find(data, names[0])
            code = 1
            if name is not None:
                domid = data["domains"][name]["domid"]
                code, err = _shutdown_request(data, name, "-F" in args)
        fstate.save(directory, data)
    sys.stderr.write(err)
    if code != 0:
        return code
    sys.stderr.write("Waiting for 1 domains\n")
    sys.stderr.flush()
    while True:
        data = fstate.load(directory, empty_state)
        if not any(d["domid"] == domid for d in data["domains"].values()):
            sys.stderr.write(f"Domain {domid} has been shut down, reason code 0\n")
            return 0
        time.sleep(0.1)


def _destroy(data: dict[str, Any], args: list[str]) -> tuple[int, str, str]:
    names = [a for a in args if not a.startswith("-")]
    if not names:
        return 2, "", "'xl destroy' requires at least 1 argument.\n\n"
    name, error = _find(data, names[0])
    if name is None:
        return 1, "", error
    if name == "Domain-0" and "-f" not in args:
        return 1, "", ("Not destroying domain 0; use -f to force.\n"
                       "This can only be done when using a disaggregated hardware domain "
                       "and toolstack.\n\n")
    del data["domains"][name]
    return 0, "", ""


def _vcpu_set(data: dict[str, Any], args: list[str]) -> tuple[int, str, str]:
    names = [a for a in args if not a.startswith("-")]
    if len(names) != 2:
        return 2, "", "'xl vcpu-set' requires at least 2 arguments.\n\n"
    name, error = _find(data, names[0])
    if name is None:
        return 1, "", error
    if not names[1].isdigit():
        return 1, "", "Error: Invalid argument.\n"
    wanted = int(names[1])
    dom = data["domains"][name]
    if wanted > dom["vcpus"] and wanted > data["host_cpus"] and "-i" not in args:
        return 1, "", (f"You are overcommmitting! You have {data['host_cpus']} physical CPUs "
                       f"and want {wanted} vCPUs! Aborting, use --ignore-host to continue\n")
    if wanted > dom["maxvcpus"] or wanted < 1:
        return 1, "", (f"libxl: error: libxl_domain.c:1869:libxl_set_vcpuonline: Domain "
                       f"{dom['domid']}:Requested {wanted} VCPUs, however maxcpus is "
                       f"{dom['maxvcpus']}!: Function not implemented\n"
                       f"libxl_set_vcpuonline failed domid={dom['domid']} "
                       f"max_vcpus={wanted}, rc: -3\n")
    dom["vcpus"] = wanted
    return 0, "", ""


def _mem_kb(text: str) -> int | None:
    match = re.match(r"^([0-9]+)([bBkKmMgGtT]?)$", text)
    if not match:
        return None
    number, unit = int(match[1]), match[2].lower()
    return {"b": number // 1024, "": number, "k": number, "m": number * 1024,
            "g": number * 1024**2, "t": number * 1024**3}[unit]


def _mem_set(data: dict[str, Any], args: list[str]) -> tuple[int, str, str]:
    if len(args) != 2:
        return 2, "", "'xl mem-set' requires at least 2 arguments.\n\n"
    name, error = _find(data, args[0])
    if name is None:
        return 1, "", error
    kb = _mem_kb(args[1])
    if kb is None:
        return 1, "", f"invalid memory size: {args[1]}\n"
    dom = data["domains"][name]
    if kb > dom["maxmem"] * 1024:
        return 1, "", (f"libxl: error: libxl_mem.c:336:libxl_set_memory_target: Domain "
                       f"{dom['domid']}:memory_dynamic_max must be less than or equal to "
                       "memory_static_max\n\n"
                       f"cannot set domid {dom['domid']} dynamic max memory to : {args[1]}\n")
    dom["memory"] = kb // 1024
    return 0, "", ""


def _domid(data: dict[str, Any], args: list[str]) -> tuple[int, str, str]:
    if len(args) != 1:
        return 2, "", "'xl domid' requires at least 1 argument.\n\n"
    if args[0] == "Domain-0":
        return 0, "0\n", ""
    dom = data["domains"].get(args[0])
    if dom is None:
        return 1, "", (f"Can't get domid of domain name '{args[0]}', maybe this domain does "
                       "not exist.\n")
    return 0, f"{dom['domid']}\n", ""


def _info(data: dict[str, Any], args: list[str]) -> tuple[int, str, str]:
    lines = {"host": "xenhost", "nr_cpus": str(data["host_cpus"]),
             "total_memory": "16384", "free_memory": "8192",
             "xen_major": data["xen_version"].split(".")[0],
             "xen_minor": data["xen_version"].split(".")[1],
             "xen_version": data["xen_version"], "xen_caps": "xen-3.0-x86_64 hvm-3.0-x86_64",
             "xend_config_format": "4"}
    if args:
        return 0, "".join(v + "\n" for k, v in lines.items() if k.startswith(args[0])), ""
    return 0, "".join(f"{k:<23}: {v}\n" for k, v in lines.items()), ""


COMMANDS = {"list": _list, "create": _create, "shutdown": _shutdown, "destroy": _destroy,
            "vcpu-set": _vcpu_set, "mem-set": _mem_set, "domid": _domid, "info": _info}
