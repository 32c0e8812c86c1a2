"""A sandbox for a child that runs user code: bubblewrap maps the contract's container paths
on the child's temp folders, cuts the network and leaves everything else read-only.

So a script that reads fixed container paths (``/opt/ml/processing/input/data``) runs
unchanged, and one that ``pip install``s or calls a cloud service at import fails — the
user's environment stays as it was. Where ``bwrap`` is missing or not permitted the child
runs without the mapping, with pip and proxies disabled through its environment
(:data:`GUARD_ENV`), and the caller warns that the sandbox is off.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath

#: Set in a sandboxed child's environment and in one that runs without the sandbox: pip
#: finds no index and gives up at once; HTTP clients that honour proxies reach a closed port.
GUARD_ENV: Mapping[str, str] = {
    "PIP_NO_INDEX": "1",
    "PIP_RETRIES": "0",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "http_proxy": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "NO_PROXY": "",
    "no_proxy": "",
}


#: Where, inside a folder the sandbox lays a writable layer on (``/opt``, to make
#: ``/opt/ml``), that folder as the machine has it is bound, read-only.
HOST = ".stepkit-host"


@dataclass(frozen=True, slots=True)
class Sandbox:
    """What one child may see and write: ``writable`` folders (its temp folders: point
    ``TMPDIR`` into one), ``mounts`` from a container path to the local folder behind it,
    and ``readonly`` ones (a run's inputs: folders of the artifact store, which no step may
    change). ``/tmp`` stays read-only like the rest: the user's code may live there. A
    folder that gets a container path it lacks (``/opt`` for ``/opt/ml/...``) keeps what it
    held, read-only, each entry a link into that folder's own view (:data:`HOST`)."""

    writable: tuple[str, ...]
    mounts: Mapping[str, str]
    readonly: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def mapping(
        cls,
        workdir: str,
        *,
        inputs: Mapping[str, tuple[str, str]],
        outputs: Mapping[str, tuple[str, str]],
        readonly_inputs: bool = False,
    ) -> tuple[Sandbox, dict[str, str], dict[str, str]]:
        """A sandbox with each container path on its local folder, and the paths ``main``
        then gets: the container paths themselves, as in the cloud job.

        ``inputs`` and ``outputs`` map a logical name to (container path, local path). A
        container path naming a file (``/opt/ml/input/config/hyperparameters.json``) has
        its folder mounted on the local file's folder, or on the local folder itself.
        """
        mounts: dict[str, str] = {}
        readonly: dict[str, str] = {}
        seen: list[dict[str, str]] = [{}, {}]
        for index, (declared, target) in enumerate(
            ((inputs, readonly if readonly_inputs else mounts), (outputs, mounts))
        ):
            for logical, (container, local) in declared.items():
                if PurePosixPath(container).suffix:  # a file: mount its folder
                    is_file = bool(PurePosixPath(local).suffix) or os.path.isfile(local)
                    target[str(PurePosixPath(container).parent)] = (
                        os.path.dirname(local) if is_file else local
                    )
                else:
                    target[container] = local
                seen[index][logical] = container
        return cls(writable=(workdir,), mounts=mounts, readonly=readonly), seen[0], seen[1]

    def command(self) -> list[str]:
        """The ``bwrap`` arguments to put before the child's own command line."""
        # /proc comes with the read-only root (no pid namespace: a fresh one would show the
        # same); --die-with-parent kills the whole sandbox when its starter dies
        args = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev"]
        args += ["--unshare-net", "--die-with-parent"]
        every = {**self.mounts, **self.readonly}
        for base in sorted(_bases(every)):  # made writable so mount points can be made
            # what the base held stays there, read-only: the base itself bound once under
            # it, each entry a link into that; a bind per entry costs bwrap a read of the
            # mount table each (~0.2 ms; /opt often holds dozens), a link nothing
            args += ["--tmpfs", base, "--ro-bind", base, os.path.join(base, HOST)]
            for entry in sorted(os.listdir(base)):
                path = os.path.join(base, entry)
                link = os.readlink(path) if os.path.islink(path) else os.path.join(HOST, entry)
                args += ["--symlink", link, path]
        for folder in self.writable:
            args += ["--bind", folder, folder]
        for container, local in sorted(every.items()):  # a folder before those inside it
            args += ["--ro-bind" if container in self.readonly else "--bind", local, container]
        return [*args, "--"]


def _bases(mounts: Mapping[str, str]) -> set[str]:
    """The deepest existing folder above each container path that does not exist here:
    where the sandbox needs a writable layer to make the mount point."""
    bases = set()
    for container in mounts:
        path = PurePosixPath(container)
        if os.path.exists(path):
            continue
        while not os.path.exists(path.parent):
            path = path.parent
        if str(path.parent) != "/":
            bases.add(str(path.parent))
    return bases


@functools.cache
def unavailable() -> str | None:
    """Why the sandbox cannot run here (``bwrap`` missing or not permitted), or None."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bwrap is not installed (Debian: apt-get install bubblewrap)"
    probe = subprocess.run(
        [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--unshare-net", "true"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        first = (probe.stderr.strip().splitlines() or [f"status {probe.returncode}"])[0]
        return f"bwrap is not permitted here ({first})"
    return None


#: What a sandboxed script meets when it tries to change the machine or reach the network.
SIGNS: Mapping[str, str] = {
    "Read-only file system": "the sandbox keeps everything outside the test folders read-only",
    "No matching distribution found": "pip is disabled in tests (no index, no network)",
    "Network is unreachable": "the sandbox cuts the network",
    "Temporary failure in name resolution": "the sandbox cuts the network",
    "Name or service not known": "the sandbox cuts the network",
    "Connection refused": "tests reach no network (proxies point nowhere)",
}


def hint(first: str, text: str, *, sandboxed: bool) -> str:
    """Why a script that tried to install a package or reach a service failed (`` (…)``,
    or ``""``), with the line of ``text`` that names what it tried when ``first`` — the
    error's first line — does not."""
    for sign, why in SIGNS.items():
        if sign in text and (sandboxed or "sandbox" not in why):
            tried = "" if sign in first else f": {_what_it_tried(text, sign)}"
            return f" ({why}{tried})"
    return ""


def _what_it_tried(text: str, sign: str) -> str:
    """The line that names what the script tried (a path, a package, a host)."""
    for line in reversed(text.splitlines()):
        if sign in line:
            return line.strip()[-200:]
    return sign
