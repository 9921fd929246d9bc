"""GIMP's progress cancel, carried to the server: a small guard process that cancels the run's jobs when
the plug-in dies.

Cancel in GIMP's progress bar does not call back into a plug-in: GIMP closes it (GP_QUIT, then SIGKILL 10 ms
later; app/plug-in/gimpplugin.c, gimp_plug_in_close), so no code of the plug-in runs after the click. The
guard runs in its own session, which GIMP's kill does not reach; the plug-in tells it over a pipe which jobs
are open, and when that pipe closes without "end" (the plug-in was killed), the guard cancels them at once.

Plain Python: `CancelGuard` is used by noisebrush-gimp.py, `main` runs as `python3 gimp_guard.py`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import IO

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from nb_client import Client, ServerError  # noqa: E402
from nb_jobs import Stop  # noqa: E402

END = "end"


class CancelGuard(Stop):
    """A Stop whose open jobs a guard process cancels if this process dies before `close()`."""

    def __init__(self, client: Client) -> None:
        super().__init__()
        self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # out of the process group GIMP kills
        )
        # The token goes through the pipe, not the command line, which other users can read.
        self._tell(json.dumps({"url": client.url, "token": client.token}))

    def follow(self, client: Client, job_id: str) -> None:
        self._tell(f"+ {job_id}")
        super().follow(client, job_id)

    def finished(self, job_id: str) -> None:
        super().finished(job_id)
        self._tell(f"- {job_id}")

    def close(self) -> None:
        """The run is over (done, failed or cancelled here): the guard leaves the jobs alone."""
        proc, self._proc = self._proc, None
        if proc is None or proc.stdin is None:
            return
        try:
            proc.stdin.write(f"{END}\n".encode())
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()

    def _tell(self, line: str) -> None:
        if self._proc is None or self._proc.stdin is None:
            return
        try:
            self._proc.stdin.write(f"{line}\n".encode())
            self._proc.stdin.flush()
        except OSError:  # the guard is gone; cancel still works while this process lives
            pass


def guard(lines: IO[str]) -> list[str]:
    """Read the plug-in's pipe to its end; if it ends without "end", cancel the jobs still open.
    Returns the jobs it cancelled."""
    first = lines.readline()
    if not first:
        return []
    server = json.loads(first)
    client = Client(server["url"], server["token"], timeout=10)
    open_jobs: list[str] = []
    for line in lines:
        word, _, job_id = line.strip().partition(" ")
        if word == END:
            return []
        if word == "+":
            open_jobs.append(job_id)
        elif word == "-" and job_id in open_jobs:
            open_jobs.remove(job_id)
    for job_id in open_jobs:  # the pipe closed without "end": the plug-in was killed
        try:
            client.cancel(job_id)
        except ServerError:
            pass
    return open_jobs


if __name__ == "__main__":
    guard(sys.stdin)
