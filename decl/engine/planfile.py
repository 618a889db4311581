"""Saved plans (`decl plan --out FILE`, `decl apply FILE`): written signed, read strictly.

A plan file is JSON: `decl_plan` (the format), `inputs` (how the manifest was read),
`options` (prune, destroy, targets), `plan` (the plan's JSON form: changes, fingerprints),
and `signature`, an HMAC-SHA256 over the canonical JSON of everything else.

The HMAC key is 32 random bytes kept in decl's state directory (`plan-key`, mode 0600),
made the first time a plan is saved. So a plan verifies only for the user (and state
directory) that made it. What this stops: any edit, truncation, a plan from another user or
machine, and a `--json` document passed off as a plan. What it does not stop: someone who
can read that user's key file (that is, who already acts as the user) can sign an edited
plan. A digest anyone could recompute would stop accidents only, so decl does not use one.

On apply the plan is made again; the saved changes must be exactly the fresh ones (same
resources, actions and field changes) and every fingerprint must match, or apply refuses
the plan as stale. Nothing else from the file is trusted: it is read into typed values first.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from typing import Any

from decl.core.plan import FORMAT_VERSION, Action, Plan
from decl.core.planner import PlanOptions
from decl.engine.statedir import StateDirError
from decl.errors import DeclError, PlanError
from decl.files import state_dir, write_atomic

KEY_FILE = "plan-key"
ALGORITHM = "hmac-sha256"
MAX_PLAN_BYTES = 64 * 1024 * 1024
_FIELDS = ("decl_plan", "inputs", "options", "plan", "unchanged_changes", "signature")


class PlanFileError(DeclError):
    """A plan file that is not one decl made (edited, partial, malformed, foreign)."""


def key_path() -> str:
    """Where the HMAC key for plan files lives."""
    return os.path.join(state_dir(), KEY_FILE)


def _read_key(create: bool) -> bytes | None:
    path = key_path()
    try:
        with open(path, "rb") as handle:
            key = handle.read()
        if len(key) >= 32:
            return key
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise StateDirError(path, exc) from None
    if not create:
        return None
    key = secrets.token_bytes(32)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_atomic(path, key, mode=0o600)
    except OSError as exc:
        raise StateDirError(path, exc) from None
    return key


def _canonical(document: dict[str, Any]) -> bytes:
    body = {k: v for k, v in document.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _sign(document: dict[str, Any], key: bytes) -> dict[str, str]:
    return {"algorithm": ALGORITHM, "key_id": hashlib.sha256(key).hexdigest()[:12],
            "value": hmac.new(key, _canonical(document), hashlib.sha256).hexdigest()}


def plan_document(inputs: dict[str, Any], options: PlanOptions, result: Plan,
                  scrub: Any = None) -> dict[str, Any]:
    """The signed plan document (secrets scrubbed before signing, so the file verifies)."""
    document: dict[str, Any] = {
        "decl_plan": FORMAT_VERSION,
        "inputs": inputs,
        "options": {"prune": options.prune, "destroy": options.destroy,
                    "targets": list(options.targets)},
        "plan": result.to_json(),
        # The no-op changes in full, so that `decl show` prints what `decl plan` printed.
        "unchanged_changes": [c.to_json() for c in result.changes if c.action is Action.NOOP],
    }
    document = json.loads(json.dumps(document, default=str))
    if scrub is not None and hasattr(scrub, "data"):
        document = scrub.data(document)
    key = _read_key(create=True)
    assert key is not None
    document["signature"] = _sign(document, key)
    return document


def write_plan(path: str, document: dict[str, Any]) -> None:
    """Write the plan file atomically, readable by its owner only (mode 0600). Keys keep
    the order `plan --json` prints them in (the signature is over a canonical form), so
    `decl show --json` gives the same bytes."""
    text = json.dumps(document, indent=2)
    try:
        write_atomic(path, (text + "\n").encode(), mode=0o600)
    except OSError as exc:
        raise DeclError(f"cannot write the plan file {path}: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class SavedPlan:
    """A verified plan file, read into typed values."""

    path: str
    file: str
    var_assignments: tuple[str, ...]
    var_files: tuple[str, ...]
    secret_files: tuple[str, ...]
    options: PlanOptions
    plan: dict[str, Any]
    unchanged: tuple[dict[str, Any], ...] = ()


def read_plan_file(path: str, purpose: str = "applied") -> SavedPlan:
    """Read and verify a plan file; any doubt is one PlanFileError that says what is wrong
    (`purpose`: what the caller would do with it, for the message: applied, shown)."""
    refuse = f"{path} cannot be {purpose}"
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_PLAN_BYTES + 1)
    except FileNotFoundError:
        raise PlanFileError(f"plan file not found: {path}") from None
    except IsADirectoryError:
        raise PlanFileError(f"{refuse}: it is a directory") from None
    except OSError as exc:
        raise PlanFileError(f"cannot read the plan file {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_PLAN_BYTES:
        raise PlanFileError(f"{refuse}: larger than {MAX_PLAN_BYTES} bytes, not a decl plan")
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise PlanFileError(f"{refuse}: it is not complete JSON (cut short or edited?); make "
                            "it again with `decl plan --out FILE`") from None
    if not isinstance(document, dict):
        raise PlanFileError(f"{refuse}: not a decl plan file")
    if "decl_plan" not in document and "format_version" in document:
        raise PlanFileError(f"{refuse}: it is the output of `decl plan --json`, which is for "
                            "reading; save a plan to apply with `decl plan --out FILE`")
    if document.get("decl_plan") != FORMAT_VERSION or set(document) != set(_FIELDS):
        raise PlanFileError(f"{refuse}: not a decl plan file (format {FORMAT_VERSION}), or "
                            "parts of it are missing or were added")
    _verify(document, refuse)
    return _typed(path, document, refuse)


def _verify(document: dict[str, Any], refuse: str) -> None:
    signature = document.get("signature")
    if not isinstance(signature, dict) or signature.get("algorithm") != ALGORITHM \
            or not isinstance(signature.get("value"), str):
        raise PlanFileError(f"{refuse}: it carries no valid signature")
    key = _read_key(create=False)
    if key is None:
        raise PlanFileError(f"{refuse}: there is no plan key at {key_path()}, so it was not "
                            "made by this user with this state directory; make the plan "
                            "again here")
    expected = _sign(document, key)
    if signature.get("key_id") != expected["key_id"]:
        raise PlanFileError(f"{refuse}: it was signed by another user, machine or state "
                            "directory; make the plan again here")
    if not hmac.compare_digest(signature["value"], expected["value"]):
        raise PlanFileError(f"{refuse}: it was changed after `decl plan` wrote it (the "
                            "signature does not match); make the plan again")


def _strings(value: Any, what: str, refuse: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PlanFileError(f"{refuse}: {what} is not a list of strings")
    return tuple(value)


def _typed(path: str, document: dict[str, Any], refuse: str) -> SavedPlan:
    inputs, options, plan = document["inputs"], document["options"], document["plan"]
    if not isinstance(inputs, dict) or not isinstance(inputs.get("file"), str) \
            or not inputs["file"]:
        raise PlanFileError(f"{refuse}: inputs.file is not a file name")
    if not isinstance(options, dict) or not all(
            isinstance(options.get(k), bool) for k in ("prune", "destroy")):
        raise PlanFileError(f"{refuse}: options are malformed")
    if not isinstance(plan, dict) or not isinstance(plan.get("changes"), list) \
            or not isinstance(plan.get("manifest_fingerprint"), str) \
            or not isinstance(plan.get("observed_fingerprints"), dict):
        raise PlanFileError(f"{refuse}: the plan inside is malformed")
    unchanged = document["unchanged_changes"]
    if not isinstance(unchanged, list) or not all(isinstance(c, dict) for c in unchanged):
        raise PlanFileError(f"{refuse}: its unchanged resources are malformed")
    return SavedPlan(
        path=path, file=inputs["file"],
        var_assignments=_strings(inputs.get("var_assignments", []), "inputs.var_assignments",
                                 refuse),
        var_files=_strings(inputs.get("var_files", []), "inputs.var_files", refuse),
        secret_files=_strings(inputs.get("secret_files", []), "inputs.secret_files", refuse),
        options=PlanOptions(prune=options["prune"], destroy=options["destroy"],
                            targets=_strings(options.get("targets", []), "options.targets",
                                             refuse)),
        plan=plan, unchanged=tuple(unchanged),
    )


def _change_key(change: dict[str, Any]) -> str:
    return json.dumps({k: change.get(k) for k in ("address", "host", "action", "fields",
                                                  "orphan", "provider")},
                      sort_keys=True, default=str)


def check_stale(saved: dict[str, Any], fresh: Plan, scrub: Any = None) -> None:
    """Refuse a saved plan when the manifest, any observed resource, or the changes moved.

    `saved` is the `plan` part of the file. The saved changes must be exactly those decl
    would make now: apply carries out the saved plan or nothing.
    """
    moved: list[str] = []
    if saved.get("manifest_fingerprint") != fresh.manifest_fingerprint:
        moved.append("the manifest (or its variables or secrets) changed")
    before = saved.get("observed_fingerprints") or {}
    after = fresh.observed_fingerprints
    for address in sorted(set(before) | set(after)):
        if before.get(address) != after.get(address):
            was, now = before.get(address, "absent"), after.get(address, "absent")
            if was == "absent":
                moved.append(f"{address} appeared")
            elif now == "absent":
                moved.append(f"{address} disappeared")
            else:
                moved.append(f"{address} changed")
    fresh_json = fresh.to_json()
    if scrub is not None and hasattr(scrub, "data"):
        fresh_json = scrub.data(json.loads(json.dumps(fresh_json, default=str)))
    else:
        fresh_json = json.loads(json.dumps(fresh_json, default=str))
    saved_changes = sorted(_change_key(c) for c in saved.get("changes", [])
                           if isinstance(c, dict))
    fresh_changes = sorted(_change_key(c) for c in fresh_json["changes"])
    if not moved and saved_changes != fresh_changes:
        moved.append("the changes decl would make now are not the saved ones")
    if moved:
        raise PlanError("the saved plan is stale, run `decl plan` again: " + "; ".join(moved))
