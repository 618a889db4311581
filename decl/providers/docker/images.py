"""Images: what a reference resolves to locally or in its registry, and pulls with progress."""

from __future__ import annotations

from typing import Any

from decl.errors import ProviderError
from decl.providers.base import Progress
from decl.providers.docker import spec as canon
from decl.providers.docker.reader import EngineError, EngineNotFound, Reader


class ImageCache:
    """Image inspect data by reference or ID, for one discovery pass."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self._by_ref: dict[str, dict[str, Any] | None] = {}
        self._remote: dict[str, str | None] = {}

    def get(self, ref: str) -> dict[str, Any] | None:
        """Inspect data of a local image (by reference or ID), or None when absent."""
        if not ref:
            return None
        if ref not in self._by_ref:
            try:
                self._by_ref[ref] = self.reader.inspect_image(ref)
            except EngineNotFound:
                self._by_ref[ref] = None
        return self._by_ref[ref]

    def remote_digest(self, ref: str) -> str | None:
        """The manifest digest the registry gives for a reference now (None if unknown)."""
        if ref not in self._remote:
            try:
                data = self.reader.inspect_distribution(ref)
                self._remote[ref] = (data.get("Descriptor") or {}).get("digest")
            except (EngineNotFound, EngineError, OSError):
                self._remote[ref] = None
        return self._remote[ref]


def compare_value(
    want_ref: str, pull: str, container: dict[str, Any], images: ImageCache
) -> str:
    """What a container's image compares as against the manifest's reference.

    Equal to `want_ref` when the container runs what the manifest asks: by image ID, or by
    name while the tag may have moved locally (a moved tag is a change only with
    `pull: always`, where the registry's current digest decides).
    """
    running_id = container.get("Image") or ""
    given = canon.image_ref((container.get("Config") or {}).get("Image") or "")
    local = images.get(want_ref)
    if pull == "always":
        digest = images.remote_digest(want_ref)
        if digest:
            running = images.get(running_id) or {}
            name = canon.split_image_ref(want_ref)[0]
            same = any(d == f"{name}@{digest}" for d in running.get("RepoDigests") or [])
            if same:
                return want_ref
            return f"{given} ({running_id[7:19]}, the registry now has {digest[7:19]})"
        same = local is not None and local.get("Id") == running_id
    else:
        same = (local is not None and local.get("Id") == running_id) or given == want_ref
    return want_ref if same else f"{given} ({running_id[7:19]})"


def pull(client: Any, ref: str, progress: Progress) -> None:
    """Pull an image, reporting download progress; ProviderError names the image and why."""
    import docker.errors

    name, tag = canon.split_image_ref(ref)
    progress(f"pulling {ref}", 0.0)
    layers: dict[str, tuple[int, int]] = {}
    last = -1.0
    try:
        for event in client.api.pull(name, tag=tag, stream=True, decode=True):
            if "error" in event:
                detail = (event.get("errorDetail") or {}).get("message") or event["error"]
                raise ProviderError(f"pulling image {ref} failed: {detail}")
            detail = event.get("progressDetail") or {}
            if event.get("id") and detail.get("total"):
                layers[event["id"]] = (int(detail.get("current") or 0), int(detail["total"]))
                done = sum(c for c, _ in layers.values())
                total = sum(t for _, t in layers.values())
                fraction = min(done / total, 1.0) if total else None
                if fraction is not None and fraction - last >= 0.05:
                    last = fraction
                    progress(f"pulling {ref}: {done // 1024} KiB of {total // 1024} KiB", fraction)
    except docker.errors.APIError as exc:
        raise ProviderError(f"pulling image {ref} failed: {exc.explanation or exc}") from None
    except docker.errors.DockerException as exc:
        raise ProviderError(f"pulling image {ref} failed: {exc}") from None
    progress(f"pulled {ref}", 1.0)


def ensure(client: Any, ref: str, policy: str, progress: Progress) -> None:
    """Make the image available as the pull policy says (missing, always, never)."""
    import docker.errors

    if policy == "always":
        pull(client, ref, progress)
        return
    try:
        client.api.inspect_image(ref)
        return
    except docker.errors.NotFound:
        pass
    if policy == "never":
        raise ProviderError(f"image {ref} is not on the host and pull: never forbids pulling it")
    pull(client, ref, progress)
