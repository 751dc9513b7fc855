"""The arena search's steps, shared by the parent and the child process."""

from __future__ import annotations

ARENA_STEP = 16
# First size tried: any model that fits a microcontroller fits in it, so a
# failure here means TFLM cannot run the model rather than a small arena.
GENEROUS_ARENA = 16 * 1024 * 1024


def next_arena(lo: int, hi: int | None) -> int | None:
    """The next size the search tries, or None when it is over.

    ``lo`` is the largest size known to fail (0 at the start) and ``hi`` the
    smallest known to work (None before the first success).
    """
    if hi is None:
        return GENEROUS_ARENA if lo < GENEROUS_ARENA else None
    if hi - lo <= ARENA_STEP:
        return None
    return max(lo + ARENA_STEP, (lo + hi) // 2 // ARENA_STEP * ARENA_STEP)
