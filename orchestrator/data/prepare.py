"""Tokenize a corpus once and cache it as ``uint16`` memmaps that every trial reads.

The cache lives under ``<cache>/tokens/<key>`` where the key hashes the corpus fingerprint, the tokenizer
and the split, so two sweeps over the same text share one cache. It is written to a temporary folder
and renamed into place, so a crash or two concurrent writers never leave a half-written cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from orchestrator.data.corpus import CorpusError, iter_documents, split_documents
from orchestrator.data.tokenizer import BpeTokenizer, ByteTokenizer, Tokenizer


@dataclass(frozen=True)
class PreparedData:
    """Where a tokenized corpus lives and what it is; JSON-serialisable so it can travel to workers."""

    directory: str
    fingerprint: str
    tokenizer: str
    vocab_size: int
    train_tokens: int
    val_tokens: int
    val_bytes_per_token: float  # turns nats/token into bits per byte

    @property
    def train_path(self) -> Path:
        return Path(self.directory) / "train.bin"

    @property
    def val_path(self) -> Path:
        return Path(self.directory) / "val.bin"

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict) -> PreparedData:
        return PreparedData(**data)

    def open(self, split: str) -> np.memmap:
        path = self.train_path if split == "train" else self.val_path
        return np.memmap(path, dtype=np.uint16, mode="r")


def default_cache_dir() -> Path:
    return Path(os.environ.get("CEILING_CACHE", Path.home() / ".cache" / "ceiling"))


def _write_tokens(path: Path, chunks: list[np.ndarray]) -> int:
    total = sum(len(c) for c in chunks)
    out = np.memmap(path, dtype=np.uint16, mode="w+", shape=(max(total, 1),))
    position = 0
    for chunk in chunks:
        out[position : position + len(chunk)] = chunk
        position += len(chunk)
    out.flush()
    del out
    return total


def _prepare_bin(path: Path, val_fraction: float, cache: Path) -> PreparedData:
    tokens = np.memmap(path, dtype=np.uint16, mode="r")
    if len(tokens) < 1024:
        raise CorpusError(f"data.corpus: {path} holds only {len(tokens)} tokens; need at least 1024")
    stat = path.stat()
    fingerprint = hashlib.sha256(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[
        :16
    ]
    cut = int(len(tokens) * (1 - val_fraction))
    vocab = int(tokens.max()) + 1
    target = cache / "tokens" / f"bin-{fingerprint}-{val_fraction}"
    if not (target / "meta.json").exists():
        staging = Path(tempfile.mkdtemp(dir=cache / "tokens"))
        _write_tokens(staging / "train.bin", [np.asarray(tokens[:cut])])
        _write_tokens(staging / "val.bin", [np.asarray(tokens[cut:])])
        meta = PreparedData(str(target), fingerprint, "pretokenized", vocab, cut, len(tokens) - cut, 1.0)
        _publish(staging, target, meta)
    return PreparedData.from_dict(json.loads((target / "meta.json").read_text()))


def _publish(staging: Path, target: Path, meta: PreparedData) -> None:
    (staging / "meta.json").write_text(json.dumps(meta.to_dict(), indent=2))
    try:
        staging.rename(target)
    except OSError:
        # Somebody else published the same cache first; theirs is identical.
        shutil.rmtree(staging, ignore_errors=True)


def prepare_data(
    corpus: str = "stdlib",
    tokenizer: str = "byte",
    *,
    bpe_vocab_size: int = 4096,
    val_fraction: float = 0.02,
    text_field: str = "text",
    cache_dir: Path | None = None,
) -> PreparedData:
    """Tokenize ``corpus`` (or reuse its cache) and return where the token files are."""
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    (cache / "tokens").mkdir(parents=True, exist_ok=True)
    if corpus.endswith(".bin") and Path(corpus).expanduser().is_file():
        return _prepare_bin(Path(corpus).expanduser(), val_fraction, cache)

    train_docs, val_docs, fingerprint = split_documents(iter_documents(corpus, text_field), val_fraction)
    settings = f"{fingerprint}:{tokenizer}:{bpe_vocab_size if tokenizer == 'bpe' else 0}:{val_fraction}"
    key = hashlib.sha256(settings.encode()).hexdigest()[:16]
    target = cache / "tokens" / f"{tokenizer}-{key}"
    if (target / "meta.json").exists():
        return PreparedData.from_dict(json.loads((target / "meta.json").read_text()))

    staging = Path(tempfile.mkdtemp(dir=cache / "tokens"))
    encoder: Tokenizer
    if tokenizer == "bpe":
        encoder = BpeTokenizer.train(
            [d.content for d in train_docs], bpe_vocab_size, staging / "tokenizer.json"
        )
    else:
        encoder = ByteTokenizer()
    eod = np.asarray([encoder.end_of_document], dtype=np.uint16)

    def encode_all(docs: list) -> list[np.ndarray]:
        chunks: list[np.ndarray] = []
        for doc in docs:
            chunks.append(encoder.encode(doc.content))
            chunks.append(eod)
        return chunks

    n_train = _write_tokens(staging / "train.bin", encode_all(train_docs))
    n_val = _write_tokens(staging / "val.bin", encode_all(val_docs))
    val_bytes = sum(len(d.content) + 1 for d in val_docs)  # +1: the end-of-document marker counts as a byte
    meta = PreparedData(
        str(target), fingerprint, tokenizer, encoder.vocab_size, n_train, n_val, val_bytes / n_val
    )
    _publish(staging, target, meta)
    return PreparedData.from_dict(json.loads((target / "meta.json").read_text()))
