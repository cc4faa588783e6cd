"""ForwardedStream: what a worker on a daemon prints is sent as whole lines."""

from __future__ import annotations

import sys
import threading

from cascata.transport import control
from cascata.worker.output import ForwardedStream, forward_output


def test_whole_lines_are_sent_as_they_complete_and_the_rest_on_flush():
    sent: list[control.Output] = []
    stream = ForwardedStream("stdout", sent.append, sys.__stdout__)
    print("one", file=stream)  # two writes: the text, then the newline
    stream.write("two\nthr")
    assert [r.text for r in sent] == ["one\n", "two\n"]
    stream.write("ee")
    stream.flush()
    stream.flush()  # nothing more to send
    assert [r.text for r in sent] == ["one\n", "two\n", "three"]
    assert {r.stream for r in sent} == {"stdout"}


def test_lines_printed_from_threads_are_never_cut_or_lost():
    sent: list[control.Output] = []
    stream = ForwardedStream("stderr", sent.append, sys.__stderr__)

    def shout(k: int) -> None:
        for i in range(500):
            print(f"thread {k} line {i}", file=stream)

    threads = [threading.Thread(target=shout, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stream.flush()
    lines = "".join(r.text for r in sent).splitlines()
    assert sorted(lines) == sorted(f"thread {k} line {i}" for k in range(4) for i in range(500))


def test_forward_output_replaces_both_streams_and_restore_sends_the_rest_and_puts_them_back():
    sent: list[control.Output] = []
    before = sys.stdout, sys.stderr
    restore = forward_output(sent.append)
    try:
        assert isinstance(sys.stdout, ForwardedStream) and isinstance(sys.stderr, ForwardedStream)
        sys.stdout.write("partial")
    finally:
        restore()
    assert (sys.stdout, sys.stderr) == before
    assert [(r.stream, r.text) for r in sent] == [("stdout", "partial")]
    restore()  # a second call changes nothing
    assert (sys.stdout, sys.stderr) == before
