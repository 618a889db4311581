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

    def config(self, image_id: str) -> dict[str, Any] | None:
        """`Id` and `Config` of the image a container runs (by its ID), remembered by the
        reader for the whole run (see Reader.image_config)."""
        if not image_id:
            return None
        return self.reader.image_config(image_id)

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

    def local_is_running() -> bool:  # asked only when needed: one inspect less per container
        local = images.get(want_ref)
        return local is not None and local.get("Id") == running_id

    if pull == "always":
        digest = images.remote_digest(want_ref)
        if digest:
            running = images.get(running_id) or {}
            name = canon.split_image_ref(want_ref)[0]
            same = any(d == f"{name}@{digest}" for d in running.get("RepoDigests") or [])
            if same:
                return want_ref
            return f"{given} ({running_id[7:19]}, the registry now has {digest[7:19]})"
        same = local_is_running()
    else:
        same = given == want_ref or local_is_running()
    return want_ref if same else f"{given} ({running_id[7:19]})"


def human_size(count: float) -> str:
    """Bytes for people: 512 B, 3.1 MiB, 1.2 GiB."""
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if count >= factor:
            return f"{count / factor:.1f} {unit}"
    return f"{int(count)} B"


class PullProgress:
    """How far a pull is, in bytes, from the engine's JSON progress events.

    Each layer is downloaded, then extracted; both count (half each), so the bar does not
    stop at 100 % while the layers are unpacked. A layer whose size the engine has not sent
    yet (still "Waiting") counts as the average of the sizes known; layers that already
    exist locally do not count. Before any size is known the fraction is None.
    """

    def __init__(self) -> None:
        self.layers: dict[str, dict[str, int | None]] = {}

    def event(self, event: dict[str, Any]) -> float | None:
        """Take one event; return the fraction done so far (or None when unknown)."""
        layer_id = event.get("id")
        status = str(event.get("status") or "")
        detail = event.get("progressDetail") or {}
        if not layer_id or status.startswith(("Pulling from", "Digest", "Status")):
            return self.fraction
        if status == "Already exists":
            self.layers.pop(layer_id, None)
            return self.fraction
        layer = self.layers.setdefault(layer_id, {"size": None, "down": 0, "unpacked": 0})
        total = detail.get("total")
        if status == "Downloading" and total:
            layer["size"] = int(total)
            layer["down"] = int(detail.get("current") or 0)
        elif status in ("Verifying Checksum", "Download complete"):
            layer["down"] = layer["size"] or 0
        elif status == "Extracting" and total:
            layer["size"] = layer["size"] or int(total)
            layer["down"] = layer["size"]
            layer["unpacked"] = min(int(detail.get("current") or 0), layer["size"] or 0)
        elif status == "Pull complete":
            layer["down"] = layer["unpacked"] = layer["size"] or 0
            layer["done"] = 1
        return self.fraction

    @property
    def fraction(self) -> float | None:
        """Bytes downloaded and unpacked over twice the image's size."""
        sizes = [lay["size"] for lay in self.layers.values() if lay["size"]]
        if not sizes:
            done = [lay for lay in self.layers.values() if lay.get("done")]
            return 1.0 if self.layers and len(done) == len(self.layers) else None
        average = sum(sizes) / len(sizes)
        total = 0.0
        work = 0.0
        for layer in self.layers.values():
            size = layer["size"] or (0 if layer.get("done") else average)
            total += 2 * size
            work += min(layer["down"] or 0, size) + min(layer["unpacked"] or 0, size)
        return min(work / total, 1.0) if total else None

    @property
    def text(self) -> str:
        """e.g. '3.1 MiB of 7.9 MiB, 2 of 3 layers'."""
        sizes = [lay["size"] or 0 for lay in self.layers.values()]
        down = sum(min(lay["down"] or 0, lay["size"] or 0) for lay in self.layers.values())
        finished = sum(1 for lay in self.layers.values() if lay.get("done"))
        known = f"{human_size(down)} of {human_size(sum(sizes))}, " if any(sizes) else ""
        return f"{known}{finished} of {len(self.layers)} layers"


def pull(client: Any, ref: str, progress: Progress) -> None:
    """Pull an image, reporting download progress; ProviderError names the image and why."""
    import docker.errors

    name, tag = canon.split_image_ref(ref)
    progress(f"pulling {ref}", 0.0)
    reading = PullProgress()
    last = -1.0
    try:
        for event in client.api.pull(name, tag=tag, stream=True, decode=True):
            if "error" in event:
                detail = (event.get("errorDetail") or {}).get("message") or event["error"]
                raise ProviderError(f"pulling image {ref} failed: {detail}")
            fraction = reading.event(event)
            if fraction is not None and fraction - last >= 0.01:
                last = fraction
                progress(f"pulling: {reading.text} ({ref})", fraction)
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
