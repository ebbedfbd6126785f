#!/usr/bin/env python3
"""The C side of ios/PocketLMFFI.xcframework: uniffi's header and module map.

`headers GENERATED OUT` copies the uniffi-generated pocketlm_ffiFFI.h and its
module map into OUT/pocketlm_ffiFFI/ (the module map as module.modulemap, with
link declarations added). scripts/build-xcframework.sh passes OUT to
`xcodebuild -create-xcframework -headers`, which copies it into the Headers/
of every slice. Why:
- The subdirectory: Xcode copies the Headers/ of every static-library
  XCFramework into one include directory, so two of them with a top-level
  module.modulemap collide; clang finds Headers/<module>/module.modulemap by
  the module's name.
- The link lines: a static library records no dependencies, and Rust's
  staticlib leaves out the system libraries llama.cpp needs. With `link` in the
  module map every Swift file that imports the module autolinks them (as
  llama.cpp's own build-xcframework.sh does).

`verify PATH` checks that layout in every slice of an XCFramework (from its
Info.plist) or in one headers directory. `--self-test` checks the checker.

Usage: xcframework_layout.py headers GENERATED OUT | verify PATH | --self-test
"""
import os
import plistlib
import re
import shutil
import sys
import tempfile

MODULE = "pocketlm_ffiFFI"
HEADER = f"{MODULE}.h"
LINKS = [
    'link "c++"',
    'link framework "Foundation"',
    'link framework "Metal"',
    'link framework "MetalKit"',
    'link framework "Accelerate"',
]


def with_links(modulemap: str) -> str:
    """uniffi's module map with every link declaration in LINKS (added before the closing brace)."""
    if not re.search(rf"^\s*module\s+{MODULE}\s*\{{", modulemap, re.M):
        raise ValueError(f"not a (non-framework) module map for {MODULE}")
    end = modulemap.rstrip().rfind("}")
    present = {line.strip() for line in modulemap.splitlines()}
    added = "".join(f"    {link}\n" for link in LINKS if link not in present)
    return modulemap[:end].rstrip("\n") + "\n" + added + "}\n"


def write_headers(generated: str, out: str) -> str:
    """OUT/pocketlm_ffiFFI/{pocketlm_ffiFFI.h, module.modulemap} from uniffi's output in GENERATED."""
    with open(os.path.join(generated, f"{MODULE}.modulemap")) as f:
        modulemap = with_links(f.read())
    shutil.rmtree(out, ignore_errors=True)
    sub = os.path.join(out, MODULE)
    os.makedirs(sub)
    shutil.copyfile(os.path.join(generated, HEADER), os.path.join(sub, HEADER))
    with open(os.path.join(sub, "module.modulemap"), "w") as f:
        f.write(modulemap)
    return sub


def headers_problems(headers: str) -> list[str]:
    """What is wrong with one slice's Headers directory (nothing: an empty list)."""
    sub = os.path.join(headers, MODULE)
    problems = [f"{headers}/{name}: belongs in {MODULE}/" for name in sorted(os.listdir(headers))
                if name in ("module.modulemap", HEADER)] if os.path.isdir(headers) else [f"{headers}: missing"]
    header, modmap = os.path.join(sub, HEADER), os.path.join(sub, "module.modulemap")
    if not os.path.isfile(header) or os.path.getsize(header) == 0:
        problems.append(f"{header}: missing or empty")
    if not os.path.isfile(modmap):
        return problems + [f"{modmap}: missing"]
    with open(modmap) as f:
        lines = {line.strip() for line in f}
    if f"module {MODULE} {{" not in lines:
        problems.append(f"{modmap}: does not declare `module {MODULE} {{`")
    problems += [f"{modmap}: no `{want}`" for want in [f'header "{HEADER}"', *LINKS] if want not in lines]
    return problems


def verify(path: str) -> list[str]:
    """Problems of an XCFramework (every library its Info.plist lists) or of a headers directory."""
    if not path.rstrip("/").endswith(".xcframework"):
        return headers_problems(path)
    try:
        with open(os.path.join(path, "Info.plist"), "rb") as f:
            libraries = plistlib.load(f)["AvailableLibraries"]
    except (OSError, KeyError, plistlib.InvalidFileException) as e:
        return [f"{path}/Info.plist: {e}"]
    if not libraries:
        return [f"{path}: no libraries"]
    problems = []
    for lib in libraries:
        if "HeadersPath" not in lib:
            problems.append(f"{path}/{lib.get('LibraryIdentifier')}: no headers")
        else:
            problems += headers_problems(os.path.join(path, lib["LibraryIdentifier"], lib["HeadersPath"]))
    return problems


UNIFFI_MODULEMAP = f'module {MODULE} {{\n    header "{HEADER}"\n    export *\n    use "Darwin"\n}}\n'


def fake_xcframework(root: str, headers: str, slices=("ios-arm64", "ios-arm64_x86_64-simulator")) -> str:
    """What `xcodebuild -create-xcframework -library ... -headers HEADERS` lays out, without the libraries."""
    xcf = os.path.join(root, "PocketLMFFI.xcframework")
    libs = []
    for ident in slices:
        shutil.copytree(headers, os.path.join(xcf, ident, "Headers"))
        libs.append({"LibraryIdentifier": ident, "LibraryPath": "libpocketlm_ffi.a", "HeadersPath": "Headers"})
    with open(os.path.join(xcf, "Info.plist"), "wb") as f:
        plistlib.dump({"AvailableLibraries": libs, "CFBundlePackageType": "XFWK", "XCFrameworkFormatVersion": "1.0"}, f)
    return xcf


def self_test() -> int:
    """The layout on dummy inputs passes; each kind of broken layout fails."""
    checks = 0
    with tempfile.TemporaryDirectory() as d:
        gen = os.path.join(d, "gen")
        os.makedirs(gen)
        with open(os.path.join(gen, HEADER), "w") as f:
            f.write("// dummy\n")
        with open(os.path.join(gen, f"{MODULE}.modulemap"), "w") as f:
            f.write(UNIFFI_MODULEMAP)
        good = os.path.join(d, "good")
        write_headers(gen, good)
        assert verify(good) == [], verify(good)
        assert verify(fake_xcframework(os.path.join(d, "x"), good)) == []
        assert with_links(with_links(UNIFFI_MODULEMAP)) == with_links(UNIFFI_MODULEMAP), "adding links is idempotent"
        checks += 3

        def broken(name: str, edit) -> None:
            nonlocal checks
            bad = os.path.join(d, name)
            shutil.copytree(good, bad)
            edit(bad)
            assert verify(fake_xcframework(os.path.join(d, name + "-x"), bad)), f"accepted: {name}"
            checks += 1

        def rewrite(path: str, drop: str) -> None:
            with open(path) as f:
                text = f.read()
            with open(path, "w") as f:
                f.write(text.replace(drop, ""))

        broken("no-cxx", lambda b: rewrite(os.path.join(b, MODULE, "module.modulemap"), 'link "c++"'))
        broken("no-metal", lambda b: rewrite(os.path.join(b, MODULE, "module.modulemap"), 'link framework "Metal"\n'))
        broken("top-level", lambda b: [shutil.move(os.path.join(b, MODULE, n), b) for n in (HEADER, "module.modulemap")])
        broken("no-header", lambda b: os.remove(os.path.join(b, MODULE, HEADER)))
        try:
            with_links(UNIFFI_MODULEMAP.replace("module ", "framework module ", 1))
            raise AssertionError("accepted a framework module map")
        except ValueError:
            checks += 1
    print(f"XCFramework layout self-test: {checks} passed, 0 failed")
    return 0


def main(args: list[str]) -> int:
    if args == ["--self-test"]:
        return self_test()
    if len(args) == 3 and args[0] == "headers":
        print(write_headers(args[1], args[2]))
        return 0
    if len(args) == 2 and args[0] == "verify":
        problems = verify(args[1])
        for p in problems:
            print(f"FAIL {p}")
        return 1 if problems else 0
    print(__doc__.strip().splitlines()[-1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
