"""The efficiency study's table: one row per measured number of a trained model (revision 0005).

Kept apart from ``schema.py`` (same ``Base``, so one alembic history): only efficiency trials write it.
Long form, one number a row, so a new measurement needs no migration:

- ``decode``: after prefilling ``length`` tokens at ``batch``: ``tokens_per_s``, ``state_bytes`` (the
  recurrent state or KV cache held), ``kv_cache_bytes_analytic`` (a Transformer's count), ``prefill_s``;
- ``prefill``: a forward pass over ``length`` tokens at ``batch``: ``seconds``, ``tokens_per_s``;
- ``extrapolation``: validation ``loss`` at ``length`` tokens (a multiple of the training length);
- ``position``: ``loss`` of the tokens from ``position`` to the next bucket edge when reading ``length``.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from orchestrator.store.schema import Base

MEASURES = ("decode", "prefill", "extrapolation", "position")


class EfficiencyMeasurement(Base):
    __tablename__ = "efficiency_measurements"
    __table_args__ = (
        UniqueConstraint(
            "trial_id", "measure", "length", "batch", "position", "metric", name="uq_efficiency_measurement"
        ),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    trial_id: Mapped[str] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"), index=True)
    measure: Mapped[str] = mapped_column(String(16))  # one of MEASURES
    length: Mapped[int] = mapped_column(Integer)  # context L, prefill length or evaluated length
    batch: Mapped[int] = mapped_column(Integer, default=1)
    position: Mapped[int] = mapped_column(Integer, default=0)  # a position bucket's first token, else 0
    metric: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Float)
