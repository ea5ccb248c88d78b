"""What every data set file (oecl_core/data/sets/<name>.py) is made of: its DataSet record and the helpers its
preparer shares with the others.

A preparer is `prepare(raw_dir, out_dir, *, verify=True, **options) -> manifest`. `raw_dir` holds the source files
as the record's `sources` name them (archives not extracted) or, where the instructions say so, folders already
extracted (found up to three levels below raw_dir). A folder given with `data prepare NAME --from PATH` that is not
simply a folder of the source files is linked as raw_dir/from/ (FROM): folders and archives are found inside it by
the same search, named files by require, ImageNet class folders by the ImageNet preparers. Missing input raises
ManualDownloadRequired, naming what is missing and how to get it, before anything is written; the output is written
by prepared.write_prepared, which shows a folder only once it is complete. Images decoded from files go to a scratch
memory map next to out_dir, so a data set larger than memory can be prepared; an unreadable image is skipped and
listed in the manifest. Images are stored as core.read_image reads them at the preparer's size: at DEFAULT_SIZE (the
224-px data sets) with their aspect ratio kept, on a canvas (core.CanvasStore).
"""
from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from .core import CanvasStore, canvas_width, keeps_aspect, read_image
from .fetch import ManualDownloadRequired, RemoteFile, extract, file_record, _check_member

DEFAULT_SIZE = 256  # 224-px data sets are stored at 256: the pipeline is Resize(256), then a 224 crop
EXTRACTED = "extracted"  # raw_dir/extracted/<archive name>/ holds what a preparer extracted
FROM = "from"  # raw_dir/from/ links to a folder given with --from (catalog.link_local_copy)
_DONE = ".complete"
_SEARCH_DEPTH = 3


@dataclass(frozen=True)
class DataSet:
    """One data set: what a run needs to know about it, where it comes from and how it is prepared.

    An OE pool (images only, no classes) has image_size 0: it is read at whatever size the run trains at."""
    name: str
    description: str
    prepare: Callable[..., dict]
    sources: tuple[RemoteFile, ...] = ()  # fetched by `data prepare`; empty: a manual data set
    instructions: str = ""  # how to get the files by hand and where to put them
    label: str = ""  # the name tables print
    image_size: int = 0  # resolution runs train and test at
    stored_size: int = 0  # resolution on disk when larger (224-px sets are stored at 256)
    stem: str = "cifar"  # "cifar" (32 px and smaller) or "imagenet" (224 px)
    alpha: float = 0.1  # the paper's OE weight for this data set (Appendix I)
    crop_scale_min: float = 0.08  # RandomResizedCrop's lower scale bound (Appendix J)
    default_oe: str = "none"
    class_names: tuple[str, ...] = ()  # known before preparation (planning); a prepared manifest overrides it
    raw_name: str = ""  # the raw/<folder> its files are in, when shared with another entry (default: its name)
    # (training images per class, test images per class, where the numbers come from): the planner's counts before
    # the data set is prepared (its manifest replaces them)
    split_sizes: tuple = ()
    # preparer options (key, value) the pipeline passes on `data prepare`'s command line, where `snakemake -n -p`
    # shows them (rules/datasets.smk); each value is also the preparer's default
    pipeline_options: tuple[tuple[str, str], ...] = ()
    # files of this package the preparer reads (lists of class ids): the inputs of the pipeline's preparation job,
    # named by a dry run; a changed list prepares the data set again
    package_inputs: tuple[str, ...] = ()
    # (bytes, where the number comes from): the source files' size, for the planner's disk figures (a manual
    # download: the archive the instructions name); "about ..." marks a rounded published figure
    download_size: tuple = ()

    @property
    def oe_only(self) -> bool:
        return self.image_size == 0

    @property
    def automatic(self) -> bool:
        return bool(self.sources) and all(r.locations for r in self.sources)


def download_instructions(what: str, name: str, sources: Sequence[RemoteFile], extra: Sequence[str] = ()) -> str:
    """The instructions of a data set whose files can be downloaded: the files, their sources and checksums."""
    lines = [f"{what}. Put these files, unchanged (archives not extracted), into <data root>/raw/{name}/, or give "
             f"the folder or archive you have to `python -m oecl_core data prepare {name} --from PATH`:"]
    for f in sources:
        where = f"Google Drive, open {f.where} in a browser" if f.gdrive_id else f.where
        check = f"   (md5 {f.md5})" if f.md5 else f"   (sha256 {f.sha256})" if f.sha256 else ""
        lines.append(f"  {f.filename}   from {where}{check}")
        lines += [f"      or, if that fails, from {u}" for u in f.locations[1:]]
    lines.append(f"`python -m oecl_core data prepare {name}` downloads them itself where the machine has network."
                 + ("" if any(f.md5 or f.sha256 for f in sources) else " No checksum is published: the sha256 of the "
                    "first download is recorded in raw/<name>/CHECKSUMS.json and later files are checked against it."))
    return "\n".join([*lines, *extra])


def missing(name: str, raw_dir: Path, what: Iterable[str], instructions: str) -> ManualDownloadRequired:
    return ManualDownloadRequired(f"{name}: not found in {raw_dir}: {'; '.join(what)}\n{instructions}")


def require(name: str, raw_dir: Path, filenames: Iterable[str], instructions: str) -> list[Path]:
    """The input files, each in raw_dir or else in the folder given with --from (raw_dir/from/); or
    ManualDownloadRequired naming the missing ones."""
    raw_dir, given = Path(raw_dir), Path(raw_dir) / FROM
    paths = [raw_dir / f if (raw_dir / f).is_file() or not (given / f).is_file() else given / f for f in filenames]
    absent = [str(p) for p in paths if not p.is_file()]
    if absent:
        where = f" (nor in the folder given with --from, {given.resolve()})" if given.is_dir() else ""
        raise missing(name, raw_dir, [f"the file(s) {', '.join(absent)}{where}"], instructions)
    return paths


def search(raw_dir: Path, names: Iterable[str], want_dir: bool, depth: int = _SEARCH_DEPTH) -> Path | None:
    """The first folder (want_dir) or file named one of `names` (any letter case), breadth first, at most `depth`
    levels below raw_dir (raw_dir itself included for folders). Hidden folders and the __MACOSX folders of zips made
    on macOS (resource forks under the same names) are not entered."""
    wanted = {n.lower() for n in names}
    if want_dir and Path(raw_dir).name.lower() in wanted:
        return Path(raw_dir)
    level = [Path(raw_dir)]
    for _ in range(depth):
        below = []
        for folder in level:
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError:
                continue
            for e in entries:
                if e.name == "__MACOSX":
                    continue
                is_dir = e.is_dir()
                if e.name.lower() in wanted and is_dir == want_dir and not e.name.startswith("."):
                    return Path(e.path)
                if is_dir and not e.name.startswith("."):
                    below.append(Path(e.path))
        level = below
    return None


def extract_once(archive: Path, raw_dir: Path) -> Path:
    """`archive` extracted (once) into raw_dir/extracted/<archive name>/."""
    dest = Path(raw_dir) / EXTRACTED / archive.name
    if not (dest / _DONE).exists():
        extract(archive, dest)
        (dest / _DONE).write_text(f"extracted from {archive.name}\n")
    return dest


class Part:
    """One input of a data set: a folder (or a file) that may also come inside an archive."""

    def __init__(self, label: str, names: Sequence[str], archive: str | None, file: bool = False):
        self.label, self.names, self.archive, self.file = label, tuple(names), archive, file

    def describe(self) -> str:
        alt = f" or the archive {self.archive}" if self.archive else ""
        return f"{self.label}: the {'file' if self.file else 'folder'} {self.names[0]}{alt}"

    def archive_path(self, raw_dir: Path) -> Path | None:
        """The part's archive: in raw_dir, or found below it (a folder of archives given with --from)."""
        if self.archive is None:
            return None
        top = Path(raw_dir) / self.archive
        return top if top.is_file() else search(raw_dir, [self.archive], want_dir=False)

    def present(self, raw_dir: Path) -> bool:
        return self.archive_path(raw_dir) is not None or search(raw_dir, self.names, not self.file) is not None

    def resolve(self, raw_dir: Path) -> Path:
        found = search(raw_dir, self.names, not self.file)
        if found is not None:
            return found
        archive = self.archive_path(raw_dir)
        dest = extract_once(archive, raw_dir)
        found = search(dest, self.names, not self.file)
        if found is None and self.file:  # a renamed file in the archive: taken when it is the only one of its type
            candidates = sorted(p for p in dest.rglob(f"*{Path(self.names[0]).suffix}") if not p.name.startswith("."))
            if len(candidates) != 1:
                raise ValueError(f"{archive} does not contain {self.names[0]}")
            found = candidates[0]
        return found or dest  # an archive of loose files: its content is the folder itself


def resolve_parts(name: str, raw_dir: Path, parts: Sequence[Part], instructions: str) -> dict[str, Path]:
    """Each part's folder or file (extracting archives where needed); everything missing is named at once."""
    if not raw_dir.is_dir():
        raise missing(name, raw_dir, [f"the folder {raw_dir} does not exist"], instructions)
    absent = [p.describe() for p in parts if not p.present(raw_dir)]
    if absent:
        raise missing(name, raw_dir, absent, instructions)
    return {p.label: p.resolve(raw_dir) for p in parts}


def source_records(raw_dir: Path, paths: Iterable[Path], sources: Sequence[RemoteFile], verify: bool) -> dict:
    """The manifest's `sources`: per input file md5 + sha256 + size, checked against the published or recorded
    checksum (fetch.file_record) when `verify`; per input folder, its number of files. Checksums recorded on first
    use go to raw_dir/CHECKSUMS.json, also for files found below it (never into a folder given with --from)."""
    remotes = {r.filename: r for r in sources}
    out = {}
    for path in paths:
        try:
            rel = path.relative_to(raw_dir).as_posix()
        except ValueError:
            rel = str(path)
        if path.is_file():
            out[rel] = file_record(path, remotes.get(path.name), check=verify, record_dir=raw_dir)
        else:
            out[rel + "/"] = {"files": sum(len(f) for _, _, f in os.walk(path))}
    return out


def part_records(raw_dir: Path, parts: Sequence[Part], resolved: dict[str, Path], sources: Sequence[RemoteFile],
                 verify: bool) -> dict:
    """source_records of what each part was read from: its archive when present, else its folder or file."""
    paths = [p.archive_path(raw_dir) or resolved[p.label] for p in parts]
    return source_records(raw_dir, paths, sources, verify)


# ------------------------------------------------------------------------------------------------ tar members

def tar_files(archive: Path, tf: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    """Regular-file members by name (leading ./ removed), after refusing absolute or '..' member names."""
    files = {}
    for m in tf.getmembers():
        _check_member(archive, m.name)
        if m.isfile():
            files[m.name[2:] if m.name.startswith("./") else m.name] = m
    return files


def read_member(archive: Path, tf: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    f = tf.extractfile(member)
    if f is None:
        raise ValueError(f"{archive}: member {member.name} cannot be read")
    with f:
        return f.read()


def decode_image(data: bytes, size: int) -> np.ndarray:
    """core.read_image on bytes: shorter side to `size`, stored as core.stored_image stores it."""
    return read_image(io.BytesIO(data), size)


# ------------------------------------------------------------------------------------------------ decoding

def check_size(size) -> int:
    size = int(size)
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    return size


class Scratch:
    """Memory-mapped arrays in a temporary folder next to out_dir, deleted on exit."""

    def __init__(self, out_dir: Path):
        self.out_dir, self.path = Path(out_dir), None

    def __enter__(self):
        self.out_dir.parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=f".{self.out_dir.name}.scratch-", dir=self.out_dir.parent))
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)

    def array(self, split: str, n: int, size: int) -> np.ndarray | CanvasStore:
        """Room for n images read at `size`: squares, or a canvas for images that keep their aspect ratio."""
        width = canvas_width(size) if keeps_aspect(size) else size
        if n == 0:
            images = np.empty((0, 3, size, width), dtype=np.uint8)
        else:  # a new memory map reads as zeros, as a CanvasStore needs
            images = np.lib.format.open_memmap(self.path / f"{split}.npy", mode="w+", dtype=np.uint8,
                                               shape=(n, 3, size, width))
        return CanvasStore(images) if keeps_aspect(size) else images


def n_workers(workers: int | None) -> int:
    return max(1, int(workers)) if workers is not None else max(1, min(8, os.cpu_count() or 1))


Job = tuple[str, Callable[[], list[np.ndarray]], list[int]]  # description, loader (one array per label), labels


def file_job(path: Path, label: int, size: int) -> Job:
    return str(path), (lambda: [read_image(path, size)]), [label]


def _attempt(load: Callable[[], list[np.ndarray]]):
    try:
        return load()
    except Exception as err:  # a corrupt image must not end a long preparation; it is listed instead
        return err


def run_jobs(jobs: Sequence[Job], images: np.ndarray, labels: np.ndarray, start: int, workers: int,
             skipped: list[str], chunk: int = 256) -> int:
    """Runs the jobs on a thread pool (PIL decodes without the GIL), writing their images in job order into
    images[start:] and labels[start:]; a failing job is listed in `skipped`. Returns the next free row."""
    from tqdm import tqdm  # the progress bar gdown shows for downloads, here for decoding (shown on a terminal only)

    n = start
    pool = ThreadPoolExecutor(workers) if workers > 1 else None
    bar = tqdm(total=len(jobs), unit="file", desc="decoding", disable=None, leave=False)
    try:
        for first in range(0, len(jobs), chunk):  # bounded: at most `chunk` decoded results wait in memory
            part = jobs[first:first + chunk]
            results = (pool.map if pool is not None else map)(_attempt, [j[1] for j in part])
            for (desc, _, labs), result in zip(part, results):
                bar.update()
                if isinstance(result, Exception):
                    skipped.append(f"{desc}: {type(result).__name__}: {result}")
                    continue
                for arr, lab in zip(result, labs):
                    images[n], labels[n] = arr, lab
                    n += 1
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown()
    return n


def decode(jobs: Sequence[Job], scratch: Scratch, split: str, size: int, workers: int | None,
           skipped: list[str]) -> tuple[np.ndarray | CanvasStore, np.ndarray]:
    """All the jobs' images in a scratch memory map (rows of skipped jobs dropped), and their labels."""
    images = scratch.array(split, sum(len(j[2]) for j in jobs), size)
    labels = np.empty(len(images), dtype=np.int64)
    n = run_jobs(jobs, images, labels, 0, n_workers(workers), skipped)
    return images[:n], labels[:n]


def skip_note(skipped: list[str]) -> str:
    return f" Skipped {len(skipped)} unreadable file(s) (listed in `skipped`)." if skipped else " No file was skipped."


def nonempty(name: str, split: str, images: np.ndarray, where) -> None:
    if len(images) == 0:
        raise ValueError(f"{name}: no readable image for the {split} split under {where}")
