"""Reading corpora into pages, OCR, chunking, embedding and the on-disk index.

Nothing here imports ``rag`` or ``cli``; heavy libraries (torch, faiss, OCR
engines) are imported lazily inside the functions that need them.
"""
