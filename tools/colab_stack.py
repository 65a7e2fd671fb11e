"""Colab as it is, as a test: Colab's package list as constraints, and the Colab notebooks run on it.

Colab's GPU runtime comes with its own Python and packages (torch, numpy, pandas, matplotlib,
IPython...), which the book does not choose. Google publishes them (``pip-freeze.gpu.txt`` of
the repository googlecolab/backend-info).

* ``constraints FREEZE [--source TEXT]`` turns that list (a path, or an https URL) into
  ``constraints-colab.txt``: the versions of the book's stack that Colab preinstalls (each
  dependency of ``pyproject.toml``'s core and ``tune`` extra, and the Jupyter kernel), local
  labels such as ``+cu128`` dropped. Their own dependencies are left free: Colab's torch is a
  CUDA 12.8 build whose CUDA packages PyPI's torch of the same version does not use.
* ``test`` (``make test-colab``) builds ``.venv-colab`` with the book's stack at Colab's
  versions, builds the wheel, makes the quick build and its Colab notebooks
  (``tools/colab.py --pin`` pointing at that wheel), then executes every notebook there, one after
  the other, as Colab would: ``idlmam`` uninstalled first, a stub ``google.colab`` module
  imported at kernel start, so that the setup cell's Colab branch installs the wheel (with no
  constraint, as in Colab; torch is not reinstalled). Exit status 1 when a notebook fails or its
  setup cell did not install the package.

Run it with the repository's ``.venv`` (it builds with ``build``, Jupyter Book and
``tools/execute_pages.py``); ``--python`` picks the interpreter of ``.venv-colab`` (3.13 in the
workflows, as Colab). ``TORCH_INDEX``, when set, is where torch and torchvision come from.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = ROOT / "constraints-colab.txt"
# what runs a notebook: Colab preinstalls these too, at versions older than ours (IPython 7)
KERNEL = ("ipython", "ipykernel", "jupyter-client", "jupyter-core", "nbclient", "nbformat")
KERNEL += ("traitlets", "tornado", "pyzmq")
STUB = "import google.colab  # Colab imports it at kernel start; the setup cells test for it\n"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_freeze(text: str) -> dict[str, str]:
    """``pip freeze`` output as {canonical name: version}, URL and file installs left out."""
    pins = {}
    for line in text.splitlines():
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s+;#]+)(\+\S+)?\s*", line)
        if match:
            pins[canonical(match.group(1))] = match.group(2)
    return pins


def write_constraints(pins: dict[str, str], source: str, path: Path = CONSTRAINTS) -> None:
    lines = [
        "# The book's stack at the versions Colab preinstalls (GPU runtime), from its pip freeze:",
        f"# {source}",
        "# Written by `python tools/colab_stack.py constraints`; do not edit. `make test-colab`",
        "# installs the book's stack at these versions, then the package as a setup cell does.",
        *(f"{name}=={pins[name]}" for name in sorted(pins)),
    ]
    path.write_text("\n".join(lines) + "\n")


def read_constraints(path: Path = CONSTRAINTS) -> dict[str, str]:
    return read_freeze(path.read_text())


def stack_names(root: Path = ROOT) -> list[str]:
    """The packages a Colab notebook of the book imports directly: idlmam's core and ``tune``
    dependencies, and the kernel."""
    import tomllib
    from packaging.requirements import Requirement

    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["tune"]
    names = [canonical(Requirement(r).name) for r in requirements]
    return sorted(set(names) | set(KERNEL))


# ------------------------------------------------------------------------------------- test


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    print("+", " ".join(map(str, cmd)), flush=True)
    return subprocess.run(list(map(str, cmd)), check=True, **kwargs)


def colab_venv(folder: Path, python: str) -> Path:
    """``folder`` with the book's stack at Colab's versions (rebuilt when the pins change)."""
    pins = read_constraints()
    preinstalled = sorted(pins)
    key = hashlib.sha256(f"{python}\n{CONSTRAINTS.read_text()}".encode()).hexdigest()[:16]
    stamp = folder / f".installed-{key}"
    if not stamp.exists():
        shutil.rmtree(folder, ignore_errors=True)
        _run([python, "-m", "venv", folder])
        pip = [folder / "bin" / "python", "-m", "pip", "install", "-q", "-c", CONSTRAINTS]
        index = os.environ.get("TORCH_INDEX")
        torch = [name for name in ("torch", "torchvision") if name in preinstalled]
        _run([*pip, *(["--index-url", index] if index else []), *torch])
        _run([*pip, *[name for name in preinstalled if name not in torch]])
        stamp.touch()
    print("Colab's stack in", folder, "(preinstalled at Colab's versions):")
    listed = _run(
        [folder / "bin" / "python", "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
    )
    installed = read_freeze(listed.stdout)
    for name in preinstalled:
        mark = "" if installed.get(name) == pins[name] else f"  (Colab: {pins[name]})"
        print(f"  {name}=={installed.get(name, 'missing')}{mark}")
    version = subprocess.run([folder / "bin" / "python", "-V"], capture_output=True, text=True)
    print(f"  python {version.stdout.split()[-1]}")
    wrong = [name for name in preinstalled if installed.get(name) != pins[name]]
    if wrong:
        sys.exit(f"colab_stack: {', '.join(wrong)} not at Colab's version in {folder}")
    return folder / "bin" / "python"


def quick_build(build: Path) -> Path:
    """The quick build (pages executed into its own cache, then rendered); returns ``_build``."""
    env = dict(os.environ, IDL_BUDGET="quick", TQDM_DISABLE="1", PYTHONHASHSEED="0")
    env.setdefault("IDL_DATA", str(ROOT / "data"))
    cache = build / "_build" / ".jupyter_cache"
    _run([sys.executable, ROOT / "tools" / "execute_pages.py", "--cache", cache], cwd=ROOT, env=env)
    book = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build", ROOT]
    _run([*book, "--path-output", build, "-q"], cwd=ROOT, env=env)
    return build / "_build"


def run_notebook(python: Path, notebook: Path, work: Path) -> tuple[bool, str]:
    """Execute ``notebook`` with ``python``'s kernel as Colab would; (ok, what went wrong)."""
    _run([python, "-m", "pip", "uninstall", "-q", "-y", "idlmam"])
    ipython = work / "ipython"
    (ipython / "profile_default" / "startup").mkdir(parents=True)
    (ipython / "profile_default" / "startup" / "00-colab.py").write_text(STUB)
    stub = work / "stub" / "google" / "colab"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text('"""A stand-in for Colab\'s module (make test-colab)."""\n')
    content = work / "content"  # Colab's working folder
    content.mkdir()
    env = dict(
        os.environ,
        IPYTHONDIR=str(ipython),
        PYTHONPATH=str(work / "stub"),
        IDL_BUDGET="quick",
        IDL_DEVICE="cpu",
        IDL_DATA=os.environ.get("IDL_DATA", str(ROOT / "data")),
        TQDM_DISABLE="1",
    )
    env.pop("PIP_CONSTRAINT", None)
    execute = (
        "import sys, nbformat\n"
        "from nbclient import NotebookClient\n"
        "nb = nbformat.read(sys.argv[1], as_version=4)\n"
        "NotebookClient(nb, timeout=1800, kernel_name='python3',"
        " resources={'metadata': {'path': sys.argv[2]}}).execute()\n"
    )
    done = subprocess.run(
        [python, "-c", execute, notebook, content], env=env, capture_output=True, text=True
    )
    if done.returncode:
        return False, done.stderr[-3000:]
    found = subprocess.run(
        [python, "-c", "import idlmam; print(idlmam.__file__)"],
        cwd=work,
        capture_output=True,
        text=True,
    )
    if found.returncode or "site-packages" not in found.stdout:
        return False, "the setup cell did not install idlmam (is google.colab in sys.modules?)"
    return True, ""


def test(python: str, venv: Path, build: Path, pages: list[str]) -> int:
    started = time.monotonic()
    colab_python = colab_venv(venv, python)
    import colab  # tools/colab.py, beside this file

    dist = build / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    _run([sys.executable, "-m", "build", "-q", "--wheel", "--outdir", dist, ROOT])
    (wheel,) = dist.glob("idlmam-*.whl")
    pin = f"idlmam[tune] @ {wheel.resolve().as_uri()}"
    notebooks = colab.convert_build(quick_build(build), build / "colab", ROOT, colab.check_pin(pin))
    notebooks = [nb for nb in notebooks if not pages or any(p in nb.name for p in pages)]
    failed = []
    for notebook in notebooks:
        began = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="colab-") as work:
            ok, why = run_notebook(colab_python, notebook, Path(work))
        took = time.monotonic() - began
        print(
            f"{'ok    ' if ok else 'FAILED'} {notebook.relative_to(build)} ({took:.0f} s)",
            flush=True,
        )
        if not ok:
            failed.append(notebook.name)
            print(why, file=sys.stderr)
    total = time.monotonic() - started
    print(
        f"test-colab: {len(notebooks) - len(failed)} passed, {len(failed)} failed in {total:.0f} s"
    )
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tools/colab_stack.py", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("constraints", help="Colab's pip freeze -> constraints-colab.txt")
    make.add_argument("freeze", help="a path, or an https URL")
    make.add_argument("--source", default=None, help="where it came from, for the header")
    run = commands.add_parser("test", help="run the Colab notebooks on Colab's stack")
    run.add_argument("--python", default="python3", help="the interpreter of the Colab venv")
    run.add_argument("--venv", type=Path, default=ROOT / ".venv-colab")
    run.add_argument("--build", type=Path, default=ROOT / "_build" / "colab-quick")
    run.add_argument("--pages", nargs="*", default=[], help="only notebooks whose name has one")
    args = parser.parse_args(argv)
    if args.command == "constraints":
        if args.freeze.startswith("https://"):
            with urllib.request.urlopen(args.freeze, timeout=60) as response:
                text = response.read().decode()
        else:
            text = Path(args.freeze).read_text()
        pins = read_freeze(text)
        missing = [name for name in ("torch", "torchvision", "numpy") if name not in pins]
        if missing:
            print(
                f"colab_stack: {args.freeze} pins no {', '.join(missing)}: not Colab's freeze?",
                file=sys.stderr,
            )
            return 1
        stack = {name: pins[name] for name in stack_names() if name in pins}
        write_constraints(stack, args.source or args.freeze)
        print(
            f"{CONSTRAINTS.name}: {len(stack)} pins; torch {pins['torch']}, numpy {pins['numpy']}"
        )
        return 0
    return test(args.python, args.venv.resolve(), args.build.resolve(), args.pages)


if __name__ == "__main__":
    sys.exit(main())
