"""Where text comes from: the Python standard library (on every machine), local files, or HF datasets.

A corpus yields documents as ``(name, bytes)`` in a deterministic order and splits them into train and
validation *by document*, so no file straddles the split. Its fingerprint hashes names and contents,
so a trial records exactly which text it saw.
"""

from __future__ import annotations

import hashlib
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

TEXT_SUFFIXES = {".txt", ".md", ".py", ".rst", ".json", ".jsonl", ".csv", ".html", ".tex", ".c", ".h"}


class CorpusError(ValueError):
    """The corpus named in the spec cannot be read."""


@dataclass(frozen=True)
class Document:
    name: str
    content: bytes


def _split_of(name: str, val_fraction: float) -> str:
    # A stable hash of the document's name, so the split never depends on file order or machine.
    bucket = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big") / 2**64
    return "val" if bucket < val_fraction else "train"


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _files_documents(root: Path, files: list[Path]) -> Iterator[Document]:
    for path in sorted(files):
        yield Document(path.relative_to(root).as_posix() if path != root else path.name, path.read_bytes())


def iter_documents(corpus: str, text_field: str = "text") -> Iterator[Document]:
    """Documents of a corpus in a fixed order. ``corpus`` is ``stdlib``, a path, or ``hf:NAME[:CONFIG]``."""
    if corpus == "stdlib":
        root = stdlib_root()
        files = [p for p in root.rglob("*.py") if "site-packages" not in p.parts and p.is_file()]
        yield from _files_documents(root, files)
        return
    if corpus.startswith("hf:"):
        yield from _hf_documents(corpus[3:], text_field)
        return
    path = Path(corpus).expanduser()
    if not path.exists():
        raise CorpusError(
            f"data.corpus: {corpus!r} does not exist; use 'stdlib', a text file or folder, a .bin of "
            "uint16 tokens, or 'hf:NAME[:CONFIG]' for a Hugging Face dataset"
        )
    if path.is_file():
        yield from _files_documents(path.parent, [path])
        return
    files = [p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES]
    if not files:
        raise CorpusError(
            f"data.corpus: folder {corpus!r} holds no text files ({', '.join(sorted(TEXT_SUFFIXES))})"
        )
    yield from _files_documents(path, files)


def _hf_documents(name: str, text_field: str) -> Iterator[Document]:
    """Hugging Face datasets, for real users (needs the optional `datasets` package and network)."""
    try:
        import datasets  # type: ignore[import-not-found]
    except ImportError as exc:  # pragma: no cover - depends on optional extra
        raise CorpusError("data.corpus: 'hf:' corpora need `pip install ceiling[hf]`") from exc
    dataset_name, _, config = name.partition(":")
    dataset = datasets.load_dataset(dataset_name, config or None, split="train")
    if text_field not in dataset.column_names:
        raise CorpusError(f"data.text_field: {text_field!r} not in dataset columns {dataset.column_names}")
    for index, row in enumerate(dataset):
        yield Document(f"{index:09d}", str(row[text_field]).encode("utf-8"))


def split_documents(
    documents: Iterator[Document], val_fraction: float
) -> tuple[list[Document], list[Document], str]:
    """Split by document name and fingerprint the whole corpus (names and contents, in order)."""
    train: list[Document] = []
    val: list[Document] = []
    digest = hashlib.sha256()
    for doc in documents:
        digest.update(doc.name.encode() + b"\0" + hashlib.sha256(doc.content).digest())
        (val if _split_of(doc.name, val_fraction) == "val" else train).append(doc)
    if not train or not val:
        # Tiny corpora (one file) still need both splits: fall back to a split by position.
        everything = train + val
        if len(everything) == 1:
            content = everything[0].content
            cut = max(1, int(len(content) * (1 - val_fraction)))
            train = [Document(everything[0].name + "#train", content[:cut])]
            val = [Document(everything[0].name + "#val", content[cut:])]
        else:
            cut = max(1, int(len(everything) * (1 - val_fraction)))
            train, val = everything[:cut], everything[cut:]
    return train, val, digest.hexdigest()[:16]
