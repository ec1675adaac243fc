"""Model runtimes: embedders (onnx, torch), spaCy, the GGUF LLM, its catalog. Imports config and base."""
