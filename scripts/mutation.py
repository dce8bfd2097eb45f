"""Mutation score per module: ``make mutation``.

Each module listed under ``[tool.flask_stash.mutation]`` in ``pyproject.toml`` is mutated by
mutmut 3 on its own, against only its own fast (non-server) tests: one mutmut run per module,
in a work directory of its own (``.mutation/<module>/``) whose generated ``pyproject.toml``
narrows mutmut to that module and those tests. mutmut forks a fresh process for every mutant.

Score = detected mutants / (all mutants - accepted survivors). Detected: a test failed, the
tests timed out, or the process crashed. Accepted survivors are the equivalent mutants listed
in ``scripts/mutation-accepted.txt``, one per line with the reason. The run fails when an
enforced module scores below the threshold, or when one of its accepted survivors is in fact
detected or no longer exists (the list must stay exact). Measured modules are only reported.

Usage: ``python scripts/mutation.py [module-path ...] [--keep]``.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

if sys.version_info < (3, 11):
    sys.exit("make mutation needs Python 3.11 or later (tomllib)")

import tomllib

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".mutation"
ACCEPTED_FILE = ROOT / "scripts" / "mutation-accepted.txt"
CORE = "src/flask_stash/core"

# mutmut's exit codes per mutant (mutmut/stats.py).
DETECTED = {1: "killed", 3: "killed", 36: "timeout", 24: "timeout", -24: "timeout",
            152: "timeout", 255: "timeout", -11: "crash", -9: "crash"}  # fmt: skip
SURVIVED = {0: "survived", 5: "no tests", 33: "no tests"}


@dataclass(frozen=True)
class Target:
    path: str  # relative to the repository, e.g. "src/flask_stash/core/keys.py"
    tests: tuple[str, ...]
    enforced: bool
    #: pytest arguments of this module alone (a backend's tests need its real server).
    pytest_args: tuple[str, ...] | None = None


@dataclass
class Score:
    target: Target
    detected: int
    accepted: list[str]
    survivors: list[str]  # neither detected nor accepted
    wrongly_accepted: list[str]  # listed as accepted but detected
    seconds: float

    @property
    def counted(self) -> int:
        return self.detected + len(self.survivors)

    @property
    def ratio(self) -> float:
        return self.detected / self.counted if self.counted else 1.0


def load_settings() -> tuple[float, list[str], list[Target]]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    settings = data["tool"]["flask_stash"]["mutation"]
    targets = [
        Target(
            m["path"],
            tuple(m["tests"]),
            bool(m["enforced"]),
            tuple(m["pytest_args"]) if "pytest_args" in m else None,
        )
        for m in settings["modules"]
    ]
    check_paths_exist(targets)
    check_every_module_listed(targets)
    return float(settings["threshold"]), list(settings.get("pytest_args", [])), targets


def check_paths_exist(targets: list[Target]) -> None:
    """Stop before mutating when a configured module or test file has moved: pytest would
    otherwise collect nothing for it and every mutant would count as surviving."""
    missing = [
        path
        for target in targets
        for path in (target.path, *(test.split("::")[0] for test in target.tests))
        if not (ROOT / path).exists()
    ]
    if missing:
        sys.exit(f"pyproject.toml [tool.flask_stash.mutation] names missing paths: {missing}")


def check_every_module_listed(targets: list[Target]) -> None:
    """Stop when a module of ``flask_stash.core`` with code of its own is not listed: a new
    module is measured from its first commit, not when someone remembers it."""
    listed = {target.path for target in targets}
    unlisted = [
        path
        for path in sorted(str(p.relative_to(ROOT)) for p in (ROOT / CORE).rglob("*.py"))
        if path not in listed and _has_code(ROOT / path)
    ]
    if unlisted:
        sys.exit(f"pyproject.toml [tool.flask_stash.mutation] does not list {unlisted}")


def _has_code(path: Path) -> bool:
    """Whether a module defines functions or classes (a package's re-exports do not)."""
    tree = ast.parse(path.read_text("utf-8"))
    return any(isinstance(node, (ast.FunctionDef, ast.ClassDef)) for node in ast.walk(tree))


def load_accepted() -> dict[str, str]:
    """``mutant name -> reason`` from the accepted-survivors list (``name  # reason``)."""
    accepted: dict[str, str] = {}
    for number, line in enumerate(ACCEPTED_FILE.read_text("utf-8").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        name, sep, reason = text.partition("#")
        if not sep or not reason.strip():
            sys.exit(f"{ACCEPTED_FILE.name}:{number}: every accepted survivor needs a # reason")
        accepted[name.strip()] = reason.strip()
    return accepted


def module_name(path: str) -> str:
    return path.removeprefix("src/").removesuffix(".py").replace("/", ".")


def toml_value(value: object) -> str:
    # JSON strings, lists, booleans and numbers are valid TOML too.
    return json.dumps(value)


def mutmut_config(target: Target, pytest_args: list[str], pytest_ini: dict[str, object]) -> str:
    lines = [
        "[tool.mutmut]",
        f"source_paths = {toml_value(['src'])}",
        f"only_mutate = {toml_value([target.path])}",
        f"pytest_add_cli_args = {toml_value(pytest_args)}",
        f"pytest_add_cli_args_test_selection = {toml_value(list(target.tests))}",
        # Every result comes from this run: no cache from an earlier one.
        "use_git_change_detection = false",
        "",
        "[tool.pytest.ini_options]",
    ]
    lines += [f"{key} = {toml_value(value)}" for key, value in pytest_ini.items()]
    return "\n".join(lines) + "\n"


def prepare(target: Target, pytest_args: list[str], keep: bool) -> Path:
    workdir = WORK / module_name(target.path)
    if workdir.exists() and not keep:
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    for folder in ("src", "tests"):
        shutil.rmtree(workdir / folder, ignore_errors=True)
        shutil.copytree(
            ROOT / folder, workdir / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    pytest_ini = dict(project["tool"]["pytest"]["ini_options"])
    pytest_ini.pop("testpaths", None)
    own_args = list(target.pytest_args) if target.pytest_args is not None else pytest_args
    (workdir / "pyproject.toml").write_text(mutmut_config(target, own_args, pytest_ini))
    return workdir


def run_mutmut(target: Target, workdir: Path) -> float:
    mutmut = Path(sys.executable).with_name("mutmut")
    # Test servers run in pytest's temporary directories: under this one, found again below.
    scratch = workdir / "tmp"
    scratch.mkdir(exist_ok=True)
    env = dict(
        os.environ, HYPOTHESIS_PROFILE="ci", PYTHONDONTWRITEBYTECODE="1", TMPDIR=str(scratch)
    )
    started = time.monotonic()
    log = workdir / "mutmut.log"
    with log.open("w") as out:
        try:
            code = subprocess.call(
                [str(mutmut), "run", "--max-children", str(os.cpu_count() or 2)],
                cwd=workdir,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        finally:
            stop_servers_under(scratch)
    if code != 0:
        sys.stdout.write(log.read_text("utf-8", "replace")[-4000:])
        sys.exit(f"mutmut failed on {target.path} (exit {code}); log: {log}")
    return time.monotonic() - started


def stop_servers_under(scratch: Path) -> None:
    """Kill servers a mutant's test run left behind: mutmut kills a timed-out mutant's
    process without running its fixtures' teardown, so its redis-server stays up."""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cwd = Path(os.readlink(proc / "cwd"))
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if cwd.is_relative_to(scratch):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(proc.name), signal.SIGKILL)


def score(target: Target, workdir: Path, accepted: dict[str, str], seconds: float) -> Score:
    meta_path = workdir / "mutants" / (target.path + ".meta")
    codes: dict[str, int | None] = json.loads(meta_path.read_text("utf-8"))["exit_code_by_key"]
    result = Score(target, 0, [], [], [], seconds)
    for name, code in sorted(codes.items()):
        if code in DETECTED:
            result.detected += 1
            if name in accepted:
                result.wrongly_accepted.append(name)
        elif name in accepted:
            result.accepted.append(name)
        else:
            if code not in SURVIVED:
                name = f"{name} ({code})"  # not checked, suspicious, ...: not a kill
            result.survivors.append(name)
    return result


def report(result: Score, threshold: float, accepted: dict[str, str]) -> bool:
    """Print one module's score; whether it passes (measured modules always pass)."""
    target = result.target
    prefix = module_name(target.path) + "."
    seen = set(result.accepted + result.wrongly_accepted)
    stale = sorted(name for name in accepted if name.startswith(prefix) and name not in seen)
    below = result.ratio < threshold
    print(
        f"{target.path}: {result.ratio:.1%} ({result.detected}/{result.counted} detected, "
        f"{len(result.accepted)} accepted as equivalent, {result.seconds:.0f} s) "
        f"[{'enforced' if target.enforced else 'measured'}]"
        + (f" BELOW {threshold:.0%}" if below else "")
    )
    for name in result.survivors:
        print(f"    survived: {name}")
    for name in result.wrongly_accepted:
        print(f"    listed as accepted but detected (remove the line): {name}")
    for name in stale:
        print(f"    listed as accepted but no such mutant (remove the line): {name}")
    return not target.enforced or not (below or result.wrongly_accepted or stale)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="module paths (default: every listed one)")
    parser.add_argument("--keep", action="store_true", help="reuse mutmut's cached results")
    options = parser.parse_args()
    threshold, pytest_args, targets = load_settings()
    if options.modules:
        targets = [t for t in targets if t.path in options.modules]
    accepted = load_accepted()
    started = time.monotonic()
    results = []
    for target in targets:
        workdir = prepare(target, pytest_args, options.keep)
        seconds = run_mutmut(target, workdir)
        results.append(score(target, workdir, accepted, seconds))
    print(f"\nmutation scores (threshold {threshold:.0%} on enforced modules):")
    verdicts = [report(result, threshold, accepted) for result in results]  # print them all
    ok = all(verdicts)
    print(f"total {time.monotonic() - started:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
