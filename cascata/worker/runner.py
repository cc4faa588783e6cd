"""One component instance as an asyncio task: reads its ports, applies the firing rules, awaits
the user's runner, and closes its outputs when done."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .._plan import ComponentPlan, FiringGroup
from ..log import current_component, log, register_frame_owner
from .firing import Batcher, Zip, is_source
from .inputs import DONE, EMPTY, END, Activity, InputChannel
from .ports import InlineAbort, OutputPort, PersistentValue

# Seconds a component may run queued items back to back before it yields to the loop.
FAIR_SLICE = 0.0005
# Inline firings between yields to the event loop, so a long inline chain stays cooperative
# (a power of two: the check is a mask).
INLINE_YIELD_EVERY = 128


class UserExit(Exception):
    """Carries a ``SystemExit`` or ``KeyboardInterrupt`` that a component raised out of its
    task as an ordinary exception: asyncio lets those two escape the event loop, which would
    end the worker instead of reporting the component's error."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(repr(original))
        self.original = original


# What a component raising counts as its own error (not CancelledError: that aborts a run).
USER_ERRORS = (Exception, SystemExit, KeyboardInterrupt)


async def _guarded(step: Awaitable[None]) -> None:
    try:
        await step
    except (SystemExit, KeyboardInterrupt) as exc:
        raise UserExit(exc) from None


class PortReader:
    """The values a port yields to the firing rules: single items, or batches when configured."""

    def __init__(self, channel: InputChannel, activity: Activity) -> None:
        self.channel = channel
        self._activity = activity
        size = channel.batch_size
        self._batcher = Batcher(size) if size is not None else None
        self.batched = self._batcher is not None

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
        on_error: Callable[[ComponentRuntime, BaseException], None],
    ) -> None:
        self.plan = plan
        self.on_error = on_error
        self._ident = (plan.name, plan.class_name)
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
        self.inline = False  # set when the only publisher runs this component in its send
        self._inline_port: str | None = None
        self._firings = 0
        self._warned_return = False

    @property
    def firings(self) -> int:
        """Times the runner was called: an inline consumer fires once per item it receives."""
        if self._inline_port is not None:
            return self.channels[self._inline_port].received
        return self._firings

    async def run(self) -> None:
        """Run to completion; exceptions from user code propagate to the caller."""
        token = current_component.set((self.plan.name, self.plan.class_name))
        try:
            if is_source(self.plan.groups):
                await _guarded(self._fire())
                self.finish()
                return
            listeners = [
                asyncio.ensure_future(self._group(g)) for g in self.plan.groups if not g.fires
            ]
            try:
                await asyncio.gather(
                    *(_guarded(self._group(g)) for g in self.plan.groups if g.fires)
                )
            except BaseException:
                for task in listeners:
                    task.cancel()
                raise
            # Finishing drains every input, which ends the listeners' reads.
            self.finish()
            await asyncio.gather(*listeners)
        finally:
            current_component.reset(token)

    def acceptor(self, port: str) -> Callable[[Any], Awaitable[None]]:
        """A function firing this component on one item of ``port``, handed over inline by the
        port's only publisher. Built once per edge: this is the hottest path of a pipeline.

        It sets no context variable (that cost a third of a cheap stage): ``log`` finds the
        component by walking the stack to the innermost ``accept`` frame (see log.py)."""
        channel = self.channels[port]
        call = self.caller(port)
        on_error = self.on_error
        runtime = self  # read from this frame by running_component (log.py)
        every = INLINE_YIELD_EVERY - 1

        async def accept(item: Any) -> None:
            # An inline consumer fires once per item it receives: ``received`` is its firings.
            n = channel.received = channel.received + 1
            try:
                if await call(item) is not None:
                    runtime.returned()
            except InlineAbort:
                raise
            except USER_ERRORS as exc:
                on_error(runtime, exc)
                raise InlineAbort() from None
            if not n & every:
                await asyncio.sleep(0)  # an inline chain still lets the rest of the worker run

        register_frame_owner(accept.__code__, _inline_owner)
        self._inline_port = port
        return accept

    def caller(self, port: str) -> Callable[[Any], Awaitable[None]]:
        """A function calling the runner with one item of ``port``, for a component that fires
        on that port alone: every other argument (outports, persists, constants) is the same
        at each firing, so it is bound once, and positionally when the signature allows it.
        Python calls a function with positional arguments several times faster than with
        ``**kwargs``, and in a pipeline of cheap stages that call is most of the cost."""
        runner = self.plan.runner
        values = self.values
        names = _positional_names(runner)
        if names is None or set(names) != set(values):

            def by_name(item: Any) -> Awaitable[None]:
                values[port] = item
                return runner(**values)

            return by_name
        fixed = [values[n] for n in names]
        at = names.index(port)
        if len(fixed) == 1:
            return runner
        if len(fixed) == 2:
            a, b = fixed
            return (lambda item: runner(item, b)) if at == 0 else (lambda item: runner(a, item))
        if len(fixed) == 3:
            a, b, c = fixed
            if at == 0:
                return lambda item: runner(item, b, c)
            return (lambda item: runner(a, item, c)) if at == 1 else (lambda item: runner(a, b, item))

        def spread(item: Any) -> Awaitable[None]:
            args = fixed.copy()
            args[at] = item
            return runner(*args)

        return spread

    def set_activity(self, activity: Activity) -> None:
        """Report through ``activity`` (that of the task this inline consumer runs in)."""
        self.activity = activity
        for reader in self.readers.values():
            reader._activity = activity
        for port in self.outputs.values():
            port._activity = activity

    def finish(self) -> None:
        """Exit persists that are context managers, close outputs (end of stream downstream)
        and drain inputs nobody will read any more.

        Persists go first, so a consumer downstream sees the end of stream only once a file
        this component wrote is complete. An inline consumer ends inside its publisher's
        ``close``: its error is reported as its own, not the publisher's."""
        try:
            for name, *_ in self.plan.persists:
                self.values[name].exit()
        except USER_ERRORS as exc:
            if not self.inline:
                raise
            self.on_error(self, exc)
            raise InlineAbort() from None
        for port in self.outputs.values():
            port.close()
        for channel in self.channels.values():
            channel.drain()
        if not self.inline:  # an inline consumer shares its publisher's activity
            self.activity.set(DONE)

    async def _group(self, group: FiringGroup) -> None:
        if len(group.ports) == 1:
            await self._single(group.ports[0], group.fires)
            return
        zipper = Zip(group.ports)
        while True:
            values = None
            for name in zipper.missing():
                value = await self.readers[name].next()
                if value is END:
                    zipper.end(name)
                    return
                values = zipper.offer(name, value)
            self.values.update(zip(group.ports, values, strict=True))
            if group.fires:
                await self._fire_locked()

    async def _single(self, name: str, fires: bool) -> None:
        reader = self.readers[name]
        if reader.batched is False and self._lock is None and fires:
            await self._plain(name, reader)
            return
        while True:
            value = await reader.next()
            if value is END:
                return
            self.values[name] = value
            if fires:
                await self._fire_locked()

    async def _plain(self, name: str, reader: PortReader) -> None:
        """Fire on every item of one port: the hot loop of a consumer that is not inline."""
        poll = reader.channel.poll
        call = self.caller(name)
        clock = time.monotonic
        since = clock()
        fired = 0
        try:
            while True:
                value = poll()
                if value is EMPTY:
                    value = await reader.next()
                    if value is END:
                        return
                    since = clock()
                fired += 1
                if await call(value) is not None:
                    self.returned()
                # Items queued here would otherwise be run back to back without yielding: give
                # the rest of the worker (other components, the socket reader) a turn now and
                # then, so a CPU-heavy component does not starve its peers of credit and data.
                if clock() - since > FAIR_SLICE:
                    await asyncio.sleep(0)
                    since = clock()
        finally:
            self._firings += fired

    async def _fire_locked(self) -> None:
        if self._lock is None:
            await self._fire()
            return
        async with self._lock:
            await self._fire()

    async def _fire(self) -> None:
        self._firings += 1
        if await self.plan.runner(**self.values) is not None:
            self.returned()

    def returned(self) -> None:
        """The runner returned a value: dropped, so probably meant to be sent. Said once."""
        if self._warned_return:
            return
        self._warned_return = True
        log.warning(
            "the runner returned a value, which is dropped: to pass it downstream, send it "
            "(`await port.send(value)`) instead of returning it"
        )


def _positional_names(func: Any) -> list[str] | None:
    """The parameter names of ``func`` if it takes exactly those, all positionally, else None.

    Read from the code object, not inspect.signature: a decorator's ``__wrapped__`` would
    describe the wrapped function, and the wrapper may accept keywords only."""
    code = getattr(func, "__code__", None)
    if code is None or code.co_kwonlyargcount or code.co_posonlyargcount:
        return None
    if code.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS):
        return None
    return list(code.co_varnames[: code.co_argcount])


def _inline_owner(frame: Any) -> tuple[str, str]:
    """(name, class) of the component an ``accept`` frame is firing."""
    return frame.f_locals["runtime"]._ident
