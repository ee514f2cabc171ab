"""The seeded random-fault run (issue 11): workload plus faults, then the book equals the venue exactly.

Each seed runs a fresh simulator, a manager with short timeouts and a fast reconnect, a counterparty
that makes real fills (TWAP children included), and a seeded workload (place, cancel by order, by
order_id and by client_order_id, modify, TWAPs and their cancels by each id, now and then the kill
switch) under seeded faults on the manager's account: dropped, duplicated and reordered replies,
latency, disconnects with and without a close frame, requests lost with a silent drop, and fills
racing cancels. Then the faults stop, the manager reconciles, and ``faultrunkit.compare`` requires,
for every order the venue has for the account: the same open/ended state, the same filled quantity,
fills summing to the venue's trades (none counted twice), no cancel the venue did not do, and every
cancel the strategy asked for carried out (or found filled); TWAPs likewise.

Size: ``QFEX_FAULT_SEEDS`` seeds (default 5 in the suite) starting at ``QFEX_FAULT_SEED_START`` (default 0);
``QFEX_FAULT_SEED=17`` (or ``=17,42``) runs just those. The large run::

    QFEX_FAULT_SEEDS=300 make test                      # the whole suite, this run at 300 seeds
    QFEX_FAULT_SEEDS=300 .venv/bin/pytest -q tests/faultrun

A failing seed fails its own test id (``test_random_faults[seed=N]``) and prints the seed, what
differed, the fault schedule and the replay command.
"""

from __future__ import annotations

import os

import pytest
import trio
from faultrunkit import evidence, replay_recipe, run_seed


def _seeds() -> list[int]:
    chosen = os.environ.get("QFEX_FAULT_SEED")
    if chosen:
        return [int(s) for s in chosen.split(",") if s.strip()]
    start = int(os.environ.get("QFEX_FAULT_SEED_START", "0"))
    return list(range(start, start + int(os.environ.get("QFEX_FAULT_SEEDS", "5"))))


@pytest.mark.parametrize("seed", _seeds(), ids=lambda s: f"seed={s}")
async def test_random_faults(seed: int) -> None:
    try:
        with trio.fail_after(60):
            problems, intents = await run_seed(seed)
    except BaseException as exc:  # a crash (or a hang) of the run is a failure of this seed too
        raise AssertionError(f"seed {seed}: the run itself failed: {exc!r}\n{replay_recipe(seed)}") from exc
    if problems:
        raise AssertionError(
            f"seed {seed}: the book differs from the venue after settling:\n  "
            + "\n  ".join(problems)
            + f"\nfaults injected: {intents.faults}\n{evidence(intents, problems)}\n"
            + replay_recipe(seed))
