"""Run every case of :mod:`.cases` as a real ``partialface`` process and print what each gives, as markdown.

    python -m tests.bad_inputs.tour > outcomes.md              # the installed / PYTHONPATH version
    PYTHONPATH=/old/checkout/src python -m tests.bad_inputs.tour   # the same cases on another version

Each case runs in a fresh copy of the scratch folder; a row gives the exit status, the last line of the
output (progress bars left out) and whether files that were there before were changed or removed. The
"before" and "now" columns of docs/reliability.md are this table on the commit the issue was filed
against and on this branch.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .cases import CASES, make_scratch
from .conftest import fingerprint


def outcome(argv: str, scratch: Path, work: Path, timeout: float) -> tuple[str, str]:
    """``(exit status and last line, what happened to the files already there)`` of one command."""
    root = work / "scratch"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(scratch, root, symlinks=True)
    before = fingerprint(root)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    try:
        result = subprocess.run([sys.executable, "-m", "partialface", *argv.split()], cwd=root, env=env,
                                capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"still running after {timeout:.0f} s", ""
    lines = [line.strip() for line in (result.stderr + result.stdout).splitlines()
             if line.strip() and "%|" not in line]
    traceback = " (traceback)" if any(line.startswith("Traceback") for line in lines) else ""
    telling = [] if traceback else [line for line in lines if "error:" in line or "failed" in line]
    last = (telling or lines or ["(no output)"])[-1]  # a traceback's last line is the exception
    after = fingerprint(root)
    changed = [name for name, digest in before.items() if after.get(name) != digest]
    files = f"CHANGED: {', '.join(changed)}" if changed else "untouched"
    return f"exit {result.returncode}{traceback}: {last[:220]}", files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=300, help="seconds per case (default 300)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        scratch = make_scratch(work / "template")
        print("| input | `partialface ...` | outcome | files already there |")
        print("| --- | --- | --- | --- |")
        for case in CASES:
            result, files = outcome(case.argv, scratch, work, args.timeout)
            cells = (case.what, f"`{case.argv}`", result.replace("|", "\\|"), files)
            print("| " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
