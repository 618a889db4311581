"""Parse time of large manifests: `decl validate` of 1, 2, 4 and 8 MB files.

N is the size in MB. The manifest is YAML as a person writes it (block style, one venv a
few lines long), grown until it reaches N MB, in two variants: `plain` (literal values
only: YAML, models, the providers' checks) and `templated` (the same with a Jinja template
in every path, `{{ env('HOME') }}/venvs/...`).
`validate` reads, renders and checks without touching any machine: the floor of every
command on a manifest that size.
"""

from __future__ import annotations

from bench.cases.common import DECL, Context, Result, timed_cpu

TEMPLATED = """  tools-{i:06d}:
    path: "{{{{ env('HOME') }}}}/venvs/tools-{i:06d}"
    python: "3.11"
    packages:
      - alpha==1.0
      - beta>=1.0
      - gamma
    no_index: true
"""
PLAIN = TEMPLATED.replace("{{{{ env('HOME') }}}}", "/home/someone")


def manifest_text(megabytes: int, entry: str = TEMPLATED) -> tuple[str, int]:
    """A manifest of at least `megabytes` MB; its text and number of venvs."""
    target = megabytes * 1024 * 1024
    parts = [f"version: 1\nproject: bench-parse-{megabytes}\nvenvs:\n"]
    size, i = len(parts[0]), 0
    while size < target:
        text = entry.format(i=i)
        parts.append(text)
        size += len(text)
        i += 1
    return "".join(parts), i


def run_case(ctx: Context) -> list[Result]:
    """Median `decl validate` time for each size and variant."""
    results = []
    for megabytes in ctx.sizes:
        for variant, entry in (("plain", PLAIN), ("templated", TEMPLATED)):
            text, count = manifest_text(megabytes, entry)
            path = ctx.work / f"parse-{megabytes}mb-{variant}.yaml"
            path.write_text(text)
            result = Result("parse", "decl", megabytes, f"validate {variant}",
                            note=f"{len(text) / 1e6:.2f} MB, {count} venvs")
            for _ in range(ctx.repeat):
                if ctx.enough(result):
                    break
                # Past the 5 MiB default limit on purpose: raise it for this measurement.
                env = {**ctx.env, "DECL_MAX_MANIFEST_SIZE": str(2 * len(text.encode()))}
                seconds, cpu = timed_cpu([*DECL, "validate", "-f", str(path)], env)
                result.samples.append(seconds)
                result.cpu.append(cpu)
            ctx.log(f"parse {megabytes} MB {variant} ({count} venvs): {result.median:.2f} s")
            results.append(result)
            path.unlink()
    return results
