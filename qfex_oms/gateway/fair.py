"""Fair queuing in front of the one QFEX connection: no client can starve another's cancels.

QFEX limits a user across all connections with two independent buckets, general and cancel
(qfex-api.md §7), and the manager's pacer spends them in arrival order. In front of it the gateway
keeps, per bucket, one queue per client and lets one request at a time go to the manager: the next
is released when the previous one's frame has been written (its pacer slot taken) or its call ended
without writing. The released request is picked round-robin across the clients with something
queued, so a client flooding the cancel bucket holds at most the slot in flight: another client's
cancel goes out no later than one pacer slot after it arrived. Cancels never wait behind orders
(their bucket has its own queue and its own slot: "cancels first").

Synchronous bookkeeping on the caller's task: ``submit`` from a client's reader and
``frame_written`` from the manager's writer never await; jobs run in the gateway's nursery.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Hashable

import trio

from qfex_oms.logs import get_logger
from qfex_oms.protocol.limits import Bucket

log = get_logger("qfex_oms.gateway")

Job = Callable[[], Awaitable[None]]
# Requests one client may have waiting for a slot before it is answered RateLimited, as QFEX would.
MAX_QUEUED_PER_CLIENT = 10_000


class _Lane:
    __slots__ = ("current", "last_served", "queues")

    def __init__(self) -> None:
        # In serving order: the head goes next; a client just served moves to the back.
        self.queues: OrderedDict[Hashable, deque[Job]] = OrderedDict()
        self.current: object | None = None  # the token of the request holding the slot
        self.last_served: Hashable | None = None


class FairQueue:
    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        self._lanes = {bucket: _Lane() for bucket in Bucket}

    def submit(self, client: Hashable, bucket: Bucket, job: Job) -> bool:
        """Queue ``job`` for ``client``; False (nothing queued) when the client has too many waiting."""
        lane = self._lanes[bucket]
        queue = lane.queues.get(client)
        if queue is None:
            queue = lane.queues[client] = deque()
            if lane.last_served in lane.queues:
                # A newcomer goes before the client served last, as a round-robin pointer would.
                lane.queues.move_to_end(lane.last_served)
        elif len(queue) >= MAX_QUEUED_PER_CLIENT:
            return False
        queue.append(job)
        if lane.current is None:
            self._release(bucket, lane)
        return True

    def forget(self, client: Hashable) -> int:
        """Drop what a gone client still had queued (never sent: as lost in transit on QFEX)."""
        dropped = 0
        for lane in self._lanes.values():
            queue = lane.queues.pop(client, None)
            dropped += len(queue or ())
        return dropped

    def queued(self, client: Hashable) -> int:
        return sum(len(lane.queues.get(client, ())) for lane in self._lanes.values())

    def frame_written(self, bucket: Bucket) -> None:
        """The manager wrote a frame of ``bucket``: the request in flight has had its slot."""
        lane = self._lanes[bucket]
        if lane.current is not None:
            self._passed(bucket, lane.current)

    def _release(self, bucket: Bucket, lane: _Lane) -> None:
        while lane.queues:
            client, queue = next(iter(lane.queues.items()))
            if not queue:
                del lane.queues[client]
                continue
            job = queue.popleft()
            lane.last_served = client
            if queue:
                lane.queues.move_to_end(client)  # round-robin: the others go next
            else:
                del lane.queues[client]
            token = lane.current = object()
            self._nursery.start_soon(self._run, bucket, job, token)
            return

    async def _run(self, bucket: Bucket, job: Job, token: object) -> None:
        try:
            await job()
        except Exception:
            log.exception("gateway request failed")
        finally:
            self._passed(bucket, token)

    def _passed(self, bucket: Bucket, token: object) -> None:
        lane = self._lanes[bucket]
        if lane.current is token:
            lane.current = None
            self._release(bucket, lane)
