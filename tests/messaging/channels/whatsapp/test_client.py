def test_pacing_tick_is_shared_and_never_early() -> None:
    """Requests waiting for moments within one tick wake together, and never before."""
    import asyncio

    from tertulia.messaging.channels.whatsapp.client import PACING_TICK, _SharedLoop

    async def run() -> list[tuple[float, float]]:
        loop = asyncio.get_running_loop()
        base = loop.time() + 0.05
        moments = [base, base + PACING_TICK / 10, base + 2.5 * PACING_TICK]
        woke: list[tuple[float, float]] = []

        async def wait(moment: float) -> None:
            await _SharedLoop.tick(loop, moment)
            woke.append((moment, loop.time()))

        await asyncio.gather(*(wait(m) for m in moments))
        return woke

    woke = asyncio.run(run())
    assert all(at >= moment for moment, at in woke)
    assert all(at - moment < PACING_TICK + 0.05 for moment, at in woke)
    ticks = sorted({round(at, 6) for _moment, at in woke})
    # The first two moments share a tick unless they straddle a boundary; the third is later.
    assert 2 <= len(ticks) <= 3
