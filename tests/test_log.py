"""``log``: lines tagged ``LEVEL - name@Class``, forwarded from workers to the caller's stderr."""

import io
import logging
import re

import pytest

import cascata
import cascata.log
from cascata import Graph, component, inport, log, outport
from cascata.log import format_line, write_line

ANSI = re.compile(r"\x1b\[[0-9;]*m")


@component
@inport("n", default=3)
async def FromImport(n):
    from cascata import log

    for i in range(n):
        log.info(f"from-import {i}")


@component
@inport("n", default=3)
async def ModuleImport(n):
    import cascata.log as log

    for i in range(n):
        log.info(f"module-import {i}")


@component
@inport("n", default=3)
async def Levels(n):
    log.debug("a debug line")
    log.warning("a warning line")
    log.error("an error line")
    try:
        raise KeyError("boom")
    except KeyError:
        log.exception("caught it")


@component
@inport("n")
@outport("out")
async def Chatty(n, out):
    for i in range(n):
        log.info(f"chatty {i}")
        await out.send(i)


@component
@inport("x")
async def Echo(x):
    log.info(f"echo {x}")


@component
@inport("x")
@outport("out")
async def Relay(x, out):
    log.info(f"before {x}")
    await out.send(x)
    log.info(f"after {x}")


def _lines(err, marker):
    return [line for line in err.splitlines() if marker in line]


@pytest.fixture
def app_logging():
    """Gives back the logging configuration a test changes: the root's handlers and level, and
    the cascata logger's level."""
    root = logging.getLogger()
    handlers, root_level, level = list(root.handlers), root.level, log.level
    yield root
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(root_level)
    log.setLevel(level)


def test_from_import_log_works_inside_a_component(capfd):
    g = Graph()
    g.first = FromImport
    g.run(num_workers=1)
    err = capfd.readouterr().err
    assert _lines(err, "from-import") == [f"INFO - first@FromImport: from-import {i}" for i in range(3)]


def test_import_cascata_log_as_log_works_inside_a_component(capfd):
    g = Graph()
    g.second = ModuleImport
    g.run(num_workers=1)
    err = capfd.readouterr().err
    assert _lines(err, "module-import") == [
        f"INFO - second@ModuleImport: module-import {i}" for i in range(3)
    ]


def test_both_spellings_offer_the_logging_calls():
    import cascata.log as by_module

    for name in ("debug", "info", "warning", "error", "exception", "critical"):
        assert callable(getattr(log, name))
        assert callable(getattr(by_module, name))
        assert callable(getattr(cascata.log, name))


def test_levels_and_tracebacks_reach_the_caller_without_colour(capfd, app_logging):
    log.setLevel(logging.DEBUG)
    g = Graph()
    g.lv = Levels
    g.run(num_workers=1)
    err = capfd.readouterr().err
    assert "DEBUG - lv@Levels: a debug line" in err
    assert "WARNING - lv@Levels: a warning line" in err
    assert "ERROR - lv@Levels: an error line" in err
    assert "ERROR - lv@Levels: caught it\nTraceback (most recent call last):" in err
    assert "KeyError: 'boom'" in err
    assert not ANSI.search(err)


def test_lines_from_each_worker_keep_their_order(capfd):
    g = Graph()
    g.talk = Chatty
    g.echo = Echo
    g.talk.n < 300
    g.talk.out >> g.echo.x
    g.run(num_workers=2)
    err = capfd.readouterr().err
    assert _lines(err, "talk@Chatty") == [f"INFO - talk@Chatty: chatty {i}" for i in range(300)]
    assert _lines(err, "echo@Echo") == [f"INFO - echo@Echo: echo {i}" for i in range(300)]


def test_lines_from_an_inline_chain_name_the_component_that_logged(capfd):
    # One worker: each relay and the echo run inside their publisher's send, and the tag must
    # still name the innermost component, and the publisher again once its send returns.
    g = Graph()
    g.talk = Chatty
    g.r1 = Relay
    g.r2 = Relay
    g.echo = Echo
    g.talk.n < 3
    g.talk.out >> g.r1.x
    g.r1.out >> g.r2.x
    g.r2.out >> g.echo.x
    report = g.run(num_workers=1)
    assert report.components["r2"].firings == 3
    lines = _lines(capfd.readouterr().err, "INFO")
    expected = []
    for i in range(3):
        expected += [
            f"INFO - talk@Chatty: chatty {i}",
            f"INFO - r1@Relay: before {i}",
            f"INFO - r2@Relay: before {i}",
            f"INFO - echo@Echo: echo {i}",
            f"INFO - r2@Relay: after {i}",
            f"INFO - r1@Relay: after {i}",
        ]
    assert lines == expected


def test_lines_outside_components_are_tagged_cascata(capfd):
    log.warning("outside any component")
    assert capfd.readouterr().err == "WARNING - cascata: outside any component\n"


# -- formatting ---------------------------------------------------------------------------------


def test_plain_format_has_no_escape_codes():
    assert format_line("INFO", ("w", "Worker"), "hi", colour=False) == "INFO - w@Worker: hi"
    assert format_line("ERROR", None, "hi", colour=False) == "ERROR - cascata: hi"


def test_colour_format_keeps_the_text_readable():
    line = format_line("INFO", ("w", "Worker"), "hi", colour=True)
    assert ANSI.search(line)
    assert ANSI.sub("", line) == "INFO - w@Worker: hi"


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize(("stream", "coloured"), [(_Terminal(), True), (io.StringIO(), False)])
def test_colour_only_on_a_terminal(monkeypatch, stream, coloured):
    monkeypatch.setattr("sys.stderr", stream)
    write_line("INFO", ("w", "Worker"), "hi")
    text = stream.getvalue()
    assert bool(ANSI.search(text)) is coloured
    assert ANSI.sub("", text) == "INFO - w@Worker: hi\n"


def test_exception_in_the_calling_process_includes_the_traceback(capfd):
    try:
        raise KeyError("here")
    except KeyError:
        log.exception("failed")
    err = capfd.readouterr().err
    assert err.startswith("ERROR - cascata: failed\nTraceback (most recent call last):")
    assert err.rstrip().endswith("KeyError: 'here'")


@component
@inport("n", default=5)
async def FromThread(n):
    import asyncio

    for i in range(n):
        await asyncio.to_thread(log.info, f"threaded {i}")


def test_lines_logged_from_a_thread_inside_a_component_arrive(capfd):
    g = Graph()
    g.t = FromThread
    g.run(num_workers=1)
    err = capfd.readouterr().err
    # asyncio.to_thread carries the component's context along, so the tag stays
    assert _lines(err, "threaded") == [f"INFO - t@FromThread: threaded {i}" for i in range(5)]


@component
@inport("n", default=20000)
async def Flood(n):
    for i in range(n):
        log.info(f"flood {i}")


def test_a_flood_of_log_lines_loses_none(capfd):
    g = Graph()
    g.f = Flood
    g.run(num_workers=1)
    err = capfd.readouterr().err
    assert len(_lines(err, "INFO - f@Flood: flood ")) == 20000


@component
@inport("n", default=400)
@outport("out")
async def TalkAndSend(n, out):
    for i in range(n):
        log.info(f"talk {i}")
        await out.send(i)


@component
@inport("x")
async def TalkBack(x):
    log.info(f"back {x}")


def test_workers_that_log_while_the_coordinator_probes_always_finish(capfd):
    # Regression: a control send could swallow the socket's edge-triggered readiness, leaving a
    # worker deaf to PROBE and FINISH (the run then hung or the worker was SIGTERMed).
    for _ in range(20):
        g = Graph()
        g.a = TalkAndSend
        g.b = TalkBack
        g.a.out >> g.b.x
        g.run(num_workers=2)
    err = capfd.readouterr().err
    assert len(_lines(err, ": back ")) == 20 * 400


# -- through the standard library ---------------------------------------------------------------


@component
@inport("n", default=1)
async def StdlibUser(n):
    library = logging.getLogger("tests.somelib")
    library.warning("from a library")
    library.info("library info")
    log.info("cascata info")
    log.debug("cascata debug")


def _run_stdlib_user():
    g = Graph()
    g.u = StdlibUser
    g.run(num_workers=1)


def test_default_console_shows_info_and_library_warnings_tagged_with_the_component(capfd):
    _run_stdlib_user()
    err = capfd.readouterr().err
    assert "INFO - u@StdlibUser: cascata info" in err.splitlines()
    assert "WARNING - u@StdlibUser: from a library" in err.splitlines()
    assert "cascata debug" not in err  # default level INFO
    assert "library info" not in err  # a library's logger follows the root's level (WARNING)


def test_file_handler_of_the_application_receives_worker_lines(tmp_path, capfd, app_logging):
    handler = logging.FileHandler(tmp_path / "run.log")
    handler.setFormatter(logging.Formatter("%(levelname)s|%(name)s|%(message)s"))
    app_logging.addHandler(handler)
    app_logging.setLevel(logging.INFO)
    g = Graph()
    g.u = StdlibUser
    g.talk = Chatty
    g.echo = Echo
    g.talk.n < 3
    g.talk.out >> g.echo.x
    g.run(num_workers=2)
    lines = (tmp_path / "run.log").read_text().splitlines()
    assert "INFO|cascata|u@StdlibUser: cascata info" in lines
    assert "WARNING|tests.somelib|u@StdlibUser: from a library" in lines
    assert "INFO|tests.somelib|u@StdlibUser: library info" in lines
    assert [x for x in lines if "echo@Echo" in x] == [f"INFO|cascata|echo@Echo: echo {i}" for i in range(3)]
    assert "cascata debug" not in "\n".join(lines)
    assert capfd.readouterr().err == ""  # the application configured logging: no console of ours


def test_basic_config_level_applies_to_worker_lines(capfd, app_logging):
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s:%(name)s:%(message)s")
    _run_stdlib_user()
    err = capfd.readouterr().err.splitlines()
    assert err == ["WARNING:tests.somelib:u@StdlibUser: from a library"]
    app_logging.setLevel(logging.DEBUG)
    _run_stdlib_user()
    err = capfd.readouterr().err.splitlines()
    assert "DEBUG:cascata:u@StdlibUser: cascata debug" in err
    assert "INFO:tests.somelib:u@StdlibUser: library info" in err


def test_log_set_level_applies_to_worker_lines(capfd, app_logging):
    log.setLevel(logging.WARNING)
    _run_stdlib_user()
    err = capfd.readouterr().err
    assert "cascata info" not in err
    assert "WARNING - u@StdlibUser: from a library" in err
