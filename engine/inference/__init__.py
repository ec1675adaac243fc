"""The local model runtimes: embedders (onnx, torch), spaCy, the GGUF LLM and its catalog. Imports only config, errors, paths, records."""
