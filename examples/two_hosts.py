"""A graph across two cascata worker daemons, on this machine's loopback (no root needed).

The script writes a cluster key, starts two daemons (``python -m cascata.worker``) on free
loopback ports, runs a graph whose components are spread over both, and stops the daemons.
On real hosts you start each daemon yourself (see the README, "Running on several hosts").
The components are defined here, in ``__main__``: they travel to the daemons by value.
"""

import os
import subprocess
import sys
import tempfile

from cascata import *


@component
@inport('n')
@outport('out')
async def Numbers(n, out):
    for i in range(n):
        await out.send(i)


@component
@inport('x')
@outport('out')
async def Square(x, out):
    await out.send((x * x, os.getppid()))  # a remote worker's parent: its daemon's fork server


def start_daemon(key_file):
    argv = [sys.executable, '-m', 'cascata.worker', '--listen', '127.0.0.1:0',
            '--key-file', key_file, '--processes', '2']
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # "cascata worker ready on 127.0.0.1:PORT: 2 processes, ..."
    print(line.strip())
    return proc, line.split()[4].rstrip(':')


with tempfile.TemporaryDirectory() as tmp:
    key_file = os.path.join(tmp, 'cluster.key')
    subprocess.run([sys.executable, '-m', 'cascata.cli', 'keygen', key_file], check=True)
    daemons = [start_daemon(key_file) for _ in range(2)]
    try:
        g = Graph()
        g.numbers = Numbers
        g.squares = Square * 4  # members spread over both daemons
        g.numbers.n < 1000
        g.numbers.out >> g.squares.x
        results = g.collect(g.squares.out)
        g.run(workers=[address for _, address in daemons], key_file=key_file)
        total = sum(value for value, _ in results)
        hosts = {pid for _, pid in results}
        print(f'{len(results)} squares, sum {total}, computed under {len(hosts)} daemons')
    finally:
        for proc, _ in daemons:
            proc.terminate()
            proc.wait()
