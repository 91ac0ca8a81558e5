#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets and the golden frames.

Run with Debian's python3 (it needs python3-msgpack):
    /usr/bin/python3 tests/corpus/make_seeds.py
The seeds are encoded here, independently of the C code, so they also say
what a second implementation produces.  Seeds are named seed-*; inputs the
fuzzers found are kept under their libFuzzer (SHA-1) names.  The golden
frames are checked byte for byte by tests/test_wire_golden.c; rewriting
them changes the wire format, so do that only on purpose.
"""
import os
import struct

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))

MAGIC = 0x4D47
ENC_MSGPACK, ENC_RAW = 0, 1
HANDLE_IS_DEAD = 999
ENOROUTE = -4000


def frame(dst, src, auth, handle, reply_to, payload, flags=ENC_MSGPACK):
    return struct.pack(">HHIIIIII", MAGIC, flags, dst, src, auth, handle, reply_to,
                       len(payload)) + payload


def pk(v, single_float=False):
    return msgpack.packb(v, use_bin_type=True, use_single_float=single_float)


def ts(sec, nsec):
    return msgpack.Timestamp(sec, nsec)


def context(i):
    return msgpack.ExtType(1, struct.pack(">I", i))


def sender(ctx, handle):
    return msgpack.ExtType(2, struct.pack(">II", ctx, handle))


def error(typ, msg, ctx, fn):
    return msgpack.ExtType(3, pk([typ, msg, ctx, fn]))


def write(target, name, data):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# Values that together cover every encoding and its boundaries.
INTS = [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1, 2**64 - 1,
        -1, -32, -33, -128, -129, -32768, -32769, -2**31, -2**31 - 1, -2**63]
SCALARS = [None, True, False, 1.5, -0.0, float("inf"), "", "x" * 31, "y" * 32, "z" * 256,
           b"", b"\x00\xff", b"b" * 256, ts(0, 0), ts(2**32, 1), ts(-1, 999999999),
           context(7), sender(1, 1000), error("ValueError", "bad", "ctx", "fn"),
           msgpack.ExtType(42, b"\x01\x02\x03"), msgpack.ExtType(127, b"\x00" * 16)]


def reader_seeds():
    n = 0
    for v in INTS + SCALARS:
        write("msgpack_reader", "seed-%03d" % n, pk(v))
        n += 1
    write("msgpack_reader", "seed-%03d" % n, pk(1.5, single_float=True))
    n += 1
    nested = [1, {"a": [None, True, {"b": b"c"}]}, [[[[[]]]]], {1: -1, 2: [ts(1, 1)]}]
    write("msgpack_reader", "seed-%03d" % n, pk(nested))
    n += 1
    write("msgpack_reader", "seed-%03d" % n, b"".join(pk(v) for v in INTS))
    n += 1
    write("msgpack_reader", "seed-%03d" % n, b"\x91" * 64 + b"\xc0")  # depth 64
    n += 1
    write("msgpack_reader", "seed-%03d" % n, b"\x91" * 65 + b"\xc0")  # too deep
    n += 1
    # Non-canonical but valid encodings, reserved byte, truncations.
    for raw in [b"\xcc\x05", b"\xd3\x00\x00\x00\x00\x00\x00\x00\x05", b"\xd9\x01a",
                b"\xc7\x04\xff\x00\x00\x00\x01", b"\xc7\x0c\xff" + b"\x00" * 12,
                b"\xdc\x00\x01\xc0", b"\xc1", b"\xdd\xff\xff\xff\xff", b"\xdb\x00\x00\x01",
                b"\xc7\x05\x03\x94\xa0\xa0\xa0\xa0", b"\xd7\xff\xee\x6b\x28\x00\x00\x00\x00"]:
        write("msgpack_reader", "seed-%03d" % n, raw)
        n += 1


FIXED = ["i", "u", "(is)", "{si}", "(sSy)", "t", "(ch)", "v v", "(bfd n)", "s",
         "(i(ss){sy})", "a ii"]


def fmt_seeds():
    data = {
        0: [pk(-129), pk(2**63 - 1)],
        1: [pk(2**64 - 1), pk(0)],
        2: [pk([ENOROUTE, "no route"]), pk([1, None])],
        3: [pk({"k": -1})],
        4: [pk(["s", "a\x00b", b"\x00"]), pk([None, "", b""])],
        5: [pk(ts(0, 0)), pk(ts(2**34, 5)), pk(ts(-5, 7))],
        6: [pk([context(3), sender(3, 1001)])],
        7: [pk([1, 2]) + pk({"a": None})],
        8: [b"\x94" + pk(True) + pk(1.5, True) + pk(1.5) + pk(None),
            b"\x94" + pk(False) + pk(float("nan"), True) + pk(-2.5, True) + pk(None)],
        9: [pk("text"), pk(None), pk("bad\x00nul")],
        10: [pk([1, ["a", "b"], {"c": b"d"}])],
        11: [pk([7, 8]), b"\x90\x01\x02"],
    }
    n = 0
    for k, blobs in sorted(data.items()):
        for b in blobs:
            write("fmt_unpack", "seed-%03d" % n, bytes([k]) + b)
            n += 1
    # Arbitrary formats: a selector >= 12, the format length, the format,
    # then data (read from a third of the way in).
    anys = [("(is)", pk([1, "x"])), ("iiii", pk(1) + pk(2) + pk(3) + pk(4)),
            ("{si}{si}", pk({"a": 1}) + pk({"b": 2})), ("a h", pk([sender(1, 2)])),
            ("hhh", b"".join(pk(sender(i, i)) for i in range(3))),
            ("h h", pk(sender(1, 2)) + pk(sender(0xDEADBEEF, 1))),
            ("sss", pk("a") + pk("b") + pk(None)), ("(((())))", pk([[[[]]]])),
            ("m ss", pk({"k": "v"})), ("t c", pk(ts(1, 2)) + pk(context(9))),
            ("v y S", pk([1]) + pk(b"b") + pk("s")), ("q", b""), ("(", b""),
            ("{i}", pk({1: 2}))]
    for f, d in anys:
        pre = d[: len(d) // 2]  # the unpack starts a third of the way in
        blob = bytes([0x80, len(f)]) + f.encode() + pre + d
        write("fmt_unpack", "seed-%03d" % n, blob)
        n += 1


def golden():
    return {
        # A MessagePack payload of assorted values.
        "msgpack.bin": frame(5, 0, 0, 1000, 1001,
                             pk([1, -1, "str", b"bin", None, True, 1.5, {"k": 2**32}])),
        # A raw (not MessagePack) payload.
        "raw.bin": frame(5, 0, 0, 1002, 0, b"\x00\x01raw bytes\xff", flags=ENC_RAW),
        # A dead message answering a message with reply_to 1001 that
        # context 0 sent towards an unknown context 7.
        "dead.bin": frame(0, 5, 5, 1001, HANDLE_IS_DEAD,
                          pk([ENOROUTE, "no route to context 7"])),
        # The extension types.
        "ext.bin": frame(1, 2, 3, 104, 1003,
                         pk([context(7), sender(7, 1003),
                             error("KeyError", "'x'", "local.1", "lookup"),
                             ts(1, 0), ts(2**32, 1), ts(-1, 999999999)])),
        # An empty payload.
        "empty.bin": frame(4294967295, 0, 0, 105, 0, b""),
    }


def frame_seeds():
    n = 0
    g = golden()
    for name in sorted(g):
        plen = len(g[name]) - 28
        # Plenty of room, exactly enough, one byte short.
        for mx in [1 << 20, plen, plen - 1]:
            if mx >= 0:
                write("frame_decode", "seed-%03d" % n, struct.pack(">I", mx) + g[name])
                n += 1
    both = g["msgpack.bin"] + g["raw.bin"] + g["dead.bin"]
    for mx in [0, 16, 1 << 20]:
        write("frame_decode", "seed-%03d" % n, struct.pack(">I", mx) + both)
        n += 1
    bad = [struct.pack(">HHIIIIII", 0x474D, 0, 1, 2, 3, 4, 5, 0),
           struct.pack(">HHIIIIII", MAGIC, 2, 1, 2, 3, 4, 5, 0),
           struct.pack(">HHIIIIII", MAGIC, 0x8000, 1, 2, 3, 4, 5, 0),
           struct.pack(">HHIIIIII", MAGIC, 0, 1, 2, 3, 4, 5, 0xFFFFFFFF),
           frame(1, 2, 3, 4, 5, b"\x92\x01")[:-1],
           frame(1, 2, 3, 4, 5, b"\xc1\xc1"),
           frame(1, 2, 3, 4, 5, b"\x91" * 70 + b"\xc0")]
    for b in bad:
        write("frame_decode", "seed-%03d" % n, struct.pack(">I", 1 << 20) + b)
        n += 1
    for name, data in g.items():
        write("golden", name, data)


if __name__ == "__main__":
    reader_seeds()
    fmt_seeds()
    frame_seeds()
