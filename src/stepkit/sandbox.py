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
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class Sandbox:
    """What one child may see and write: ``writable`` folders (its temp folders: point
    ``TMPDIR`` into one), and ``mounts`` from a container path to the local folder behind
    it. ``/tmp`` stays read-only like the rest: the user's code may live there."""

    writable: tuple[str, ...]
    mounts: Mapping[str, str]

    def command(self) -> list[str]:
        """The ``bwrap`` arguments to put before the child's own command line."""
        args = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        args += ["--unshare-net", "--die-with-parent"]
        for base in sorted(_bases(self.mounts)):  # made writable so mount points can be made
            args += ["--tmpfs", base]
            for entry in sorted(os.listdir(base)):
                path = os.path.join(base, entry)
                if os.path.islink(path):
                    args += ["--symlink", os.readlink(path), path]
                else:
                    args += ["--ro-bind", path, path]
        for folder in self.writable:
            args += ["--bind", folder, folder]
        for container, local in sorted(self.mounts.items()):
            args += ["--bind", local, container]
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
