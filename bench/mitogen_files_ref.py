#!/usr/bin/python3
"""
mitogen_files_ref.py: the Python Mitogen half of bench_files.

bench_files runs this script with /usr/bin/python3 (Debian's python3, the
one python3-mitogen is installed for) and reads one JSON document from its
stdout; everything else goes to stderr.  It moves a file from the master to
a child the way Mitogen's ansible plugin does: the master runs a
mitogen.service.Pool with a FileService that has the file registered, and
the child calls FileService.get(master, path, fp), which streams the file
down in chunks under the service's 1 MiB window and writes it to fp.

  <method>_push_mib_s   size / wall time of the child's fetch call, for
                        method local, sudo (to --sudo-user) and ssh
                        (--ssh-host with --ssh-config), best of --rounds

A method that could not be measured is left out of "metrics" and its
reason goes under "errors".  Mitogen has no streamed counterpart for the
other direction (its fetch returns the whole file in one message, which
its 128 MiB message cap refuses at this size), so only push is measured.
"""
import argparse
import json
import logging
import os
import sys
import time
import traceback

import mitogen.core
import mitogen.master
import mitogen.service
import mitogen.utils


def fetch(master, path, dest):
    """Runs in the child: pulls path from the master's FileService."""
    t0 = time.monotonic()
    with open(dest, 'wb') as fp:
        ok, _meta = mitogen.service.FileService.get(master, path, fp)
    dt = time.monotonic() - t0
    size = os.path.getsize(dest)
    os.unlink(dest)
    if not ok:
        raise RuntimeError('FileService.get() reported an interrupted transfer')
    return size, dt


def measure(router, ctx, src, dest, rounds):
    size = os.path.getsize(src)
    best = None
    for _ in range(rounds):
        t0 = time.monotonic()
        got, _dt = ctx.call(fetch, router.myself(), src, dest)
        t = time.monotonic() - t0
        if got != size:
            raise RuntimeError('got %d bytes of %d' % (got, size))
        best = t if best is None or t < best else best
    return size / 1048576.0 / best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--src', required=True, help='the file to move')
    ap.add_argument('--dir', required=True, help='a folder every child may write')
    ap.add_argument('--rounds', type=int, default=2)
    ap.add_argument('--sudo-user', default=None)
    ap.add_argument('--ssh-host', default=None)
    ap.add_argument('--ssh-user', default=None)
    ap.add_argument('--ssh-config', default=None)
    ap.add_argument('--python', default='/usr/bin/python3')
    args = ap.parse_args()
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)

    metrics, errors = {}, {}
    broker = mitogen.master.Broker()
    router = mitogen.master.Router(broker)
    try:
        service = mitogen.service.FileService(router)
        service.register(args.src)
        pool = mitogen.service.Pool(router, services=[service])
        methods = [('local', lambda: router.local(python_path=[args.python]))]
        if args.sudo_user:
            methods.append(('sudo', lambda: router.sudo(username=args.sudo_user,
                                                        python_path=[args.python])))
        if args.ssh_host:
            methods.append(('ssh', lambda: router.ssh(
                hostname=args.ssh_host, username=args.ssh_user,
                ssh_args=['-F', args.ssh_config] if args.ssh_config else None,
                python_path=[args.python])))
        for name, connect in methods:
            try:
                ctx = connect()
                dest = os.path.join(args.dir, 'mitogen-%s' % name)
                metrics['%s_push_mib_s' % name] = measure(router, ctx, args.src, dest,
                                                          args.rounds)
                ctx.shutdown(wait=True)
            except Exception as e:
                traceback.print_exc(file=sys.stderr)
                errors['%s_push_mib_s' % name] = '%s: %s' % (type(e).__name__, e)
        pool.stop()
    finally:
        broker.shutdown()
        broker.join()
    json.dump({'mitogen_version': '.'.join(map(str, mitogen.__version__)),
               'metrics': metrics, 'errors': errors}, sys.stdout)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
