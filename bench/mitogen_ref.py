#!/usr/bin/python3
"""
mitogen_ref.py: the Python Mitogen half of bench_contexts.

bench_contexts runs this script with /usr/bin/python3 (Debian's python3, the
one python3-mitogen is installed for) and reads one JSON document from its
stdout; everything else this script or Mitogen says goes to stderr.  It does
the same work the C half does, the way a Mitogen user would do it:

  local_start_ms     router.local() until it returns a usable context
  fork_start_ms      router.fork() likewise
  rtt_local_us       context.call(ping) on a local child, one at a time
  rtt_fork_us        the same on a fork child
  bulk_mib_s         context.call(echo, b'x' * size): the argument goes up
                     and comes back; figure = size / wall time of the call
  idle_rss_kib       VmRSS of a local child that has answered one call
  contexts_ms        N local contexts started one after another (Mitogen
                     connects one context at a time)

Each metric is an object {"median", "min", "max", "mean", "n"}; a metric
that could not be measured is left out of "metrics" and its reason is put
in "errors" under the same name, so the C half can say what happened.
The script can also be run by hand: --help lists the knobs.
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time
import traceback


def ping():
    """The trivial function of the round-trip figures."""
    return True


def echo(value):
    """Returns its argument: the bulk figure sends 64 MiB up and back."""
    return value


def vm_rss_kib(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    raise RuntimeError('no VmRSS for pid %d' % pid)


def summary(samples):
    return {
        'median': statistics.median(samples),
        'min': min(samples),
        'max': max(samples),
        'mean': statistics.fmean(samples),
        'n': len(samples),
    }


def log(fmt, *args):
    sys.stderr.write('mitogen_ref: ' + (fmt % args) + '\n')
    sys.stderr.flush()


class Bench(object):
    def __init__(self, router, opts):
        self.router = router
        self.opts = opts
        self.metrics = {}
        self.errors = {}

    def run(self, name, fn):
        """Runs one measurement; a failure is recorded, not fatal, so one
        broken method (fork on a new Python, say) does not lose the rest."""
        if self.opts.only and name not in self.opts.only.split(','):
            return
        log('%s ...', name)
        try:
            value = fn()
        except Exception as e:
            log('%s failed: %s', name, traceback.format_exc())
            self.errors[name] = '%s: %s' % (type(e).__name__, e)
            return
        self.metrics[name] = value
        log('%s: median %.3f', name, value['median'])

    def start(self, method):
        samples = []
        for _ in range(self.opts.starts):
            t0 = time.perf_counter()
            ctx = getattr(self.router, method)()
            samples.append((time.perf_counter() - t0) * 1e3)
            ctx.shutdown(wait=True)
        return summary(samples)

    def rtt(self, method):
        ctx = getattr(self.router, method)()
        try:
            # Warm-up: the first call imports __main__'s functions into the
            # child through Mitogen's module forwarder.
            for _ in range(self.opts.warmup):
                ctx.call(ping)
            samples = []
            for _ in range(self.opts.calls):
                t0 = time.perf_counter()
                ctx.call(ping)
                samples.append((time.perf_counter() - t0) * 1e6)
            return summary(samples)
        finally:
            ctx.shutdown(wait=True)

    def bulk(self):
        size = self.opts.bulk_mib << 20
        data = b'x' * size
        ctx = self.router.local()
        try:
            ctx.call(ping)
            samples = []
            for _ in range(self.opts.bulk_rounds):
                t0 = time.perf_counter()
                back = ctx.call(echo, data)
                dt = time.perf_counter() - t0
                if len(back) != size:
                    raise RuntimeError('echo returned %d bytes' % len(back))
                del back
                samples.append(self.opts.bulk_mib / dt)
            return summary(samples)
        finally:
            ctx.shutdown(wait=True)

    def rss(self):
        samples = []
        for _ in range(self.opts.rss_children):
            ctx = self.router.local()
            try:
                pid = ctx.call(os.getpid)
                time.sleep(0.05)
                samples.append(vm_rss_kib(pid))
            finally:
                ctx.shutdown(wait=True)
        return summary(samples)

    def contexts(self):
        samples = []
        for _ in range(self.opts.contexts_rounds):
            ctxs = []
            t0 = time.perf_counter()
            try:
                for _ in range(self.opts.contexts):
                    ctxs.append(self.router.local())
                samples.append((time.perf_counter() - t0) * 1e3)
            finally:
                for ctx in ctxs:
                    ctx.shutdown()
                # Let the shutdowns drain before the next round or metric.
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and _live_children():
                    time.sleep(0.05)
        return summary(samples)


def _live_children():
    """Counts this process's children still alive (zombies included: they
    are reaped by Mitogen's broker in its own time)."""
    me = str(os.getpid())
    n = 0
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % pid) as f:
                fields = f.read().rsplit(')', 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[1] == me:
            n += 1
    return n


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--starts', type=int, default=20, help='starts timed per method')
    p.add_argument('--calls', type=int, default=2000, help='round trips timed')
    p.add_argument('--warmup', type=int, default=200, help='untimed round trips first')
    p.add_argument('--bulk-mib', type=int, default=64, help='bulk argument size')
    p.add_argument('--bulk-rounds', type=int, default=5, help='bulk calls timed')
    p.add_argument('--rss-children', type=int, default=3, help='children whose RSS is read')
    p.add_argument('--contexts', type=int, default=100, help='contexts started together')
    p.add_argument('--contexts-rounds', type=int, default=1, help='times that is done')
    p.add_argument('--only', default='', help='comma-separated metric names')
    return p.parse_args()


def main():
    opts = parse_args()
    doc = {
        'tool': 'mitogen',
        'python': platform.python_version(),
        'executable': sys.executable,
        'metrics': {},
        'errors': {},
    }
    try:
        import mitogen
        import mitogen.master
    except ImportError as e:
        doc['errors']['import'] = 'python3-mitogen is not installed: %s' % e
        json.dump(doc, sys.stdout)
        sys.stdout.write('\n')
        return 2
    doc['version'] = '.'.join(str(x) for x in mitogen.__version__)

    broker = mitogen.master.Broker()
    router = mitogen.master.Router(broker)
    b = Bench(router, opts)
    try:
        b.run('local_start_ms', lambda: b.start('local'))
        b.run('fork_start_ms', lambda: b.start('fork'))
        b.run('rtt_local_us', lambda: b.rtt('local'))
        b.run('rtt_fork_us', lambda: b.rtt('fork'))
        b.run('bulk_mib_s', b.bulk)
        b.run('idle_rss_kib', b.rss)
        b.run('contexts_ms', b.contexts)
    finally:
        broker.shutdown()
        broker.join()
    doc['metrics'] = b.metrics
    doc['errors'] = b.errors
    doc['contexts'] = opts.contexts
    doc['bulk_mib'] = opts.bulk_mib
    json.dump(doc, sys.stdout)
    sys.stdout.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
