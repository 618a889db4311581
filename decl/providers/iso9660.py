"""Read the files in the root directory of an ISO 9660 image (a cloud-init seed), pure.

Only what a NoCloud seed needs: the primary volume descriptor, the root directory's file
records, their Rock Ridge names (NM entries, as genisoimage -rock and xorriso write them),
else their ISO 9660 names without the `;1` version.
"""

from __future__ import annotations

SECTOR = 2048


def _names(record: bytes, name_length: int) -> tuple[str, str | None]:
    """(ISO 9660 name, Rock Ridge name or None) of one directory record."""
    raw = record[33:33 + name_length]
    iso = raw.decode("ascii", "replace").split(";", 1)[0].rstrip(".")
    start = 33 + name_length + (1 if name_length % 2 == 0 else 0)
    area = record[start:]
    rock: str | None = None
    index = 0
    while index + 4 <= len(area):
        tag, length = area[index:index + 2], area[index + 2]
        if length < 4:
            break
        if tag == b"NM":
            rock = (rock or "") + area[index + 5:index + length].decode("utf-8", "replace")
        index += length
    return iso, rock


def root_files(image: bytes) -> dict[str, bytes]:
    """name -> content of each file in the root directory (Rock Ridge names when present,
    lower-cased ISO names otherwise). ValueError when `image` is not an ISO 9660 image."""
    pvd = image[16 * SECTOR:17 * SECTOR]
    if len(pvd) < SECTOR or pvd[0] != 1 or pvd[1:6] != b"CD001":
        raise ValueError("not an ISO 9660 image (no primary volume descriptor)")
    root = pvd[156:156 + 34]
    extent = int.from_bytes(root[2:6], "little")
    size = int.from_bytes(root[10:14], "little")
    directory = image[extent * SECTOR:extent * SECTOR + size]
    files: dict[str, bytes] = {}
    offset = 0
    while offset < len(directory):
        length = directory[offset]
        if length == 0:  # records do not cross sectors: skip to the next one
            offset = (offset // SECTOR + 1) * SECTOR
            continue
        record = directory[offset:offset + length]
        offset += length
        flags, name_length = record[25], record[32]
        if flags & 0x02 or name_length == 1 and record[33] in (0, 1):
            continue  # a directory, or the . and .. entries
        iso, rock = _names(record, name_length)
        start = int.from_bytes(record[2:6], "little") * SECTOR
        data_length = int.from_bytes(record[10:14], "little")
        files[rock or iso.lower()] = image[start:start + data_length]
    return files
