"""``make bench``: create+confirm throughput through the SDK (reported, never asserted)."""

from __future__ import annotations

import pytest

from devstack.stripe_emulator.bench import emulator, run


@pytest.mark.bench
@pytest.mark.parametrize("in_process", [False, True], ids=["separate-process", "in-process"])
def test_create_confirm_throughput(in_process: bool) -> None:
    with emulator(in_process) as url:
        pairs, elapsed = run(url, seconds=5, threads=4)
    rate = pairs / elapsed
    print(f"\nstripe emulator: {rate:.0f} create+confirm pairs/s ({pairs} in {elapsed:.1f} s)")
    assert pairs > 0
