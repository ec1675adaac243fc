"""What the bundle leaves out although PyInstaller's hooks collect it (pure functions, unit-tested)."""
from __future__ import annotations

from fnmatch import fnmatch

# Shared libraries and programs the app never loads, by their path inside the bundle.
DROP_BINARIES = (
    # torch's C++ test programs, test backends and build tools
    "torch/test/*", "torch/bin/*", "torch/lib/libtorchbind_test.*", "torch/lib/libjitbackend_test.*",
    "torch/lib/libbackend_with_compiler.*", "torch/lib/libaoti_custom_ops.*",
    # CUDA: the CPU build needs none, but a ctypes lookup can find a host's CUDA toolkit
    "libcudart*", "libcublas*", "libcudnn*", "libnvrtc*", "libnvToolsExt*", "libcufft*", "libcurand*",
    "libcusparse*", "libcusolver*", "libnccl*", "libnvJitLink*",
    # Qt for embedded screens (eglfs, linuxfb, vnc, Vulkan display): a desktop app uses xcb/wayland
    "PySide6/Qt/plugins/platforms/libqeglfs.*", "PySide6/Qt/plugins/platforms/libqlinuxfb.*",
    "PySide6/Qt/plugins/platforms/libqminimalegl.*", "PySide6/Qt/plugins/platforms/libqvnc.*",
    "PySide6/Qt/plugins/platforms/libqvkkhrdisplay.*", "PySide6/Qt/plugins/egldeviceintegrations/*",
    "libQt6EglFSDeviceIntegration.*", "libQt6EglFsKmsSupport.*",
    "PySide6/Qt/lib/libQt6EglFSDeviceIntegration.*", "PySide6/Qt/lib/libQt6EglFsKmsSupport.*",
    # the GTK3 theme plugin would mix the host's GTK with bundled pango/cairo; Qt's own style is used
    "PySide6/Qt/plugins/platformthemes/libqgtk3.*", "libatk-1.0.*", "libcairo.*", "libcairo-gobject.*",
    "libgdk_pixbuf-2.0.*", "libpango-1.0.*", "libpangocairo-1.0.*", "libpangoft2-1.0.*",
    "libharfbuzz.*", "libthai.*", "libdatrie.*", "libfribidi.*", "libgraphite2.*", "libpixman-1.*",
)
KEEP_BINARIES = ("torch/bin/torch_shm_manager",)  # torch.multiprocessing's shared-memory helper

# Data files the app never reads: C/C++ headers and build files, test data, Qt's translations
# of its own dialogs (Loci's interface is English).
DROP_DATA = (
    "torch/include/*", "torch/share/*", "torch/test/*", "torch/bin/*",
    "torch/testing/_internal/data/*", "*/__pycache__/*", "PySide6/Qt/translations/*",
)


def _norm(dest: str) -> str:
    return dest.replace("\\", "/")


def drop_binary(dest: str) -> bool:
    """True when a collected binary (its path inside the bundle) is left out."""
    path = _norm(dest)
    if path in KEEP_BINARIES:
        return False
    return any(fnmatch(path, pattern) for pattern in DROP_BINARIES)


def drop_data(dest: str) -> bool:
    """True when a collected data file (its path inside the bundle) is left out."""
    return any(fnmatch(_norm(dest), pattern) for pattern in DROP_DATA)
