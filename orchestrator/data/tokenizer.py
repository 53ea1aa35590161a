"""Tokenizers: raw bytes (default, nothing to train) or a byte-level BPE trained locally and cached."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

BYTE_VOCAB = 257  # 256 byte values + one end-of-document token
END_OF_DOCUMENT = 256


class Tokenizer(Protocol):
    name: str
    vocab_size: int
    end_of_document: int

    def encode(self, content: bytes) -> np.ndarray: ...


class ByteTokenizer:
    name = "byte"
    vocab_size = BYTE_VOCAB
    end_of_document = END_OF_DOCUMENT

    def encode(self, content: bytes) -> np.ndarray:
        return np.frombuffer(content, dtype=np.uint8).astype(np.uint16)


class BpeTokenizer:
    """Hugging Face `tokenizers` byte-level BPE, trained on the train split only, saved as JSON."""

    name = "bpe"

    def __init__(self, path: Path):
        from tokenizers import Tokenizer as HfTokenizer

        self._tokenizer = HfTokenizer.from_file(str(path))
        self.vocab_size = self._tokenizer.get_vocab_size()
        self.end_of_document = self._tokenizer.token_to_id("<|endoftext|>")

    def encode(self, content: bytes) -> np.ndarray:
        ids = self._tokenizer.encode(content.decode("utf-8", errors="replace")).ids
        return np.asarray(ids, dtype=np.uint16)

    @staticmethod
    def train(texts: list[bytes], vocab_size: int, path: Path) -> BpeTokenizer:
        from tokenizers import Tokenizer as HfTokenizer
        from tokenizers import decoders, models, pre_tokenizers, trainers

        tokenizer = HfTokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=["<|endoftext|>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tokenizer.train_from_iterator((t.decode("utf-8", errors="replace") for t in texts), trainer=trainer)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tokenizer.save(str(tmp))
        tmp.replace(path)
        return BpeTokenizer(path)
