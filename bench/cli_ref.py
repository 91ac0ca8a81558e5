#!/usr/bin/python3
"""
cli_ref.py: the Python Mitogen half of bench_cli.

bench_cli runs this with /usr/bin/python3 (the interpreter python3-mitogen
is installed for) and reads one JSON object from the last line of its
stdout.  It connects to the same ssh targets bench_cli's C half used (the
aliases of its ssh_config), then times, over already-connected contexts,
what a Mitogen user would write:

  exec_true_ms  call_async(subprocess.call, ['true']) on every context,
                then every result collected
  call_ms       call_async(os.getpid) on every context, then every result

Each is {"median", "min", "max", "n"} over --rounds rounds; connect_ms is
the wall time of connecting all of them (a thread pool of --fanout).

With --interleave, bench_cli takes turns with this script on one machine
whose load swings: once connected it prints "READY", then runs one round
for each line read from stdin (until "done" or EOF), printing that
round's {"exec": ms, "call": ms}; the summary line comes last as usual.
"""
import argparse
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
import time


def summary(samples):
    return {'median': statistics.median(samples), 'min': min(samples),
            'max': max(samples), 'n': len(samples)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--ssh-config', required=True)
    ap.add_argument('--rounds', type=int, default=10)
    ap.add_argument('--fanout', type=int, default=20)
    ap.add_argument('--interleave', action='store_true')
    ap.add_argument('hosts', nargs='+')
    args = ap.parse_args()
    out = {'n': len(args.hosts)}
    try:
        import mitogen
        import mitogen.master
        import mitogen.utils
    except ImportError as e:
        print(json.dumps({'error': 'python3-mitogen is not installed: %s' % e}))
        return 0
    out['version'] = '.'.join(str(x) for x in mitogen.__version__)
    broker = mitogen.master.Broker()
    router = mitogen.master.Router(broker)
    try:
        def connect(host):
            return router.ssh(hostname=host, ssh_args=['-F', args.ssh_config],
                              python_path='/usr/bin/python3', connect_timeout=120)
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(args.fanout) as pool:
            ctxs = list(pool.map(connect, args.hosts))
        out['connect_ms'] = (time.monotonic() - t0) * 1e3
        # One untimed round: Mitogen loads subprocess into each child on
        # first use (module forwarding); the timed rounds are steady state.
        for c in [c.call_async(subprocess.call, ['true']) for c in ctxs]:
            c.get().unpickle()
        exec_ms, call_ms = [], []
        if args.interleave:
            print('READY', flush=True)
        for _ in range(args.rounds):
            if args.interleave:
                line = sys.stdin.readline()
                if not line or line.strip() == 'done':
                    break
            t0 = time.monotonic()
            rxs = [c.call_async(subprocess.call, ['true']) for c in ctxs]
            for rx in rxs:
                if rx.get().unpickle() != 0:
                    raise RuntimeError('true failed')
            exec_ms.append((time.monotonic() - t0) * 1e3)
            t0 = time.monotonic()
            rxs = [c.call_async(os.getpid) for c in ctxs]
            for rx in rxs:
                rx.get().unpickle()
            call_ms.append((time.monotonic() - t0) * 1e3)
            if args.interleave:
                print(json.dumps({'exec': exec_ms[-1], 'call': call_ms[-1]}), flush=True)
        out['exec_true_ms'] = summary(exec_ms)
        out['call_ms'] = summary(call_ms)
    except Exception as e:  # reported, not raised: the C half prints it
        out['error'] = '%s: %s' % (type(e).__name__, e)
    finally:
        broker.shutdown()
        broker.join()
    print(json.dumps(out))
    return 0


if __name__ == '__main__':
    sys.exit(main())
