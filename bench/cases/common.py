"""What every bench case shares: the clean environment, timing, and the records it makes."""

from __future__ import annotations

import os
import pathlib
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field

ROOT = pathlib.Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.wheelhouse import make_wheel  # noqa: E402


def interpreter() -> str:
    """The Python that runs decl in the bench: this one, by a path that stays in its venv.

    Outside a venv the real file (a pyenv shim would cost 0.09 s a start); inside one the
    venv's own `bin/python` (its realpath is the base interpreter, which lacks the venv's
    packages: decl, pydantic ...).
    """
    if sys.prefix != sys.base_prefix:
        return os.path.abspath(sys.executable)
    return os.path.realpath(sys.executable)


PYTHON = interpreter()
DECL = [PYTHON, "-m", "decl"]
PACKAGES = ["alpha", "beta", "gamma"]
CLEAN = {"PIP_CONFIG_FILE": "/dev/null", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
         "PIP_NO_INPUT": "1", "UV_NO_CONFIG": "1", "NO_COLOR": "1",
         "ANSIBLE_NOCOLOR": "1", "ANSIBLE_HOST_KEY_CHECKING": "0",
         "ANSIBLE_RETRY_FILES_ENABLED": "0", "ANSIBLE_LOCALHOST_WARNING": "0",
         "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0"}
DROP = ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT",
        "PYTHONDONTWRITEBYTECODE",  # installed tools have their byte code; so does decl
        "PIP_REQUIRE_VIRTUALENV", "VIRTUAL_ENV", "PYTHONPATH")


class BenchError(RuntimeError):
    """A command of the bench failed: the figures would mean nothing."""


@dataclass
class Result:
    """The samples of one measurement: one case, one tool, one N, one phase."""

    case: str          # venvs | containers | plan | startup
    tool: str          # decl | ansible | pyinfra | compose | ...
    n: int
    phase: str         # create | noop | plan | version
    samples: list[float] = field(default_factory=list)
    note: str = ""
    cpu: list[float] = field(default_factory=list)  # user + system seconds, where recorded

    @property
    def median(self) -> float:
        """Median of the samples (seconds)."""
        return statistics.median(self.samples)

    @property
    def spread(self) -> float:
        """max - min of the samples (seconds)."""
        return max(self.samples) - min(self.samples)

    def as_dict(self) -> dict:
        """JSON-ready, with the median and spread (and the CPU median when recorded)."""
        extra = {"cpu_median": statistics.median(self.cpu)} if self.cpu else {}
        return {**asdict(self), "median": self.median, "spread": self.spread, **extra}


@dataclass
class Context:
    """What a case gets from the harness."""

    work: pathlib.Path          # a temp directory of the run's own
    wheels: pathlib.Path        # the local wheelhouse
    env: dict[str, str]         # the clean environment every tool runs in
    peers: object               # bench.peers.Peers
    sizes: list[int]
    repeat: int                 # runs of each measurement, at most
    time_budget: float          # seconds: no further run once a measurement took this long
    parallelism: int
    engine: object | None = None  # tests.docker_engine.Engine when containers are measured
    stability_runs: int = 0     # no-op applies of decl-p1 on containers, exit codes counted
    log: object = print

    def enough(self, result: Result) -> bool:
        """Whether a measurement has its runs: REPEAT of them, or fewer that took the time
        budget already (a long run has a small spread; its repetitions would cost minutes)."""
        return bool(result.samples) and (len(result.samples) >= self.repeat or
                                         sum(result.samples) >= self.time_budget)


def clean_env(work: pathlib.Path, extra_path: list[str] | None = None) -> dict[str, str]:
    """The environment every tool runs in: no machine pip config, real interpreter first,
    this checkout's decl on PYTHONPATH.

    HOME and decl's state directory are under `work`, so that no tool writes to the real
    home (decl's venv index, ~/.ansible, caches) and every run starts from the same state.
    """
    (work / "home").mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **CLEAN, "DECL_STATE_DIR": str(work / "state"),
           "HOME": str(work / "home")}
    for key in DROP:
        env.pop(key, None)
    head = [os.path.dirname(PYTHON), *(extra_path or [])]
    env["PATH"] = os.pathsep.join([*head, env.get("PATH", "")])
    env["PYTHONPATH"] = str(ROOT)  # this checkout's decl, whatever is installed
    return env


def make_wheelhouse(directory: pathlib.Path) -> pathlib.Path:
    """alpha, beta (needs gamma), gamma: three tiny wheels written by hand."""
    make_wheel(directory, "alpha", "1.0")
    make_wheel(directory, "beta", "1.0", ["gamma"])
    make_wheel(directory, "gamma", "1.0")
    return directory


def run(argv: list[str], env: dict[str, str], cwd: pathlib.Path | None = None,
        ok: tuple[int, ...] = (0,), timeout: float = 1800) -> subprocess.CompletedProcess:
    """Run a command that must succeed; BenchError with its output if not."""
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
    if done.returncode not in ok:
        raise BenchError(f"{' '.join(argv)} exited {done.returncode}:\n"
                         f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def timed(argv: list[str], env: dict[str, str], cwd: pathlib.Path | None = None,
          ok: tuple[int, ...] = (0,)) -> tuple[float, subprocess.CompletedProcess]:
    """Seconds one command took (wall clock), and its result; it must succeed."""
    started = time.perf_counter()
    done = run(argv, env, cwd, ok)
    return time.perf_counter() - started, done


def timed_cpu(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, the command and what it waited for) of
    one command that must succeed: on a shared machine the CPU time is the steadier one."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds, _ = timed(argv, env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def load_average() -> float:
    """The one-minute load average."""
    return os.getloadavg()[0]
