#!/usr/bin/env python3
"""Checks that native libraries load on devices with 16 KB memory pages.

Google Play requires every 64-bit ABI's `.so` (arm64-v8a and x86_64) to have
its loadable segments aligned to at least 16 KB (Android 15's 16 KB page size);
a 4 KB-aligned library cannot load on such a device or emulator. This reads
the ELF program headers directly (no binutils needed) of each `.so` given,
or inside each `.aar`/`.zip` given, and fails if a 64-bit library has a
PT_LOAD segment aligned below 16 KB. 32-bit ABIs are reported, not required.

Usage: check_page_alignment.py FILE.so|FILE.aar ... | --self-test
Exit 0 when every 64-bit library is aligned, 1 otherwise (or on a file that
is not an ELF shared library).
"""
import contextlib
import io
import struct
import sys
import zipfile

PAGE = 16 << 10
PT_LOAD = 1


def load_alignments(data: bytes) -> tuple[int, list[int]]:
    """(ELF class bits, the p_align of every PT_LOAD segment)."""
    if data[:4] != b"\x7fELF":
        raise ValueError("not an ELF file")
    bits = {1: 32, 2: 64}.get(data[4])
    endian = {1: "<", 2: ">"}.get(data[5])
    if bits is None or endian is None:
        raise ValueError("unknown ELF class or byte order")
    if bits == 64:
        phoff, = struct.unpack_from(endian + "Q", data, 0x20)
        phentsize, phnum = struct.unpack_from(endian + "HH", data, 0x36)
        entry = lambda off: struct.unpack_from(endian + "IIQQQQQQ", data, off)  # type, flags, offset, vaddr, paddr, filesz, memsz, align
        align_of = lambda e: (e[0], e[7])
    else:
        phoff, = struct.unpack_from(endian + "I", data, 0x1C)
        phentsize, phnum = struct.unpack_from(endian + "HH", data, 0x2A)
        entry = lambda off: struct.unpack_from(endian + "IIIIIIII", data, off)  # type, offset, vaddr, paddr, filesz, memsz, flags, align
        align_of = lambda e: (e[0], e[7])
    aligns = []
    for i in range(phnum):
        kind, align = align_of(entry(phoff + i * phentsize))
        if kind == PT_LOAD:
            aligns.append(align)
    if not aligns:
        raise ValueError("no loadable segment")
    return bits, aligns


def libraries(path: str):
    """(name, bytes) of each shared library in `path` (a .so, or an archive holding some)."""
    if path.endswith((".aar", ".zip", ".jar", ".apk")):
        with zipfile.ZipFile(path) as z:
            for name in sorted(z.namelist()):
                if name.endswith(".so"):
                    yield f"{path}!{name}", z.read(name)
    else:
        with open(path, "rb") as f:
            yield path, f.read()


def elf(bits: int, aligns: list[int]) -> bytes:
    """A minimal little-endian ELF header with PT_LOAD segments of these alignments (for --self-test)."""
    if bits == 64:
        head = bytearray(64)
        head[:6] = b"\x7fELF\x02\x01"
        struct.pack_into("<Q", head, 0x20, 64)
        struct.pack_into("<HH", head, 0x36, 56, len(aligns))
        return bytes(head) + b"".join(struct.pack("<IIQQQQQQ", PT_LOAD, 5, 0, 0, 0, 0, 0, a) for a in aligns)
    head = bytearray(52)
    head[:6] = b"\x7fELF\x01\x01"
    struct.pack_into("<I", head, 0x1C, 52)
    struct.pack_into("<HH", head, 0x2A, 32, len(aligns))
    return bytes(head) + b"".join(struct.pack("<IIIIIIII", PT_LOAD, 0, 0, 0, 0, 0, 5, a) for a in aligns)


def self_test() -> int:
    """The checker on headers built here: it must pass and fail the right ones."""
    assert load_alignments(elf(64, [0x4000, 0x10000])) == (64, [0x4000, 0x10000])
    assert load_alignments(elf(32, [0x1000])) == (32, [0x1000])
    for bad in (b"not elf", elf(64, [])):
        try:
            load_alignments(bad)
            raise AssertionError(f"accepted {bad[:8]!r}")
        except ValueError:
            pass
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("jni/x86_64/libbad.so", elf(64, [0x1000, 0x4000]))
        z.writestr("jni/armeabi-v7a/libold.so", elf(32, [0x1000]))
    import tempfile, os
    with tempfile.TemporaryDirectory() as d:
        good, bad = os.path.join(d, "good.so"), os.path.join(d, "bad.aar")
        open(good, "wb").write(elf(64, [0x4000]))
        open(bad, "wb").write(buf.getvalue())
        with contextlib.redirect_stdout(io.StringIO()):  # their report lines would read as real failures
            assert main([good]) == 0, "a 16 KB-aligned library passes"
            assert main([bad]) == 1, "a 4 KB-aligned 64-bit library in an AAR fails"
    print("16 KB page alignment self-test: 6 passed, 0 failed")
    return 0


def main(paths: list[str]) -> int:
    if paths == ["--self-test"]:
        return self_test()
    if not paths:
        print(__doc__.strip().splitlines()[-3], file=sys.stderr)
        return 2
    failed = checked = 0
    for path in paths:
        found = False
        for name, data in libraries(path):
            found = True
            try:
                bits, aligns = load_alignments(data)
            except (ValueError, struct.error) as e:
                print(f"FAIL {name}: {e}")
                failed += 1
                continue
            smallest = min(aligns)
            ok = smallest >= PAGE
            if bits == 64:
                checked += 1
                failed += not ok
                print(f"{'ok  ' if ok else 'FAIL'} {name}: 64-bit, LOAD segments aligned to {smallest:#x}"
                      + ("" if ok else f" (needs {PAGE:#x} for 16 KB pages)"))
            else:
                print(f"info {name}: 32-bit, LOAD segments aligned to {smallest:#x} (not required)")
        if not found:
            print(f"FAIL {path}: no shared library in it")
            failed += 1
    print(f"16 KB page alignment: {checked - min(failed, checked)} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
