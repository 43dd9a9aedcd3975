import os
import shutil
import subprocess
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "corpora" / "sample"


@pytest.fixture(scope="session", autouse=True)
def user_cache(tmp_path_factory) -> Path:
    """A fresh $XDG_CACHE_HOME for the session (and its subprocesses): ONNX exports land here, not in ~/.cache."""
    folder = tmp_path_factory.mktemp("xdg-cache")
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = before


@pytest.fixture(scope="session")
def sample_corpus() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def font_path() -> str:
    from PIL import ImageFont  # noqa: F401

    for candidate in ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",):
        if Path(candidate).exists():
            return candidate
    return ""


@pytest.fixture
def make_page(tmp_path, font_path):
    """Write an image of a page with the given lines of text; returns its path."""
    from PIL import Image, ImageDraw, ImageFont

    def make(name: str, lines: list[str], size=(1200, 900)) -> Path:
        img = Image.new("RGB", size, "white")
        draw = ImageDraw.Draw(img)
        font = ImageFont.truetype(font_path, 34) if font_path else ImageFont.load_default(size=34)
        for i, line in enumerate(lines):
            draw.text((60, 60 + i * 60), line, fill="black", font=font)
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        img.save(path)
        return path

    return make


@pytest.fixture(scope="session")
def sample_index(tmp_path_factory, sample_corpus) -> Path:
    """The sample corpus indexed once per session (real OCR, real embeddings); treat as read-only."""
    from index.builder import BuildOptions, build

    folder = tmp_path_factory.mktemp("sample") / "index"
    report = build(folder, [sample_corpus], BuildOptions(ocr="auto"))
    assert report.errors == 0, report.skipped
    return folder


@pytest.fixture
def pdf_index(tmp_path) -> tuple[Path, list[Path]]:
    """A fresh index of two one-page text PDFs (no OCR: quick to build) and their paths, for tests that
    move or damage an indexed file."""
    from fault_kit import text_pdf

    from index.builder import BuildOptions, build

    docs = tmp_path / "docs"
    pdfs = [text_pdf(docs / "budget.pdf", ["The annual budget of $27,500 was approved."]),
            text_pdf(docs / "parking.pdf", ["The parking lot will be resurfaced in May."])]
    build(tmp_path / "index", [docs], BuildOptions(ocr="none"))
    return tmp_path / "index", pdfs


@pytest.fixture
def sample_copy(tmp_path, sample_corpus) -> Path:
    dest = tmp_path / "corpus"
    shutil.copytree(sample_corpus, dest)
    return dest


@pytest.fixture(scope="session")
def tiny_folders(tmp_path_factory) -> dict:
    """Tiny random but structurally real Mllama and LLaVA checkpoints (real tokenizer, template, processor)."""
    from tiny_models import build_tiny_llava, build_tiny_mllama

    root = tmp_path_factory.mktemp("tiny_models")
    return {"mllama": build_tiny_mllama(root / "mllama"), "llava": build_tiny_llava(root / "llava")}


@pytest.fixture
def one_thread():
    """Tiny models on a busy 2-core machine: one thread is ~20x faster than two."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def read_only(tmp_path):
    """A read-only view of a folder: a read-only bind mount as root, file modes otherwise."""
    mounts = []

    def make(folder: Path) -> Path:
        if os.geteuid() != 0:
            for p in [folder, *folder.rglob("*")]:
                p.chmod(p.stat().st_mode & ~0o222)
            return folder
        view = tmp_path / f"ro-view-{len(mounts)}"
        view.mkdir()
        ok = subprocess.run(["mount", "--bind", str(folder), str(view)], capture_output=True).returncode == 0
        if not ok:
            pytest.skip("cannot make a read-only mount here")
        mounts.insert(0, view)  # unmounted last first
        if subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], capture_output=True).returncode:
            pytest.skip("cannot make a read-only mount here")
        return view

    yield make
    for m in mounts:
        subprocess.run(["umount", "-l", str(m)], check=False)
