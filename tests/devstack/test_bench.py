"""``make bench``: create+confirm throughput, SDK and raw HTTP (reported, never asserted)."""

from __future__ import annotations

import pytest

from devstack.stripe_emulator.bench import emulator, run, run_raw


@pytest.mark.bench
@pytest.mark.parametrize("in_process", [False, True], ids=["separate-process", "in-process"])
def test_create_confirm_throughput(in_process: bool) -> None:
    with emulator(in_process) as emu:
        pairs, elapsed = run(emu.url, seconds=5, threads=4)
    rate = pairs / elapsed
    print(f"\nstripe emulator: {rate:.0f} create+confirm pairs/s ({pairs} in {elapsed:.1f} s)")
    assert pairs > 0


@pytest.mark.bench
def test_raw_http_throughput() -> None:
    with emulator(in_process=False) as emu:
        cpu_before = emu.cpu()
        pairs, elapsed = run_raw(emu.url, seconds=5, clients=2)
        cpu_after = emu.cpu()
    print(f"\nstripe emulator, 2 raw HTTP clients: {pairs / elapsed:.0f} pairs/s")
    if cpu_before is not None and cpu_after is not None:
        print(f"emulator CPU per pair: {(cpu_after - cpu_before) / pairs * 1000:.2f} ms")
    assert pairs > 0
