#!/usr/bin/python3
"""Packs the example portable plugins into zip packages, one per folder.

    /usr/bin/python3 pack.py OUTDIR [NAME...]

writes OUTDIR/<name>.zip for each example named (all of them when none is):
the folder's files at the zip's root, as the daemon installs them
(`inferd plugin install OUTDIR/pyai.zip`). An example is a folder beside this
script that holds its manifest <name>.json.

The zips are deterministic: entries sorted, timestamps fixed, so the same
sources give the same bytes. Executable files stay executable (0755:
install.sh and the entry script), the others are 0644. __pycache__
folders, *.pyc files and dot files are left out.
"""

import json
import os
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold


def examples() -> list[str]:
    """The example folders: those that hold their own manifest."""
    return sorted(p.name for p in HERE.iterdir() if (p / f"{p.name}.json").is_file())


def package_files(folder: Path) -> list[Path]:
    """The files that go into the package, sorted by their path in the zip."""
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if d != "__pycache__" and not d.startswith(".")]
        files += [Path(root) / n for n in names if not n.startswith(".") and not n.endswith(".pyc")]
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


def check(folder: Path) -> None:
    """Refuses a folder the daemon would refuse: no manifest, or no executable."""
    name = folder.name
    try:
        manifest = json.loads((folder / f"{name}.json").read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"pack.py: {name}: cannot read the manifest {name}.json: {exc}")
    executable = manifest.get("executable") if isinstance(manifest, dict) else None
    if not isinstance(executable, str) or not (folder / executable).is_file():
        raise SystemExit(f"pack.py: {name}: the manifest's executable {executable!r} is not a file "
                         f"of the package")


def pack(name: str, outdir: Path) -> Path:
    """Writes outdir/<name>.zip from the example folder <name>."""
    folder = HERE / name
    check(folder)
    target = outdir / f"{name}.zip"
    tmp = outdir / f".{name}.zip.tmp"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path in package_files(folder):
            info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), EPOCH)
            info.create_system = 3  # Unix: extractors then honour the mode bits below
            # 0755 for what is executable here, 0644 for the rest: the same
            # bytes whatever umask the checkout was made with.
            mode = 0o755 if path.stat().st_mode & 0o100 else 0o644
            info.external_attr = (0o100000 | mode) << 16  # a regular file
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    tmp.replace(target)  # whole or not at all
    return target


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    outdir, names = Path(argv[0]), argv[1:] or examples()
    unknown = [n for n in names if n not in examples()]
    if unknown:
        print(f"pack.py: no example named {', '.join(unknown)} "
              f"(there are: {', '.join(examples())})", file=sys.stderr)
        return 2
    outdir.mkdir(parents=True, exist_ok=True)
    for name in names:
        print(pack(name, outdir))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
