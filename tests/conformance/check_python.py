#!/usr/bin/python3
"""Conformance of mitogen-c's MessagePack codec with msgpack-python.

Usage: /usr/bin/python3 check_python.py PATH-TO-wire_vectors

1. `wire_vectors emit` gives, per vector, our encoding and the Python value
   it means.  Each encoding must decode with msgpack.unpackb to exactly
   that value (same types, no bytes left over).
2. Each value is packed with msgpack.packb and the bytes are fed to
   `wire_vectors check`, which decodes them with our reader and compares
   them with its own encoding.

Exits 0 when everything matched; prints every mismatch otherwise.  Needs
Debian's python3-msgpack; without it this fails loudly (exit 2).
"""
import math
import subprocess
import sys

try:
    import msgpack
    from msgpack import ExtType, Timestamp
except ImportError:
    print("check_python.py: python3-msgpack is not installed for %s "
          "(apt-get install python3-msgpack)" % sys.executable)
    sys.exit(2)


def same(a, b):
    """Equality that also insists on the same types (1 != 1.0 != True)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        if len(a) != len(b):
            return False
        for (ka, va), (kb, vb) in zip(a.items(), b.items()):
            if not same(ka, kb) or not same(va, vb):
                return False
        return True
    return a == b


def main():
    prog = sys.argv[1]
    emitted = subprocess.run([prog, "emit"], stdout=subprocess.PIPE, check=True).stdout
    env = {"__builtins__": {"float": float, "bytes": bytes},
           "ExtType": ExtType, "Timestamp": Timestamp}
    failures = 0
    back = []
    count = 0
    for line in emitted.decode().splitlines():
        name, hexs, expr, opts = line.split("\t")
        count += 1
        want = eval(expr, env)
        try:
            got = msgpack.unpackb(bytes.fromhex(hexs), raw=False, strict_map_key=False)
        except Exception as e:  # ExtraData, FormatError, ...
            print("FAIL %s: msgpack-python cannot decode our bytes: %r" % (name, e))
            failures += 1
            got = None
        else:
            if not same(got, want):
                print("FAIL %s: msgpack-python decoded %.200r, want %.200r" % (name, got, want))
                failures += 1
        enc = msgpack.packb(want, use_bin_type=True, use_single_float="f32" in opts)
        back.append("%s\t%s\n" % (name, enc.hex()))
    print("%d vectors checked from our side" % count)
    res = subprocess.run([prog, "check"], input="".join(back).encode(),
                         stdout=subprocess.PIPE)
    out = res.stdout.decode()
    for line in out.splitlines():
        if not line.startswith("ok "):
            print(line)
    if res.returncode != 0:
        failures += 1
    if count == 0:
        print("FAIL: wire_vectors emitted nothing")
        failures += 1
    print("msgpack-python %s: %s" % (".".join(map(str, msgpack.version)),
                                     "all vectors match" if failures == 0
                                     else "%d failures" % failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
