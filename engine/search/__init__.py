"""Finding memories: BM25, entities, filters, fusion, collapse, the retriever. Imports extraction, store, inference."""
