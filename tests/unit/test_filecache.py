"""FileCache: a value computed from a file is kept while the file stays the same."""

from __future__ import annotations

import os
import threading
import time

from decl.connections.filecache import FileCache


def test_kept_while_the_file_is_unchanged_then_computed_again(tmp_path):
    path = tmp_path / "known_hosts"
    path.write_text("one\n")
    cache = FileCache()
    reads: list[str] = []

    def read() -> str:
        reads.append(path.read_text())
        return reads[-1]

    assert cache.get("k", str(path), read) == "one\n"
    assert cache.get("k", str(path), read) == "one\n"
    assert len(reads) == 1
    with open(path, "a") as handle:  # a line appended (accept_new_host_key)
        handle.write("two\n")
    assert cache.get("k", str(path), read) == "one\ntwo\n"
    replacement = tmp_path / "new"
    replacement.write_text("ONE\nTWO\n")  # same size, another file moved in place
    os.replace(replacement, path)
    assert cache.get("k", str(path), read) == "ONE\nTWO\n"
    assert len(reads) == 3


def test_a_missing_file_is_asked_every_time(tmp_path):
    cache = FileCache()
    calls = []
    for _ in range(2):
        cache.get("k", str(tmp_path / "absent"), lambda: calls.append(1))
    assert len(calls) == 2


def test_keys_are_apart(tmp_path):
    path = tmp_path / "key"
    path.write_text("x")
    cache = FileCache()
    assert cache.get(("key", "a"), str(path), lambda: "with a") == "with a"
    assert cache.get(("key", "b"), str(path), lambda: "with b") == "with b"
    assert cache.get(("key", "a"), str(path), lambda: "again") == "with a"


def test_threads_asking_at_once_compute_once(tmp_path):
    path = tmp_path / "key"
    path.write_text("x")
    cache = FileCache()
    calls = []

    def slow() -> str:
        calls.append(1)
        time.sleep(0.2)
        return "value"

    answers: list[str] = []
    threads = [threading.Thread(target=lambda: answers.append(cache.get("k", str(path), slow)))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == ["value"] * 8 and len(calls) == 1
