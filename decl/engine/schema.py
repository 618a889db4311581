"""`decl schema`: the manifest's JSON Schema with each registered provider's options.

The manifest models (decl/manifest/model.py) know no provider; here every VM provider's
options model is added under `$defs` and chosen by `provider` (if/then), so an editor
completes and documents each provider's options.
"""

from __future__ import annotations

from typing import Any

from decl.manifest.model import json_schema
from decl.providers.registry import ProviderLoadError, Registry

# Manifest kinds with a `provider` field, and their definition in the schema.
_PROVIDER_KINDS = {"vm": "Vm"}


def manifest_schema(registry: Registry | None = None) -> dict[str, Any]:
    """The JSON Schema of the manifest, with the options of every loadable provider."""
    registry = registry or Registry()
    schema = json_schema()
    defs: dict[str, Any] = schema.setdefault("$defs", {})
    for kind, definition in _PROVIDER_KINDS.items():
        rules: list[dict[str, Any]] = []
        names: list[str] = []
        for name in registry.names_for(kind):
            try:
                provider = registry.get(name)
            except ProviderLoadError:
                continue
            names.append(name)
            model = provider.option_models.get(kind)
            if model is None:
                continue
            options = model.model_json_schema(ref_template="#/$defs/{model}")
            defs.update(options.pop("$defs", {}))
            title = f"{name.capitalize()}{definition}Options"
            options["title"] = title
            options.setdefault("description", f"`options:` of a {kind} with provider {name}.")
            defs[title] = options
            rules.append({
                "if": {"properties": {"provider": {"const": name}}, "required": ["provider"]},
                "then": {"properties": {"options": {"$ref": f"#/$defs/{title}"}}},
            })
        body = defs[definition]
        provider_field = body["properties"]["provider"]
        provider_field["description"] = (
            f"{provider_field.get('description', '')} Registered: {', '.join(names)}.").strip()
        provider_field["examples"] = names
        if rules:
            body["allOf"] = rules
    return schema
