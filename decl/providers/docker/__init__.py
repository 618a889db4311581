"""The Docker provider package (the docker SDK is imported only when an engine is used)."""

from decl.providers.docker.provider import DockerProvider

__all__ = ["DockerProvider"]
