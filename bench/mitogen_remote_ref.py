#!/usr/bin/python3
"""
mitogen_remote_ref.py: the Python Mitogen half of bench_remote.

bench_remote runs this with /usr/bin/python3 (the interpreter Debian's
python3-mitogen is installed for), after its own half, and reads one JSON
document from stdout; everything else goes to stderr.  Against the loopback
sshd of tests/infra, as its user, the way a Mitogen user would:

  ssh_start_ms     router.ssh() until it returns, then shutdown(wait=True)
                   (the start alone is timed)
  rtt_ssh_us       context.call(ping) over that ssh context, one at a time
  sudo_via_ssh_ms  router.sudo(via=the ssh context, username=USER3), a
                   NOPASSWD rule, until it returns
  sudo_start_ms    router.sudo(username=USER2) from this process (root)

Each metric is {"median", "min", "max", "mean", "n"}; one that failed is
left out of "metrics" and its reason is put in "errors".
"""
import argparse
import json
import sys
import time
import traceback

from mitogen_ref import summary  # the same figures as bench_contexts'


def ping():
    """The trivial function of the round-trip figure."""
    return True


def log(fmt, *args):
    sys.stderr.write('mitogen_remote_ref: ' + (fmt % args) + '\n')
    sys.stderr.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    ap.add_argument('--host', default='127.0.0.1')
    ap.add_argument('--user', required=True)
    ap.add_argument('--user2', required=True, help='sudo target from root')
    ap.add_argument('--user3', required=True, help='NOPASSWD sudo target')
    ap.add_argument('--ssh-config', required=True)
    ap.add_argument('--starts', type=int, default=10)
    ap.add_argument('--calls', type=int, default=2000)
    ap.add_argument('--warmup', type=int, default=200)
    opts = ap.parse_args()

    import mitogen.master
    import mitogen.utils

    metrics, errors = {}, {}
    broker = mitogen.master.Broker()
    router = mitogen.master.Router(broker)
    kw = dict(hostname=opts.host, username=opts.user, python_path='/usr/bin/python3',
              ssh_args=['-F', opts.ssh_config])

    def run(name, fn):
        log('%s ...', name)
        try:
            metrics[name] = summary(fn())
        except Exception:
            errors[name] = traceback.format_exc().strip().splitlines()[-1]
            log('%s failed: %s', name, errors[name])

    def ssh_start():
        out = []
        for _ in range(opts.starts):
            t0 = time.perf_counter()
            c = router.ssh(**kw)
            out.append((time.perf_counter() - t0) * 1e3)
            c.shutdown(wait=True)
        return out

    def rtt():
        c = router.ssh(**kw)
        try:
            for _ in range(opts.warmup):
                c.call(ping)
            out = []
            for _ in range(opts.calls):
                t0 = time.perf_counter()
                c.call(ping)
                out.append((time.perf_counter() - t0) * 1e6)
            return out
        finally:
            c.shutdown(wait=True)

    def sudo_via_ssh():
        s = router.ssh(**kw)
        try:
            out = []
            for _ in range(opts.starts):
                t0 = time.perf_counter()
                c = router.sudo(via=s, username=opts.user3, python_path='/usr/bin/python3')
                out.append((time.perf_counter() - t0) * 1e3)
                c.shutdown(wait=True)
            return out
        finally:
            s.shutdown(wait=True)

    def sudo_start():
        out = []
        for _ in range(opts.starts):
            t0 = time.perf_counter()
            c = router.sudo(username=opts.user2, python_path='/usr/bin/python3')
            out.append((time.perf_counter() - t0) * 1e3)
            c.shutdown(wait=True)
        return out

    try:
        run('ssh_start_ms', ssh_start)
        run('rtt_ssh_us', rtt)
        run('sudo_via_ssh_ms', sudo_via_ssh)
        run('sudo_start_ms', sudo_start)
    finally:
        broker.shutdown()
        broker.join()
    json.dump({'mitogen_version': '.'.join(map(str, mitogen.__version__)),
               'metrics': metrics, 'errors': errors}, sys.stdout)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
