"""A training run's data: the data set root discovered and every recording decoded once.

Decoding (:mod:`models.data.frame_cache`) is the slow part and the same for every split, so a
cross-validation decodes once and every fold trains from the same frames.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from models.data.frame_cache import DecodedRecording, FrameCache, FrameSampling, SkippedRecording
from models.data.index import DatasetError, DatasetIndex, Recording, discover
from models.training.config import TrainConfig
from models.training.distributed import DistributedContext

__all__ = ["PreparedData", "prepare_data"]


@dataclass(frozen=True, eq=False)
class PreparedData:
    """A discovered and decoded data set.

    Attributes:
        index: What the data set root holds.
        decoded: The readable recordings' frames.
        skipped: The unreadable recordings and why.
        decode_time_s: Seconds spent decoding (or reading the cache).
    """

    index: DatasetIndex
    decoded: tuple[DecodedRecording, ...]
    skipped: tuple[SkippedRecording, ...]
    decode_time_s: float

    @property
    def readable(self) -> tuple[Recording, ...]:
        """The recordings that decoded."""
        return tuple(d.recording for d in self.decoded)


def prepare_data(config: TrainConfig, ctx: DistributedContext) -> PreparedData:
    """Discover the data set and decode every recording once (skipping unreadable ones).

    With a cache folder, the first process on each machine decodes and fills the cache
    before the others read it.

    Raises:
        DatasetError: For an unusable layout (see :func:`models.data.index.discover`), or a
            class none of whose recordings can be read.
    """
    index = discover(config.data)
    cache = FrameCache(
        config.input_size, FrameSampling(config.every_k, config.dedup_threshold), config.cache_dir
    )
    start = time.perf_counter()
    first = config.cache_dir is None or ctx.local_rank == 0
    if not first:
        ctx.barrier()
    decoded, skipped = cache.load_all(
        index.recordings, workers=config.workers, progress=config.shows_progress(ctx)
    )
    if first and config.cache_dir is not None:
        ctx.barrier()
    empty = [c for c in index.class_names if not any(d.recording.class_name == c for d in decoded)]
    if empty:
        raise DatasetError(
            f"no readable recording in class {', '.join(map(repr, empty))}; skipped: "
            + "; ".join(f"{s.name}: {s.reason}" for s in skipped)
        )
    return PreparedData(index, tuple(decoded), tuple(skipped), time.perf_counter() - start)
