"""Reading corpora into pages, OCR, chunking, embedding and the on-disk index.

Nothing here imports ``rag`` or ``cli``; heavy libraries (torch, faiss, OCR
engines) are imported lazily inside the functions that need them.
"""
import os as _os
import sys as _sys

# onnxruntime (the embedding encoder, RapidOCR) ships with telemetry on: `import onnxruntime` writes a
# device id and queues usage events under $XDG_CACHE_HOME/Microsoft/DeveloperTools/.onnxruntime, for
# upload to Microsoft. Nothing is to leave the machine: off, unless the user set the variable themselves.
_os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

# PyMuPDF 2 imports its optional companions pymupdf.layout (which loads ONNX layout models)
# and pymupdf4llm on `import pymupdf`: ~3 s per process (every build worker, every `ask` that
# renders a page) for features pagerag never uses; it reads words and renders pages. Marked
# absent, `import pymupdf` takes ~0.3 s, and PyMuPDF carries on without them.
for _name in ("pymupdf.layout", "pymupdf4llm"):
    _sys.modules.setdefault(_name, None)
