"""Synthetic recall tasks, generated on the fly from a seed: MQAR and copy.

Both return ``(inputs[N,T], targets[N,T])`` int64 arrays in next-token form: ``targets[:, t]`` is what the
model should predict after reading ``inputs[:, : t + 1]``, and every position that is not scored holds
``IGNORE_INDEX`` (-100, PyTorch's ``cross_entropy`` default), so the same loss line trains language models
and recall models.

**MQAR** (multi-query associative recall; Arora, Eyuboglu et al. 2023, "Zoology", written after the
definition in HazyResearch/zoology ``zoology/data/associative_recall.py``)::

    position  0   1   2   3  ...  2K-1 | 2K ...                                  T-1
    input     k1  v1  k2  v2 ...  vK   | filler .. k2 filler .. k1 filler ..
    target    -   -   -   -  ...  -    | -      .. v2 -      .. v1 -      ..

``K = kv_pairs`` distinct keys from the first half of the vocabulary (``1 .. V/2 - 1``; 0 is the filler
when fillers are off) and K distinct values from the second half (``V/2 .. V-1``). After the K pairs,
the remaining ``T - 2K`` positions hold ``(T - 2K) / 2`` even slots; every key is queried once, in a slot
``g`` drawn without replacement with probability ``p(g) ~ (g + 1) ** (power_a - 1)`` (a power law: short
gaps are likely, as for repeated bigrams in text; ``power_a = 1`` is uniform). The target at a query is
its key's value; the model is scored there only. Fillers are uniform over the whole vocabulary
(``random_fillers``) or 0. Needs ``T >= 4K`` (a query slot per pair) and ``K <= V/2 - 1`` distinct keys.

**Copy**: ``<bos> s <sep> s`` with ``s`` a uniform string of ``length`` symbols over a small alphabet;
scored on the second ``s`` only (``length`` targets: after ``<sep>`` and after each copied symbol but
the last). Token ids: 0 pad (unused), 1 ``<bos>``, 2 ``<sep>``, 3 .. alphabet+2 the symbols.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IGNORE_INDEX = -100
COPY_PAD, COPY_BOS, COPY_SEP, COPY_FIRST_SYMBOL = 0, 1, 2, 3


# --- settings ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MqarSetting:
    seq_len: int
    kv_pairs: int

    @property
    def name(self) -> str:
        return f"T{self.seq_len}_kv{self.kv_pairs}"

    @property
    def input_len(self) -> int:
        return self.seq_len

    @property
    def hardness(self) -> tuple[int, int]:
        """Sort key: more pairs to hold is harder; at equal pairs, the longer sequence."""
        return (self.kv_pairs, self.seq_len)


@dataclass(frozen=True)
class CopySetting:
    length: int

    @property
    def name(self) -> str:
        return f"L{self.length}"

    @property
    def input_len(self) -> int:
        return 2 * self.length + 1  # <bos> s <sep> s, minus the last token (nothing follows it)

    @property
    def hardness(self) -> tuple[int, int]:
        return (self.length, self.length)


def mqar_problems(vocab_size: int, seq_len: int, kv_pairs: int) -> list[str]:
    """Why these MQAR settings cannot be generated (empty if they can); each line names the field."""
    problems = []
    if kv_pairs < 1:
        problems.append(f"kv_pairs must be >= 1, got {kv_pairs}")
    if seq_len % 2:
        problems.append(f"seq_len must be even (key/value pairs and query slots are 2 tokens), got {seq_len}")
    if 4 * kv_pairs > seq_len:
        problems.append(
            f"kv_pairs: {kv_pairs} pairs do not fit in seq_len {seq_len}: the pairs take 2 x kv_pairs tokens "
            f"and each needs a query slot of 2 more, so seq_len >= 4 x kv_pairs = {4 * kv_pairs}; "
            f"lower kv_pairs to <= {seq_len // 4} or raise seq_len"
        )
    distinct_keys = vocab_size // 2 - 1
    if kv_pairs > distinct_keys:
        problems.append(
            f"vocab_size: {vocab_size} is too small for {kv_pairs} kv pairs: keys are distinct tokens from "
            f"1 .. vocab_size/2 - 1 ({max(distinct_keys, 0)} of them); raise vocab_size to at least "
            f"{2 * (kv_pairs + 1)}"
        )
    return problems


def copy_problems(alphabet: int, length: int) -> list[str]:
    problems = []
    if alphabet < 2:
        problems.append(f"alphabet must have at least 2 symbols, got {alphabet}")
    if length < 1:
        problems.append(f"length must be >= 1, got {length}")
    return problems


# --- sampling helpers -------------------------------------------------------------------------------


def distinct_integers(rng: np.random.Generator, rows: int, count: int, low: int, high: int) -> np.ndarray:
    """``[rows, count]`` integers from ``[low, high)``, distinct within each row, uniform over such draws."""
    span = high - low
    if count > span:
        raise ValueError(f"cannot draw {count} distinct integers from [{low}, {high})")
    if count * 4 > span or span <= 64:
        # dense: a random permutation prefix per row
        return low + np.argsort(rng.random((rows, span)), axis=1)[:, :count]
    out = rng.integers(low, high, size=(rows, count))
    while True:  # redraw rows with a repeat (few: the birthday bound with count << span)
        ordered = np.sort(out, axis=1)
        bad = np.flatnonzero((ordered[:, 1:] == ordered[:, :-1]).any(axis=1))
        if bad.size == 0:
            return out
        out[bad] = rng.integers(low, high, size=(bad.size, count))


def power_law_slots(
    rng: np.random.Generator, rows: int, count: int, space: int, power_a: float
) -> np.ndarray:
    """``[rows, count]`` distinct slots in ``[0, space)``, drawn one after another without replacement with
    ``p(g) ~ (g + 1) ** (power_a - 1)``. Gumbel-top-k: the top ``count`` of ``log p + Gumbel`` noise is
    exactly a sequential draw without replacement (Vieira 2014; Kool et al. 2019)."""
    log_p = (power_a - 1.0) * np.log(np.arange(1, space + 1, dtype=np.float64))
    scores = log_p[None, :] + rng.gumbel(size=(rows, space))
    return np.argsort(-scores, axis=1)[:, :count]


# --- generators -------------------------------------------------------------------------------------


def mqar(
    rng: np.random.Generator,
    examples: int,
    *,
    vocab_size: int,
    seq_len: int,
    kv_pairs: int,
    power_a: float = 0.01,
    random_fillers: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """``examples`` MQAR sequences: ``inputs[N,T]``, ``targets[N,T]`` (IGNORE_INDEX except at queries)."""
    problems = mqar_problems(vocab_size, seq_len, kv_pairs)
    if problems:
        raise ValueError("; ".join(problems))
    half = vocab_size // 2
    context = 2 * kv_pairs
    keys_NK = distinct_integers(rng, examples, kv_pairs, 1, half)
    values_NK = distinct_integers(rng, examples, kv_pairs, half, vocab_size)
    slots_NK = power_law_slots(rng, examples, kv_pairs, (seq_len - context) // 2, power_a)
    query_pos_NK = context + 2 * slots_NK  # key i is asked at slot i's position

    if random_fillers:
        inputs_NT = rng.integers(0, vocab_size, size=(examples, seq_len))
    else:
        inputs_NT = np.zeros((examples, seq_len), dtype=np.int64)
    inputs_NT[:, 0:context:2] = keys_NK
    inputs_NT[:, 1:context:2] = values_NK
    rows_N1 = np.arange(examples)[:, None]
    inputs_NT[rows_N1, query_pos_NK] = keys_NK
    targets_NT = np.full((examples, seq_len), IGNORE_INDEX, dtype=np.int64)
    targets_NT[rows_N1, query_pos_NK] = values_NK
    return inputs_NT.astype(np.int64), targets_NT


def copy_strings(
    rng: np.random.Generator, examples: int, *, alphabet: int, length: int
) -> tuple[np.ndarray, np.ndarray]:
    """``examples`` copy sequences ``<bos> s <sep> s``: inputs/targets ``[N, 2*length+1]``."""
    problems = copy_problems(alphabet, length)
    if problems:
        raise ValueError("; ".join(problems))
    s_NL = rng.integers(COPY_FIRST_SYMBOL, COPY_FIRST_SYMBOL + alphabet, size=(examples, length))
    bos_N1 = np.full((examples, 1), COPY_BOS, dtype=np.int64)
    sep_N1 = np.full((examples, 1), COPY_SEP, dtype=np.int64)
    full_NS = np.concatenate([bos_N1, s_NL, sep_N1, s_NL], axis=1)  # S = 2L + 2
    inputs_NT = full_NS[:, :-1].copy()
    targets_NT = np.full_like(inputs_NT, IGNORE_INDEX)
    targets_NT[:, length + 1 :] = full_NS[:, length + 2 :]  # after <sep>: the second copy
    return inputs_NT, targets_NT


def copy_vocab_size(alphabet: int) -> int:
    return COPY_FIRST_SYMBOL + alphabet
