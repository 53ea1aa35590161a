"""Corpora, tokenizers, token caches and deterministic batches."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from orchestrator.data import PreparedData, prepare_data
from orchestrator.data.batches import TrainBatches, validation_windows
from orchestrator.data.corpus import CorpusError, Document, iter_documents, split_documents
from orchestrator.data.tokenizer import BYTE_VOCAB, END_OF_DOCUMENT

WORDS = (
    "the model learns a scaling law from many small runs and predicts where larger models land "
    "attention recurrent state space linear mixer token budget compute optimal frontier"
).split()


def _expected_stream(docs: list[Document]) -> np.ndarray:
    """Byte tokens of ``docs`` in order, each followed by the end-of-document token."""
    parts: list[int] = []
    for doc in docs:
        parts.extend(doc.content)
        parts.append(END_OF_DOCUMENT)
    return np.asarray(parts, dtype=np.uint16)


def _write_folder(root: Path, count: int, seed: int = 0) -> Path:
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        words = [rng.choice(WORDS) for _ in range(40 + index % 17)]
        (root / f"doc{index:03d}.txt").write_text(f"# document {index}\n" + " ".join(words) + "\n")
    (root / "sub").mkdir(exist_ok=True)
    (root / "sub" / "notes.md").write_text("a markdown note about " + " ".join(WORDS[:12]) + "\n")
    (root / "picture.png").write_bytes(bytes(range(256)))  # not a text suffix: ignored
    (root / "tokens.bin").write_bytes(b"\x00\x01" * 600)  # not a text suffix inside a folder: ignored
    return root


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return _write_folder(tmp_path / "corpus", 80)


# --- the standard-library corpus ------------------------------------------------------------------


@pytest.fixture(scope="module")
def stdlib_prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, PreparedData]:
    cache = tmp_path_factory.mktemp("stdlib-cache")
    return cache, prepare_data(cache_dir=cache)


def test_stdlib_cache_is_reused(stdlib_prepared):
    cache, first = stdlib_prepared
    meta = Path(first.directory) / "meta.json"
    stamps = (meta.stat().st_mtime_ns, first.train_path.stat().st_ino, first.train_path.stat().st_mtime_ns)
    second = prepare_data(cache_dir=cache)
    assert second == first
    assert (
        meta.stat().st_mtime_ns,
        first.train_path.stat().st_ino,
        first.train_path.stat().st_mtime_ns,
    ) == stamps
    assert [p.name for p in (cache / "tokens").iterdir()] == [Path(first.directory).name]  # no staging left


def test_stdlib_byte_tokens(stdlib_prepared):
    _, data = stdlib_prepared
    assert data.tokenizer == "byte" and data.vocab_size == BYTE_VOCAB == 257
    assert len(data.fingerprint) == 16 and data.val_bytes_per_token == 1.0
    train, val = data.open("train"), data.open("val")
    assert len(train) == data.train_tokens > 1_000_000 and len(val) == data.val_tokens > 10_000
    assert int(val.max()) == END_OF_DOCUMENT and int(train[-1]) == END_OF_DOCUMENT
    assert PreparedData.from_dict(json.loads(json.dumps(data.to_dict()))) == data


def test_stdlib_split_is_by_document_deterministic_and_disjoint(stdlib_prepared):
    _, data = stdlib_prepared
    train, val, fingerprint = split_documents(iter_documents("stdlib"), 0.02)
    assert fingerprint == data.fingerprint
    train_names, val_names = {d.name for d in train}, {d.name for d in val}
    assert train_names.isdisjoint(val_names)
    assert len(train_names) == len(train) and len(val_names) == len(val)
    assert 0.005 < len(val) / (len(train) + len(val)) < 0.05
    assert all(name.endswith(".py") and "site-packages" not in name for name in train_names | val_names)
    # The token files hold exactly these documents (+ one end-of-document token each).
    assert data.train_tokens == sum(len(d.content) + 1 for d in train)
    assert data.val_tokens == sum(len(d.content) + 1 for d in val)


# --- local corpora ------------------------------------------------------------------------------


def test_split_depends_only_on_document_names(folder: Path):
    documents = list(iter_documents(str(folder)))
    names = [d.name for d in documents]
    assert names == sorted(names) and len(names) == 81  # 80 .txt + sub/notes.md; .png and .bin ignored
    assert "sub/notes.md" in names and "picture.png" not in names and "tokens.bin" not in names
    train, val, fingerprint = split_documents(iter(documents), 0.2)
    shuffled = documents[:]
    random.Random(1).shuffle(shuffled)
    train2, val2, fingerprint2 = split_documents(iter(shuffled), 0.2)
    assert {d.name for d in train} == {d.name for d in train2} and {d.name for d in val} == {
        d.name for d in val2
    }
    assert fingerprint2 != fingerprint  # the fingerprint covers the order the corpus yields
    assert {d.name for d in train}.isdisjoint({d.name for d in val})
    assert {d.name for d in train} | {d.name for d in val} == set(names)
    assert 5 <= len(val) <= 35
    # Adding a document never moves an existing one across the split.
    extra = [*documents, Document("zzz-new.txt", b"new text")]
    train3, val3, _ = split_documents(iter(extra), 0.2)
    assert {d.name for d in val} <= {d.name for d in val3} and {d.name for d in train} <= {
        d.name for d in train3
    }


def test_folder_corpus_tokens_match_documents(folder: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    data = prepare_data(str(folder), cache_dir=cache, val_fraction=0.2)
    train, val, fingerprint = split_documents(iter_documents(str(folder)), 0.2)
    assert data.fingerprint == fingerprint and data.vocab_size == 257
    np.testing.assert_array_equal(np.asarray(data.open("train")), _expected_stream(train))
    np.testing.assert_array_equal(np.asarray(data.open("val")), _expected_stream(val))
    assert prepare_data(str(folder), cache_dir=cache, val_fraction=0.2).directory == data.directory
    # Another split fraction or changed text is another cache entry.
    assert prepare_data(str(folder), cache_dir=cache, val_fraction=0.3).directory != data.directory
    (folder / "doc000.txt").write_text("changed\n")
    changed = prepare_data(str(folder), cache_dir=cache, val_fraction=0.2)
    assert changed.fingerprint != data.fingerprint and changed.directory != data.directory


def test_single_file_falls_back_to_a_positional_split(tmp_path: Path):
    content = bytes((i * 31) % 251 + 1 for i in range(1000))
    path = tmp_path / "book.txt"
    path.write_bytes(content)
    train, val, _ = split_documents(iter_documents(str(path)), 0.1)
    assert [d.name for d in train] == ["book.txt#train"] and [d.name for d in val] == ["book.txt#val"]
    data = prepare_data(str(path), cache_dir=tmp_path / "cache", val_fraction=0.1)
    assert (data.train_tokens, data.val_tokens) == (901, 101)
    np.testing.assert_array_equal(np.asarray(data.open("train")), [*content[:900], END_OF_DOCUMENT])
    np.testing.assert_array_equal(np.asarray(data.open("val")), [*content[900:], END_OF_DOCUMENT])


def test_pretokenized_bin_corpus(tmp_path: Path):
    tokens = ((np.arange(5000) * 7) % 1000).astype(np.uint16)
    path = tmp_path / "tokens.bin"
    tokens.tofile(path)
    data = prepare_data(str(path), cache_dir=tmp_path / "cache", val_fraction=0.1)
    assert data.tokenizer == "pretokenized" and data.vocab_size == 1000
    assert (data.train_tokens, data.val_tokens) == (4500, 500)
    np.testing.assert_array_equal(np.asarray(data.open("train")), tokens[:4500])
    np.testing.assert_array_equal(np.asarray(data.open("val")), tokens[4500:])
    assert prepare_data(str(path), cache_dir=tmp_path / "cache", val_fraction=0.1) == data


def test_pretokenized_bin_too_small(tmp_path: Path):
    path = tmp_path / "tiny.bin"
    np.arange(100, dtype=np.uint16).tofile(path)
    with pytest.raises(
        CorpusError, match=r"^data.corpus: .*tiny.bin holds only 100 tokens; need at least 1024$"
    ):
        prepare_data(str(path), cache_dir=tmp_path / "cache")


def test_bpe_tokenizer_on_a_local_folder(tmp_path: Path):
    corpus = _write_folder(tmp_path / "corpus", 60, seed=3)
    data = prepare_data(
        str(corpus), "bpe", bpe_vocab_size=300, cache_dir=tmp_path / "cache", val_fraction=0.2
    )
    assert data.tokenizer == "bpe" and data.vocab_size == 300
    assert (Path(data.directory) / "tokenizer.json").is_file()
    train, val = np.asarray(data.open("train")), np.asarray(data.open("val"))
    assert int(train.max()) < data.vocab_size and int(val.max()) < data.vocab_size
    train_docs, val_docs, _ = split_documents(iter_documents(str(corpus)), 0.2)
    from orchestrator.data.tokenizer import BpeTokenizer

    tokenizer = BpeTokenizer(Path(data.directory) / "tokenizer.json")
    assert int((val == tokenizer.end_of_document).sum()) == len(val_docs)
    assert int((train == tokenizer.end_of_document).sum()) == len(train_docs)
    assert data.val_bytes_per_token > 1.5  # merges compress repetitive English
    assert data.val_bytes_per_token == pytest.approx(sum(len(d.content) + 1 for d in val_docs) / len(val))
    # The vocabulary size is part of the cache key.
    other = prepare_data(
        str(corpus), "bpe", bpe_vocab_size=280, cache_dir=tmp_path / "cache", val_fraction=0.2
    )
    assert other.directory != data.directory and other.vocab_size == 280


def test_missing_corpus_names_the_field(tmp_path: Path):
    missing = tmp_path / "nowhere"
    with pytest.raises(CorpusError) as info:
        prepare_data(str(missing), cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert message.startswith(
        f"data.corpus: {str(missing)!r} does not exist; use 'stdlib', a text file or folder"
    )
    assert not any((tmp_path / "cache" / "tokens").iterdir())


def test_folder_without_text_files(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "x.png").write_bytes(b"\x89PNG")
    with pytest.raises(CorpusError, match=r"^data.corpus: folder .* holds no text files \(\.c, \.csv"):
        prepare_data(str(tmp_path / "empty"), cache_dir=tmp_path / "cache")


# --- batches ------------------------------------------------------------------------------------

SEQ_LEN, SEQUENCES = 16, 8
TOKENS = np.arange(20_000, dtype=np.uint16)


def test_batches_depend_only_on_seed_and_step():
    a = TrainBatches(TOKENS, SEQ_LEN, SEQUENCES, seed=7)
    b = TrainBatches(TOKENS.copy(), SEQ_LEN, SEQUENCES, seed=7)
    np.testing.assert_array_equal(a.starts(3), b.starts(3))
    np.testing.assert_array_equal(a.starts(3), a.starts(3))
    assert not np.array_equal(a.starts(3), a.starts(4))
    assert not np.array_equal(a.starts(3), TrainBatches(TOKENS, SEQ_LEN, SEQUENCES, seed=8).starts(3))
    starts = np.concatenate([a.starts(s) for s in range(200)])
    assert starts.min() >= 0 and starts.max() <= len(TOKENS) - SEQ_LEN - 2


def test_targets_are_inputs_shifted_by_one():
    batches = TrainBatches(TOKENS, SEQ_LEN, SEQUENCES, seed=0)
    ((inputs, targets),) = batches.micro_batches(5, rank=0, world=1, micro_batch_size=SEQUENCES)
    assert inputs.shape == targets.shape == (SEQUENCES, SEQ_LEN) and inputs.dtype == torch.int64
    assert torch.equal(targets[:, :-1], inputs[:, 1:])
    assert torch.equal(targets, inputs + 1)  # the tokens are 0, 1, 2, ...
    assert inputs[:, 0].tolist() == batches.starts(5).tolist()


def test_rank_shards_union_to_the_single_worker_batch():
    batches = TrainBatches(TOKENS, SEQ_LEN, SEQUENCES, seed=11)
    for step in (0, 1, 17):
        ((whole_in, whole_tg),) = batches.micro_batches(step, rank=0, world=1, micro_batch_size=SEQUENCES)
        shards = [batches.micro_batches(step, rank=r, world=2, micro_batch_size=2) for r in (0, 1)]
        assert [len(s) for s in shards] == [2, 2]
        assert all(mb[0].shape == (2, SEQ_LEN) for shard in shards for mb in shard)
        rank_inputs = [torch.cat([mb[0] for mb in shard]) for shard in shards]
        rank_targets = [torch.cat([mb[1] for mb in shard]) for shard in shards]
        assert torch.equal(rank_inputs[0], whole_in[0::2]) and torch.equal(rank_inputs[1], whole_in[1::2])
        assert torch.equal(rank_targets[0], whole_tg[0::2]) and torch.equal(rank_targets[1], whole_tg[1::2])
        union = sorted(map(tuple, torch.cat(rank_inputs).tolist()))
        assert union == sorted(map(tuple, whole_in.tolist()))


def test_train_split_too_short():
    with pytest.raises(ValueError, match=r"train split has 17 tokens, fewer than data.seq_len \+ 2 \(18\)"):
        TrainBatches(np.arange(17, dtype=np.uint16), 16, 4, seed=0)


def test_validation_windows_are_fixed_and_in_range():
    tokens = np.arange(1000, dtype=np.uint16)
    windows = validation_windows(tokens, 16, max_tokens=160)
    assert windows.shape == (10, 17) and windows.dtype == torch.int64
    assert torch.equal(windows, validation_windows(tokens, 16, max_tokens=160))
    assert windows[0, 0] == 0 and windows[-1, -1] == 999  # evenly spread over the whole split
    assert torch.equal(windows[:, 1:] - windows[:, :-1], torch.ones(10, 16, dtype=torch.int64))
    most = validation_windows(tokens, 16, max_tokens=10**9)
    assert most.shape == (999 // 17, 17)
    assert int(most.max()) <= 999 and int(most.min()) >= 0
    assert bool(((most[1:, 0] - most[:-1, 0]) >= 17).all())  # non-overlapping


def test_validation_windows_need_one_window():
    assert validation_windows(np.arange(17, dtype=np.uint16), 16, 1000).shape == (1, 17)
    with pytest.raises(ValueError, match=r"validation split has 10 tokens, fewer than data.seq_len \+ 1"):
        validation_windows(np.arange(10, dtype=np.uint16), 16, 1000)
