"""Settings: LLM model file (validated), GPU layers, threads, embedding model, data folder, API keys."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout,
                               QLabel, QLineEdit, QPushButton, QSpinBox, QVBoxLayout)

from engine import LociConfig

from .api_keys_panel import ApiKeysPanel


class SettingsDialog(QDialog):
    """check_model(path) returns an error message or None; values() gives (config, data_dir)."""

    def __init__(self, config: LociConfig, data_dir: Path | None, check_model: Callable[[str], str | None],
                 parent: Any = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self._config = copy.deepcopy(config)
        self._check_model = check_model
        self.model_path = QLineEdit(config.llm.model_path or "", placeholderText="Default: the packaged small model")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_model)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model_path, 1)
        model_row.addWidget(browse)
        self.found_models = QComboBox()
        self.found_models.setAccessibleName("Models found on this computer")
        self.found_models.addItem("Looking for models in LM Studio, Ollama, GPT4All, Jan…", None)
        self.found_models.setEnabled(False)
        self.found_models.activated.connect(self._found_model_picked)
        self.better_note = QLabel(wordWrap=True)  # which found model answers better than the default
        self.better_note.setStyleSheet("color: gray")
        self.better_note.hide()
        self.gpu_layers = QSpinBox(minimum=-1, maximum=999, value=config.llm.n_gpu_layers)
        self.gpu_layers.setToolTip("Layers to offload to the GPU: 0 = CPU only, -1 = all")
        self.threads = QSpinBox(minimum=0, maximum=256, value=config.llm.n_threads or 0)
        self.threads.setSpecialValueText("All cores")
        self.embedder = QLineEdit(config.embedder.model)
        self.embedder_path = QLineEdit(config.embedder.path or "", placeholderText="Default: the packaged model")
        browse_embedder = QPushButton("Browse…")
        browse_embedder.clicked.connect(self._browse_embedder)
        embedder_row = QHBoxLayout()
        embedder_row.addWidget(self.embedder_path, 1)
        embedder_row.addWidget(browse_embedder)
        self.data_dir = QLineEdit(str(data_dir or ""))
        browse_dir = QPushButton("Browse…")
        browse_dir.clicked.connect(self._browse_dir)
        dir_row = QHBoxLayout()
        dir_row.addWidget(self.data_dir, 1)
        dir_row.addWidget(browse_dir)
        self.error = QLabel(wordWrap=True)
        self.error.setStyleSheet("color: #b3261e")
        self.error.hide()
        form = QFormLayout()
        model_label = QLabel("LLM &model file:")
        model_label.setBuddy(self.model_path)
        form.addRow("Found on this &computer:", self.found_models)
        form.addRow("", self.better_note)
        form.addRow(model_label, model_row)
        form.addRow("&GPU layers:", self.gpu_layers)
        self.gpu_note = QLabel(_gpu_note(), wordWrap=True)
        self.gpu_note.setStyleSheet("color: gray")
        form.addRow("", self.gpu_note)
        form.addRow("&Threads:", self.threads)
        form.addRow("&Embedding model:", self.embedder)
        embedder_label = QLabel("Embedding model &folder:")
        embedder_label.setBuddy(self.embedder_path)
        form.addRow(embedder_label, embedder_row)
        dir_label = QLabel("&Data folder:")
        dir_label.setBuddy(self.data_dir)
        form.addRow(dir_label, dir_row)
        note = QLabel("The LLM settings apply to the next reply and extraction. A new data folder or embedding "
                      "model reopens the store (a store only opens with the model that built it).",
                      wordWrap=True)
        note.setStyleSheet("color: gray")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        self.api_keys: ApiKeysPanel | None = None
        if data_dir is not None:
            self.api_keys = ApiKeysPanel(data_dir)
            layout.addWidget(self.api_keys)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self.resize(560, 540 if data_dir is not None else 320)

    def set_models(self, models: list[Any]) -> None:
        """Fill the picker with engine.inference.model_catalog.FoundModel entries (found in the background)."""
        from engine.inference.model_catalog import better_model_note

        self.better_note.setText(better_model_note(models))
        self.better_note.show()
        self.found_models.clear()
        if not models:
            self.found_models.addItem("No GGUF models found in LM Studio, Ollama, GPT4All or Jan", None)
            return
        self.found_models.addItem(f"{len(models)} model{'s' if len(models) != 1 else ''} found: pick one…", None)
        current = self.model_path.text().strip()
        for m in models:
            self.found_models.addItem(m.label, str(m.path))
            self.found_models.setItemData(self.found_models.count() - 1, str(m.path), Qt.ItemDataRole.ToolTipRole)
            if current and str(m.path) == current:
                self.found_models.setCurrentIndex(self.found_models.count() - 1)
        self.found_models.setEnabled(True)

    def _found_model_picked(self, index: int) -> None:
        path = self.found_models.itemData(index)
        if path:
            self.model_path.setText(path)
            self.validate()

    def _browse_model(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "GGUF model file", self.model_path.text(),
                                              "GGUF models (*.gguf);;All files (*)")
        if name:
            self.model_path.setText(name)
            self.validate()

    def _browse_embedder(self) -> None:
        name = QFileDialog.getExistingDirectory(self, "Embedding model folder", self.embedder_path.text())
        if name:
            self.embedder_path.setText(name)
            self.validate()

    def _browse_dir(self) -> None:
        name = QFileDialog.getExistingDirectory(self, "Data folder", self.data_dir.text())
        if name:
            self.data_dir.setText(name)

    def validate(self) -> bool:
        problem = self._check_model(self.model_path.text().strip())
        if problem is None and not self.embedder.text().strip():
            problem = "Give the name of an embedding model."
        if problem is None:
            problem = check_embedding_folder(self.embedder_path.text().strip())
        if problem is None and not self.data_dir.text().strip():
            problem = "Pick a data folder."
        if problem is None and Path(self.data_dir.text().strip()).expanduser().is_file():
            problem = f"The data folder {self.data_dir.text().strip()} is a file. Pick a folder."
        self.error.setText(problem or "")
        self.error.setVisible(problem is not None)
        return problem is None

    def accept(self) -> None:
        if self.validate():
            super().accept()

    def values(self) -> tuple[LociConfig, Path]:
        cfg = copy.deepcopy(self._config)
        cfg.llm.model_path = self.model_path.text().strip() or None
        cfg.llm.n_gpu_layers = self.gpu_layers.value()
        cfg.llm.n_threads = self.threads.value() or None
        cfg.embedder.model = self.embedder.text().strip()
        cfg.embedder.path = self.embedder_path.text().strip() or None
        return cfg, Path(self.data_dir.text().strip()).expanduser()


def check_embedding_folder(path: str) -> str | None:
    """None when the folder is empty (packaged model) or holds a sentence-transformers model."""
    if not path:
        return None
    folder = Path(path).expanduser()
    if not folder.is_dir():
        return (f"The embedding model folder {folder} does not exist. Pick the folder of a "
                "sentence-transformers model, or leave the field empty to use the packaged model.")
    if not (folder / "config.json").is_file() and not (folder / "modules.json").is_file():
        return (f"{folder} does not hold a sentence-transformers model (no config.json or "
                "modules.json in it). Pick the model's folder, or leave the field empty.")
    from engine.inference.onnx_embedder import frozen_requirement, is_frozen

    if is_frozen():  # the installed app embeds with onnxruntime: the folder must ship onnx/model.onnx
        return frozen_requirement(folder)
    return None


def _gpu_note() -> str:
    from engine.inference.llm import gpu_backend

    backend = gpu_backend()
    if backend is None:
        return ("This llama.cpp build runs on the CPU only, so GPU layers are ignored. "
                "See the README to build it with CUDA, Metal or Vulkan.")
    return f"This llama.cpp build can offload to the GPU ({backend}): -1 puts every layer there."
