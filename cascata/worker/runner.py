"""One component instance as an asyncio task: reads its ports, applies the firing rules, awaits
the user's runner, and closes its outputs when done."""

from __future__ import annotations

import asyncio
from typing import Any

from .._plan import ComponentPlan, FiringGroup
from ..log import current_component
from .firing import Batcher, Zip, is_source
from .ports import DONE, END, Activity, InputChannel, OutputPort, PersistentValue


class PortReader:
    """The values a port yields to the firing rules: single items, or batches when configured."""

    def __init__(self, channel: InputChannel, activity: Activity) -> None:
        self.channel = channel
        self._activity = activity
        size = channel.batch_size
        self._batcher = Batcher(size) if size is not None else None

    async def next(self) -> Any:
        if self._batcher is None:
            return await self.channel.get(self._activity)
        while True:
            item = await self.channel.get(self._activity)
            if item is END:
                last = self._batcher.end()
                return END if last is None else last
            batch = self._batcher.add(item)
            if batch is not None:
                return batch


class ComponentRuntime:
    """Runs one component: the source rule, or one loop per firing group."""

    def __init__(
        self,
        plan: ComponentPlan,
        channels: dict[str, InputChannel],
        outputs: dict[str, OutputPort],
        activity: Activity,
    ) -> None:
        self.plan = plan
        self.activity = activity
        self.channels = channels
        self.outputs = outputs
        self.readers = {name: PortReader(ch, activity) for name, ch in channels.items()}
        # One dict of runner arguments, updated in place as values arrive.
        self.values: dict[str, Any] = {}
        for port in plan.inports:
            self.values[port.name] = port.initial if port.constant else None
        self.values.update(outputs)
        for name, factory, args, kwargs in plan.persists:
            self.values[name] = PersistentValue(factory, args, kwargs)
        self._lock = asyncio.Lock() if len(plan.groups) > 1 else None
        self.firings = 0

    async def run(self) -> None:
        """Run to completion; exceptions from user code propagate to the caller."""
        token = current_component.set((self.plan.name, self.plan.class_name))
        try:
            if is_source(self.plan.groups):
                await self._fire()
                self.finish()
                return
            listeners = [
                asyncio.ensure_future(self._group(g)) for g in self.plan.groups if not g.fires
            ]
            try:
                await asyncio.gather(*(self._group(g) for g in self.plan.groups if g.fires))
            except BaseException:
                for task in listeners:
                    task.cancel()
                raise
            # Finishing drains every input, which ends the listeners' reads.
            self.finish()
            await asyncio.gather(*listeners)
        finally:
            current_component.reset(token)

    def finish(self) -> None:
        """Close outputs (end of stream downstream) and drain inputs nobody will read any more."""
        for port in self.outputs.values():
            port.close()
        for channel in self.channels.values():
            channel.drain()
        self.activity.set(DONE)

    async def _group(self, group: FiringGroup) -> None:
        if len(group.ports) == 1:
            await self._single(group.ports[0], group.fires)
            return
        readers = [(p, self.readers[p]) for p in group.ports]
        zipper = Zip(group.ports)
        while True:
            for name, reader in readers:
                value = await reader.next()
                if value is END:
                    zipper.end(name)
                    return
                values = zipper.offer(name, value)
            if values is not None:
                self.values.update(zip(group.ports, values, strict=True))
                if group.fires:
                    await self._fire_locked()

    async def _single(self, name: str, fires: bool) -> None:
        reader = self.readers[name]
        values = self.values
        while True:
            value = await reader.next()
            if value is END:
                return
            values[name] = value
            if fires:
                await self._fire_locked()

    async def _fire_locked(self) -> None:
        if self._lock is None:
            await self._fire()
            return
        async with self._lock:
            await self._fire()

    async def _fire(self) -> None:
        self.firings += 1
        await self.plan.runner(**self.values)
