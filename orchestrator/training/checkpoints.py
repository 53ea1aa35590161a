"""Where a trial's DeepSpeed checkpoints live: a local folder, or shared storage behind a URI.

DeepSpeed writes to a local folder. With ``storage:`` set to a URI that ``pyarrow.fs`` understands
(``s3://``, ``gs://``, ``hdfs://``, ``file://`` ...), each save is mirrored there and a (re)started
trial on any node first pulls the newest checkpoint back, so a trial can resume on another machine.
A checkpoint that cannot be written is a :class:`CheckpointError`: the trial fails with a message
that says where and why, instead of training on without a way to resume.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path


class CheckpointError(RuntimeError):
    """The checkpoint folder cannot be written (disk full, not a folder, read-only...)."""


def _is_remote(location: str) -> bool:
    return "://" in location


class CheckpointStore:
    def __init__(self, location: str, trial_id: str, local_root: Path):
        self.location = location.rstrip("/")
        self.trial_id = trial_id
        if _is_remote(self.location):
            from pyarrow import fs

            self._fs, base = fs.FileSystem.from_uri(self.location)
            self._remote = f"{base.rstrip('/')}/{trial_id}"
            self.local_dir = Path(local_root) / "checkpoint-cache" / trial_id
        else:
            self._fs, self._remote = None, None
            self.local_dir = Path(self.location).expanduser() / trial_id

    def check_writable(self) -> None:
        """Fail early and clearly, before training, if checkpoints cannot be written."""
        probe = self.local_dir / f".probe-{uuid.uuid4().hex[:8]}"
        try:
            self.local_dir.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"0" * 4096)
            probe.unlink()
        except OSError as exc:
            raise CheckpointError(
                f"cannot write checkpoints to {self.local_dir}: {exc.strerror or exc}; free disk space or point "
                "the sweep's `storage:` (or --workdir) at a writable folder"
            ) from None

    def restore(self) -> bool:
        """Make the newest checkpoint available locally; True if there is one."""
        if self._fs is not None:
            from pyarrow import fs

            info = self._fs.get_file_info(f"{self._remote}/latest")
            if info.type == fs.FileType.File:
                shutil.rmtree(self.local_dir, ignore_errors=True)
                self.local_dir.mkdir(parents=True, exist_ok=True)
                fs.copy_files(
                    self._remote,
                    str(self.local_dir),
                    source_filesystem=self._fs,
                    destination_filesystem=fs.LocalFileSystem(),
                )
        return (self.local_dir / "latest").is_file()

    def saved(self, tag: str, *, is_writer: bool) -> None:
        """After DeepSpeed saved ``tag``: verify it, drop older tags, mirror to shared storage."""
        latest = self.local_dir / "latest"
        if is_writer and (not latest.is_file() or latest.read_text().strip() != tag):
            raise CheckpointError(f"checkpoint {tag} was not written to {self.local_dir} (disk full?)")
        if is_writer:
            for child in self.local_dir.iterdir():
                if child.is_dir() and child.name.startswith("step") and child.name != tag:
                    shutil.rmtree(child, ignore_errors=True)
        if self._fs is not None:
            from pyarrow import fs

            try:
                self._fs.create_dir(self._remote, recursive=True)
                fs.copy_files(
                    str(self.local_dir / tag),
                    f"{self._remote}/{tag}",
                    source_filesystem=fs.LocalFileSystem(),
                    destination_filesystem=self._fs,
                )
                if is_writer:
                    with self._fs.open_output_stream(f"{self._remote}/latest") as out:
                        out.write(tag.encode())
                    for info in self._fs.get_file_info(fs.FileSelector(self._remote)):
                        name = info.path.rsplit("/", 1)[-1]
                        if info.type == fs.FileType.Directory and name.startswith("step") and name != tag:
                            self._fs.delete_dir(info.path)
            except OSError as exc:
                raise CheckpointError(f"cannot mirror checkpoint {tag} to {self.location}: {exc}") from None

    def clear(self) -> None:
        """The trial is done: its checkpoints are no longer needed."""
        shutil.rmtree(self.local_dir, ignore_errors=True)
        if self._fs is not None:
            try:
                self._fs.delete_dir(self._remote)
            except OSError:
                pass
