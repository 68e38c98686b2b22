"""The text format of gmk's golden data (read by tests/support/golden.hpp), shared by the scripts
in this directory: one generator-less case per entry, values as IEEE bits in hex."""
import struct


def bits(v, dtype):
    """IEEE bits of v as float32 (8 hex digits) or float64 (16 hex digits)."""
    if dtype == "float32":
        return "%08x" % struct.unpack("<I", struct.pack("<f", float(v)))[0]
    return "%016x" % struct.unpack("<Q", struct.pack("<d", float(v)))[0]


def write_entries(path, header, entries):
    """Writes (name, dtype, values) entries, each as one case with one call keeping every value."""
    with open(path, "w") as fh:
        fh.write(header)
        for name, dtype, values in entries:
            fh.write(f"case {name} {dtype} 0 {len(values)}\ncall 0 {len(values)} {len(values)}\n")
            for i, v in enumerate(values):
                fh.write(f"{i} {bits(v, dtype)}\n")
