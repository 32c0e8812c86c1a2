"""Where environments live, and finding a built one again in well under a millisecond.

Layout under the root (``[run] environments_dir`` in stepkit.toml, else
``$XDG_CACHE_HOME/stepkit/envs``, else ``~/.cache/stepkit/envs``)::

    <key>/                   one virtual environment (key: requirements + interpreter)
      bin/python
      requirements.lock      the exact versions (stepkit.envs.lockfile)
      stepkit-env.json       what it was built from; written last, so it marks a whole env
      .last-used             touched each time a step's environment is looked up
    specs/<digest>.json      what a step asked for → the key of the env that satisfies it
    .build-<digest>.lock     held while that spec is being built (a second build waits)
    .store.lock              held while an env is moved into place or removed
    .tmp-*/                  environments being built; renamed into place when complete

Two steps with equal requirements have the same spec digest and so share one environment.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from stepkit.atomic import atomic_write_text
from stepkit.envs.lockfile import LOCK_FILE

if TYPE_CHECKING:
    from stepkit.envs.spec import EnvSpec
    from stepkit.project import Project

METADATA_FILE: Final = "stepkit-env.json"
LAST_USED_FILE: Final = ".last-used"
SPECS_DIR: Final = "specs"
TEMP_PREFIX: Final = ".tmp-"


def default_root(project: Project | None = None) -> Path:
    """The environments folder: the project's setting, else the user's cache folder."""
    if project is not None and project.run.environments_dir is not None:
        return project.run.environments_dir
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "stepkit" / "envs"


@dataclass(frozen=True, slots=True)
class Environment:
    """A built environment: its folder, its interpreter and what it was built from."""

    key: str
    path: Path
    requirements: tuple[str, ...]
    python_version: str
    base_interpreter: Path
    lock_digest: str
    exclude_newer: dt.date | None
    created: dt.datetime

    @property
    def python(self) -> Path:
        """The environment's interpreter: what a step's child process runs on."""
        return self.path / "bin" / "python"

    @property
    def lock_path(self) -> Path:
        return self.path / LOCK_FILE

    @property
    def identity(self) -> str:
        """What a step's cache key records: the environment's key and its lock's digest."""
        return f"{self.key}:{self.lock_digest}"

    def metadata(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "requirements": list(self.requirements),
            "python_version": self.python_version,
            "base_interpreter": str(self.base_interpreter),
            "lock_digest": self.lock_digest,
            "exclude_newer": self.exclude_newer.isoformat() if self.exclude_newer else None,
            "created": self.created.isoformat(),
        }

    @classmethod
    def from_metadata(cls, path: Path, data: dict[str, Any]) -> Environment:
        exclude = data.get("exclude_newer")
        return cls(
            key=str(data["key"]),
            path=path,
            requirements=tuple(str(r) for r in data["requirements"]),
            python_version=str(data["python_version"]),
            base_interpreter=Path(str(data["base_interpreter"])),
            lock_digest=str(data["lock_digest"]),
            exclude_newer=dt.date.fromisoformat(exclude) if exclude else None,
            created=dt.datetime.fromisoformat(str(data["created"])),
        )


@dataclass(frozen=True, slots=True)
class EnvironmentUsage:
    """An environment with what ``env list`` shows: its size and when it was last used."""

    environment: Environment
    size: int
    last_used: dt.datetime


class EnvStore:
    """The folder of built environments: look-up, build locks, listing, removal."""

    def __init__(self, root: Path) -> None:
        self.root = root

    # -- finding --------------------------------------------------------------------------

    def lookup(self, spec: EnvSpec, *, touch: bool = True) -> Environment | None:
        """The built environment for ``spec``, if there is a whole one (no interpreter run)."""
        try:
            pointer = json.loads((self.root / SPECS_DIR / f"{spec.digest}.json").read_text())
        except (OSError, ValueError):  # never built here (or a torn pointer): not found
            return None
        key = pointer.get("key") if isinstance(pointer, dict) else None
        return self.get(str(key), touch=touch) if key else None

    def get(self, key: str, *, touch: bool = False) -> Environment | None:
        """The environment with this key, if it is whole (its metadata written last)."""
        folder = self.root / key
        try:
            data = json.loads((folder / METADATA_FILE).read_text(encoding="utf-8"))
            environment = Environment.from_metadata(folder, data)
        except (OSError, ValueError, KeyError, TypeError):  # missing or unfinished
            return None
        if touch:
            self.touch(environment)
        return environment

    def touch(self, environment: Environment) -> None:
        """Record a use (``env list`` shows it, ``env prune --older-than`` reads it)."""
        marker = environment.path / LAST_USED_FILE
        try:
            os.utime(marker)
        except FileNotFoundError:
            marker.touch()
        except PermissionError:  # a read-only shared store still serves its environments
            pass

    def environments(self) -> list[Environment]:
        """Every whole environment in the store, by key."""
        try:
            names = sorted(os.listdir(self.root))
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            if name.startswith(".") or name == SPECS_DIR:
                continue
            environment = self.get(name)
            if environment is not None:
                found.append(environment)
        return found

    def usage(self, environment: Environment) -> EnvironmentUsage:
        """Size on disk (hard links counted once) and last use of an environment."""
        size = 0
        seen: set[tuple[int, int]] = set()
        for folder, _dirs, files in os.walk(environment.path):
            for name in files:
                try:
                    st = os.lstat(os.path.join(folder, name))
                except OSError:
                    continue
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
                size += st.st_size
        try:
            used = (environment.path / LAST_USED_FILE).stat().st_mtime
        except OSError:
            used = environment.created.timestamp()
        return EnvironmentUsage(
            environment=environment,
            size=size,
            last_used=dt.datetime.fromtimestamp(used, tz=dt.UTC),
        )

    def pointers(self) -> dict[str, str]:
        """Spec digest → environment key, for every spec built here."""
        result: dict[str, str] = {}
        folder = self.root / SPECS_DIR
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return result
        for name in names:
            if not name.endswith(".json"):
                continue
            try:
                data = json.loads((folder / name).read_text())
                result[name.removesuffix(".json")] = str(data["key"])
            except (OSError, ValueError, KeyError, TypeError):  # torn pointer: ignored
                continue
        return result

    def dangling_pointers(self) -> list[str]:
        """Spec digests whose environment is gone (removed by hand); prune removes them."""
        keys = {environment.key for environment in self.environments()}
        return sorted(digest for digest, key in self.pointers().items() if key not in keys)

    def remove_pointer(self, digest: str) -> None:
        with self.store_lock(exclusive=True):
            (self.root / SPECS_DIR / f"{digest}.json").unlink(missing_ok=True)

    def temp_folders(self) -> list[Path]:
        """Left-over build folders (a build that was killed); prune removes them."""
        try:
            return sorted(p for p in self.root.iterdir() if p.name.startswith(TEMP_PREFIX))
        except FileNotFoundError:
            return []

    # -- writing --------------------------------------------------------------------------

    def new_temp_folder(self, key: str) -> Path:
        """An empty folder beside the final one, so the rename into place is atomic."""
        import tempfile

        self.root.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{key}-", dir=self.root))
        folder.chmod(0o755)  # mkdtemp makes it private; an environment is for everyone
        return folder

    def install(self, folder: Path, environment: Environment, spec: EnvSpec) -> Environment:
        """Move a complete build into place (or keep the one already there) and point
        ``spec`` at it. Returns the environment now in place."""
        atomic_write_text(folder / METADATA_FILE, json.dumps(environment.metadata(), indent=2))
        (folder / LAST_USED_FILE).touch()
        final = self.root / environment.key
        # Exclusive: two specs can name one key (same requirements and interpreter, asked
        # for in different words), and their builds must not both move into place.
        with self.store_lock(exclusive=True):
            existing = self.get(environment.key)
            if existing is None:
                if final.exists():  # an unfinished folder under the final name: replace it
                    shutil.rmtree(final)
                os.rename(folder, final)
                existing = self.get(environment.key)
                assert existing is not None  # just moved a folder with its metadata in place
            else:
                shutil.rmtree(folder, ignore_errors=True)
            self.point(spec, existing.key)
        return existing

    def point(self, spec: EnvSpec, key: str) -> None:
        pointer = {"key": key, "requirements": list(spec.requirements), "python": spec.python}
        atomic_write_text(self.root / SPECS_DIR / f"{spec.digest}.json", json.dumps(pointer))

    def remove(self, key: str) -> None:
        """Delete an environment and the pointers to it (prune's job; holds the store lock)."""
        with self.store_lock(exclusive=True):
            for digest, target in self.pointers().items():
                if target == key:
                    (self.root / SPECS_DIR / f"{digest}.json").unlink(missing_ok=True)
            folder = self.root / key
            if folder.exists():
                # Renamed aside first: a reader never sees a half-deleted environment.
                doomed = self.root / f"{TEMP_PREFIX}removed-{key}"
                os.rename(folder, doomed)
                shutil.rmtree(doomed, ignore_errors=True)

    # -- locks ----------------------------------------------------------------------------

    @contextmanager
    def build_lock(self, spec: EnvSpec) -> Iterator[None]:
        """Held while ``spec`` is built: a second build of it waits, then finds it built."""
        with self._flock(f".build-{spec.digest[:24]}.lock", exclusive=True):
            yield

    @contextmanager
    def store_lock(self, *, exclusive: bool) -> Iterator[None]:
        with self._flock(".store.lock", exclusive=exclusive):
            yield

    @contextmanager
    def _flock(self, name: str, *, exclusive: bool) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / name, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock, as a crash does
