"""``LanguageModel.prefill``: reading a context at once gives the training forward's logits and a decode
state from which ``step`` continues exactly as token-by-token decoding would (issue 16)."""

from __future__ import annotations

import pytest
import torch

import models
from orchestrator.efficiency import state_bytes

TINY_VOCAB = 37
TINY_SEQ_LEN = 16  # training length; the test decodes to 3x past it
CHUNK = 8  # small chunks, so a 40-token prefill crosses five of them (and the Mega/Griffin windows)
PREFILL, TOTAL = 40, 48
CHUNK_FIELDS = ("chunk_size", "scan_chunk_size", "attention_chunk_size")

# max |logit difference| between prefill + step and the training forward, relative to the largest logit
# (fp32: the chunked and recurrent forms differ by rounding only; bf16: rounding of every activation
# compounds through the recurrence and the layers)
TOLERANCE = {torch.float32: 1e-5, torch.bfloat16: 2e-2}  # measured: <= 5e-7 and <= 6e-3


def build_tiny(name: str, dtype: torch.dtype = torch.float32):
    config = models.resolve_config(name, size="10k", vocab_size=TINY_VOCAB, seq_len=TINY_SEQ_LEN)
    chunks = {field: CHUNK for field in CHUNK_FIELDS if field in type(config).field_names()}
    torch.manual_seed(0)
    model = models.build(name, size="10k", vocab_size=TINY_VOCAB, seq_len=TINY_SEQ_LEN, **chunks)
    return model.to(dtype).eval()


def _tokens(batch: int = 2, length: int = TOTAL) -> torch.Tensor:
    return torch.randint(0, TINY_VOCAB, (batch, length), generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_prefill_then_step_matches_training_forward(arch_name, dtype):
    model = build_tiny(arch_name, dtype)
    tokens_BT = _tokens()
    with torch.inference_mode():
        full_BTV = model(tokens_BT).float()
        prefill_BTV, state = model.prefill(tokens_BT[:, :PREFILL])
        assert state.pos == PREFILL
        stepped = [prefill_BTV.float()]
        for t in range(PREFILL, TOTAL):
            logits_BV, state = model.step(tokens_BT[:, t], state)
            stepped.append(logits_BV.float()[:, None])
    error = (torch.cat(stepped, dim=1) - full_BTV).abs().max() / full_BTV.abs().max()
    assert error.item() < TOLERANCE[dtype], f"{arch_name} {dtype}: relative error {error.item():.2e}"


def test_prefill_last_only_returns_the_last_position(arch_name):
    model = build_tiny(arch_name)
    tokens_BT = _tokens(batch=1, length=20)
    with torch.inference_mode():
        last_B1V, _ = model.prefill(tokens_BT, last_only=True)
        all_BTV, _ = model.prefill(tokens_BT)
    assert last_B1V.shape == (1, 1, TINY_VOCAB)
    torch.testing.assert_close(last_B1V, all_BTV[:, -1:])


def test_state_bytes_match_state_size(arch_name):
    """Measured bytes after a prefill = ``state_size(L)`` numbers x 4 bytes (fp32 model; the recurrent
    states are held in fp32 anyway). Recurrent states do not grow with L; the KV cache is exactly L long."""
    model = build_tiny(arch_name)
    measured = {}
    with torch.inference_mode():
        for length in (12, 40):
            _, state = model.prefill(_tokens(batch=3, length=length))
            measured[length] = state_bytes(state)
            assert measured[length] == 3 * 4 * model.state_size(length), arch_name
    if arch_name != "transformer":
        assert measured[12] == measured[40]
    else:
        assert measured[40] > measured[12]


def test_every_builtin_prefills_through_its_chunked_form(arch_name, monkeypatch):
    """No built-in falls back to stepping token by token, which would make a 32k prefill take minutes."""

    def no_stepping(*args, **kwargs):
        raise AssertionError(f"{arch_name} fell back to step_through")

    monkeypatch.setattr(models.lm, "step_through", no_stepping)
    model = build_tiny(arch_name)
    with torch.inference_mode():
        model.prefill(_tokens(length=20))


class _StepOnly(torch.nn.Module):
    """A block that offers only the step contract, as an out-of-tree architecture might."""

    def __init__(self, block: torch.nn.Module) -> None:
        super().__init__()
        self.block = block

    def step(self, x_BD, state, pos):
        return self.block.step(x_BD, state, pos)


def test_fallback_steps_a_block_without_prefill_to_the_same_result():
    model = build_tiny("mamba2")
    block = model.blocks[0]
    x_BTD = torch.randn(2, 20, model.config.d_model, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        fast_BTD, fast_state = models.lm.prefill_through(
            block, x_BTD, block.init_state(2, device="cpu", dtype=torch.float32)
        )
        slow_BTD, slow_state = models.lm.prefill_through(
            _StepOnly(block), x_BTD, block.init_state(2, device="cpu", dtype=torch.float32)
        )
    torch.testing.assert_close(slow_BTD, fast_BTD, rtol=1e-4, atol=1e-5)
    for name in fast_state:
        torch.testing.assert_close(slow_state[name], fast_state[name], rtol=1e-4, atol=1e-5)
