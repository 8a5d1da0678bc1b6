"""Build benchmarks/gpu/wheels/: what the GPU device machine lacks to run benchmarks/gpu/check.py.

Why: the device machine starts bare, has no network, and its image (Python 3.12, torch 2.11 + CUDA,
lightning, transformers, peft, PyYAML, rich) has no hydra, omegaconf or pydantic. The check imports the
project the way a user's install has it, so those few pure-Python packages and the project's own wheel
travel with the working tree (64 MiB in all) and are installed offline there by run_on_device.sh.

Versions are those of the Python running this script (the project's venv), so the device runs the very
versions CI tests. Wheels come from the configured index (`pip download`, no internet needed here), for
CPython 3.12 on manylinux x86_64; a package published only as a source archive (antlr4-python3-runtime
4.9.3, which omegaconf 2.3 pins) is built into a wheel here, which works there since it is pure Python.

Run: .venv/bin/python benchmarks/gpu/wheels.py   (about 10 s; prints the folder's contents and size)
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WHEELS = Path(__file__).resolve().parent / "wheels"
# Not in the device image (KINDS.md's package list), needed by `import trainer` and its config layer;
# typing-extensions is there, but pydantic 2.14 needs >= 4.16, newer than the image may hold.
MISSING = (
    "pydantic",
    "pydantic-core",
    "annotated-types",
    "typing-inspection",
    "typing-extensions",
    "hydra-core",
    "omegaconf",
)
# Published as a source archive only: built here instead of downloaded.
SOURCE_ONLY = ("antlr4-python3-runtime",)
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
# bitsandbytes (QLoRA, 8-bit AdamW) is not in the image either; its wheel holds a 20 MB library per CUDA
# and ROCm release (43 MB). The device's torch is built for CUDA 13, so only the CUDA 13 and CPU ones go.
BITSANDBYTES = "bitsandbytes==0.50.2"
KEEP_LIBRARY = re.compile(r"libbitsandbytes_(cpu|cuda13\d)\.so$")
LIMIT_MIB = 40  # the tree that travels must stay under 64 MiB with the project's own files


def pip(*args: str) -> None:
    """Run the running Python's pip; stop with its output when it fails."""
    done = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"pip {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


def build(folder: Path) -> list[Path]:
    """Fill `folder` (emptied first) with one wheel per package; returns the wheels."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    pinned = [f"{name}=={version(name)}" for name in MISSING]
    platform_args = [arg for p in PLATFORMS for arg in ("--platform", p)]
    pip(
        "download",
        "-q",
        "--no-deps",
        "--only-binary=:all:",
        "--python-version",
        "3.12",
        "--implementation",
        "cp",
        *platform_args,
        "-d",
        str(folder),
        *pinned,
    )
    sources = [f"{name}=={version(name)}" for name in SOURCE_ONLY]
    pip("wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(folder), *sources)
    pip("wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(folder), str(ROOT))
    shutil.rmtree(ROOT / "build", ignore_errors=True)  # setuptools' leftovers from the project's wheel
    pip("download", "-q", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
        "--platform", "manylinux_2_24_x86_64", "-d", str(folder), BITSANDBYTES)  # fmt: skip
    for wheel in folder.glob("bitsandbytes-*.whl"):
        slim(wheel)
    return sorted(folder.glob("*.whl"))


def slim(wheel: Path) -> None:
    """Rewrite a bitsandbytes wheel without the native libraries for other CUDA, ROCm and XPU releases,
    and without their lines in RECORD (the list of the wheel's files that pip installs from)."""
    kept = wheel.with_suffix(".slim")
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(kept, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            name = item.filename
            if name.endswith(".so") and not KEEP_LIBRARY.search(name):
                continue
            data = src.read(name)
            if name.endswith(".dist-info/RECORD"):
                lines = data.decode().splitlines()
                data = "\n".join(
                    line
                    for line in lines
                    if not (".so," in line and not KEEP_LIBRARY.search(line.split(",")[0]))
                ).encode()
            dst.writestr(item, data)
    kept.replace(wheel)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=WHEELS, help=f"folder to fill (default {WHEELS})")
    args = parser.parse_args()
    wheels = build(args.out)
    total = sum(w.stat().st_size for w in wheels)
    for w in wheels:
        print(f"{w.stat().st_size / 1024:9.1f} KiB  {w.name}")
    print(f"{total / 1024**2:9.2f} MiB  total, {len(wheels)} wheels in {args.out}")
    if total > LIMIT_MIB * 1024**2:
        sys.exit(f"the wheels take more than {LIMIT_MIB} MiB: the tree would not travel (64 MiB)")


if __name__ == "__main__":
    main()
