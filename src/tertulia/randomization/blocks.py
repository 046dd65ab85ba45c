"""Stratified permuted blocks, reproducible from the trial's seed (decision 0075).

Block `index` of a stratum is drawn from its own random stream, seeded from (seed, a SHA-256 of
the stratum key, index): its size is picked among the config's block sizes and the arms, repeated
in their ratio, are shuffled (Fisher–Yates). So any block can be recomputed on its own, years
later, from the recorded seed, and the service draws the next block without replaying the
earlier ones.

Only the PCG64 bit generator's raw 64-bit outputs are used: numpy guarantees those streams stay
the same across versions, but not those of `Generator.choice`/`permutation`, whose algorithms
may change. The bounded integers and the shuffle are therefore written here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from tertulia.randomization.config import TrialConfig

ALGORITHM = "pcg64-fisher-yates-v1"
_TWO64 = 2**64


@dataclass(frozen=True)
class Block:
    index: int
    arms: tuple[str, ...]

    @property
    def size(self) -> int:
        return len(self.arms)


def _stream(seed: int, stratum: str, index: int) -> np.random.PCG64:
    digest = hashlib.sha256(stratum.encode("utf-8")).digest()
    words = [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 32, 4)]
    return np.random.PCG64(np.random.SeedSequence([seed, *words, index]))


def _below(bits: np.random.PCG64, bound: int) -> int:
    """An unbiased integer in [0, bound): reject the top values that would favour small ones."""
    limit = _TWO64 - _TWO64 % bound
    while True:
        value = int(bits.random_raw())
        if value < limit:
            return value % bound


def block_draw(*, config: TrialConfig, seed: int, stratum: str, index: int) -> Block:
    bits = _stream(seed, stratum, index)
    size = config.block_sizes[_below(bits, len(config.block_sizes))]
    repeat = size // config.ratio_sum
    arms = [arm.name for arm in config.arms for _ in range(arm.ratio * repeat)]
    for i in range(size - 1, 0, -1):
        j = _below(bits, i + 1)
        arms[i], arms[j] = arms[j], arms[i]
    return Block(index=index, arms=tuple(arms))


@dataclass(frozen=True)
class Slot:
    slot: int  # position in the stratum's sequence, from 0
    block_index: int
    position: int  # position within its block
    arm: str


def sequence(*, config: TrialConfig, seed: int, stratum: str) -> Iterator[Slot]:
    """The stratum's allocation sequence, slot after slot, without end."""
    slot = 0
    index = 0
    while True:
        block = block_draw(config=config, seed=seed, stratum=stratum, index=index)
        for position, arm in enumerate(block.arms):
            yield Slot(slot=slot, block_index=index, position=position, arm=arm)
            slot += 1
        index += 1
