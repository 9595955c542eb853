"""Mixing: the spec's weights are shares of training tokens. The source with the most tokens for its
weight is used once; every other source is repeated (up-sampled) to reach its share, at most
`max_upsample` times, and a source held back by that cap ends below its share (the card says so).
Only the train split is mixed; validation and test keep their natural proportions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from palindrom.training.spec import Source


@dataclass(frozen=True)
class SourceMix:
    source: str
    target_share: float
    tokens: int  # train tokens before mixing
    repeat: float  # 1.0 = used once; 2.5 = twice, plus half its documents a third time
    capped: bool  # the cap stopped it short of its share
    achieved_share: float


def plan_mix(sources: tuple[Source, ...], train_tokens: Mapping[str, int]) -> list[SourceMix]:
    configured = {s.name: s.weight / sum(x.weight for x in sources) for s in sources}
    present = [s for s in sources if train_tokens.get(s.name, 0) > 0]  # an empty source cannot be repeated
    if not present:
        return [SourceMix(s.name, configured[s.name], 0, 0.0, False, 0.0) for s in sources]
    total_weight = sum(s.weight for s in present)
    share = {s.name: s.weight / total_weight for s in present}
    scale = max(train_tokens[s.name] / share[s.name] for s in present)
    repeat = {}
    for s in present:
        wanted = share[s.name] * scale / train_tokens[s.name]
        repeat[s.name] = min(wanted, s.max_upsample)
    mixed = {s.name: repeat[s.name] * train_tokens[s.name] for s in present}
    total = sum(mixed.values())
    return [
        SourceMix(s.name, configured[s.name], train_tokens.get(s.name, 0), repeat.get(s.name, 0.0),
                  s.name in repeat and repeat[s.name] < share[s.name] * scale / train_tokens[s.name] - 1e-9,
                  mixed.get(s.name, 0.0) / total)
        for s in sources
    ]
