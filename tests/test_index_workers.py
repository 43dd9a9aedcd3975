"""Reading workers under watch: a page that takes too long or kills its worker costs its own file, a worker
killed from outside costs nothing, and killed workers leave no temporary files or Tesseract behind.

Real PDFs and page images generated in tmp_path, real Tesseract, MuPDF, worker processes and signals.
"""
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from fault_kit import cli as _cli
from fault_kit import indexed_texts as _texts
from fault_kit import page_image, text_pdf

from index.builder import BuildOptions, build
from index.store import Index


def _nested_drawing_pdf(path: Path, levels: int = 7) -> Path:
    """1 KB that takes minutes to render: each Form XObject draws the one below it ten times, `levels` deep."""
    objs = {1: b"<</Type/Catalog/Pages 2 0 R>>", 2: b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
            5: b"<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>"}

    def stream(head: bytes, body: bytes) -> bytes:
        return head + b"/Length %d>>stream\n" % len(body) + body + b"\nendstream"

    form = b"<</Type/XObject/Subtype/Form/BBox[0 0 612 792]"
    objs[10] = stream(form, b"0.5 g 10 10 5 5 re f")
    for k in range(1, levels + 1):
        objs[10 + k] = stream(form + b"/Resources<</XObject<</X %d 0 R>>>>" % (9 + k), b" ".join([b"q /X Do Q"] * 10))
    objs[3] = (b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]/Contents 4 0 R/Resources<</Font<</F1 5 0 R>>"
               b"/XObject<</X %d 0 R>>>>>>" % (10 + levels))
    objs[4] = stream(b"<<", b"BT /F1 12 Tf 72 720 Td (A drawing nested too deep to render) Tj ET q /X Do Q")
    out, offsets = bytearray(b"%PDF-1.4\n"), {}
    for n in sorted(objs):
        offsets[n] = len(out)
        out += b"%d 0 obj\n" % n + objs[n] + b"\nendobj\n"
    size = max(objs) + 1
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    out += b"".join(b"%010d 00000 n \n" % offsets[n] if n in offsets else b"0000000000 65535 f \n"
                    for n in range(1, size))
    out += b"trailer<</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (size, xref)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(out))
    return path


@pytest.mark.slow
def test_a_page_that_takes_too_long_is_given_up_and_the_build_goes_on(tmp_path):
    """A 1 KB PDF whose drawing nests seven deep took minutes per page (nine: hours), and every later build
    hung on it again: its worker is killed at the time limit and the file skipped with that reason."""
    _nested_drawing_pdf(tmp_path / "c" / "nested.pdf")
    text_pdf(tmp_path / "c" / "fine.pdf", ["Tram timetable changes for the winter."])
    report = build(tmp_path / "idx", [tmp_path / "c"], BuildOptions(ocr="none", jobs=2, page_timeout=4))
    [skip] = report.skipped
    assert skip.path.endswith("nested.pdf") and "took longer than 4 s to read" in skip.reason, skip
    assert _texts(tmp_path / "idx").keys() == {"fine.pdf"}
    assert Index.open(tmp_path / "idx").counts()["incomplete"] == 0


@pytest.mark.slow
def test_a_build_whose_only_page_timed_out_does_not_say_nothing_was_new(tmp_path):
    """A new file none of whose pages finished (skipped for time) was summed up 'Nothing new to read (2.8s).'"""
    _nested_drawing_pdf(tmp_path / "c" / "nested.pdf")
    run = _cli("index", "build", tmp_path / "c", "--index", tmp_path / "idx", "--ocr", "none", "--page-timeout", "0.5")
    assert run.returncode == 3, run.stderr
    assert "1 new" in run.stderr and "No page was finished" in run.stderr and "skipped" in run.stderr, run.stderr
    assert "Nothing new to read" not in run.stderr and "took longer than 0.5 s" in run.stderr, run.stderr


@pytest.mark.slow
def test_a_page_that_kills_its_worker_costs_its_file_not_the_build(tmp_path):
    """A worker that died (here of its CPU limit, as the OOM killer or a crash in a library would end it) broke
    the pool: BrokenProcessPool traceback, build lost, and the same again next time. The pages in flight are
    read again alone; the one that kills its worker alone is skipped, with that reason."""
    text_pdf(tmp_path / "warm" / "w.pdf", ["The embedding model exported once, outside the limit."])
    assert _cli("index", "build", tmp_path / "warm", "--index", tmp_path / "w", "--ocr", "none").returncode == 0
    _nested_drawing_pdf(tmp_path / "c" / "nested.pdf")
    text_pdf(tmp_path / "c" / "fine.pdf", ["Orchard irrigation plan for the spring."])

    def cpu_limit():
        resource.setrlimit(resource.RLIMIT_CPU, (12, 12))

    run = _cli("index", "build", tmp_path / "c", "--index", tmp_path / "idx", "--ocr", "none", "-j", "2",
               "--page-timeout", "0", preexec_fn=cpu_limit)
    assert run.returncode == 3 and "Traceback" not in run.stderr, run.stderr
    assert "nested.pdf: page 1: the process reading it died" in run.stderr, run.stderr
    assert _texts(tmp_path / "idx").keys() == {"fine.pdf"}
    assert _cli("index", "verify", "--index", tmp_path / "idx").returncode == 0


def _build_process(corpus: Path, index: Path, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cli", "index", "build", corpus, "--index", index, *args],
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
                                 "HF_HUB_OFFLINE": "1"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _workers(build: subprocess.Popen) -> list[int]:
    """The build's reading workers (not multiprocessing's resource tracker)."""
    return [k for k in _children(build.pid) if b"resource_tracker" not in _cmdline(k)]


def _children(pid: int) -> list[int]:
    try:
        return [int(k) for k in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@pytest.mark.parametrize("victim", ["reading", "idle"])
def test_a_worker_killed_from_outside_costs_nothing(tmp_path, victim):
    """A reading worker killed by something else (the OOM killer choosing it, an admin): the page in flight
    is read again and indexed. It was blamed at once when it was the only page being read, even when the
    worker that died was the other, idle one (a flaky CI failure): a page is the culprit only when it kills
    its worker while read alone."""
    corpus = tmp_path / "c"
    corpus.mkdir()
    page_image([f"Ledger sheet {i}: shipment of {i * 7 + 3} crates" for i in range(40)],
               size=(1600, 1700)).save(corpus / "ledger.png")
    text_pdf(corpus / "note.pdf", ["Delivery note for the crates."])  # read at once: then one worker is idle
    build = _build_process(corpus, tmp_path / "idx", "--ocr", "tesseract", "-j", "2", "--page-timeout", "0")
    deadline, reader = time.time() + 240, None
    while time.time() < deadline and build.poll() is None and reader is None:
        workers = _workers(build)
        reader = next((w for w in workers if any(b"tesseract" in _cmdline(t) for t in _children(w))), None)
        time.sleep(0.05)  # until one worker runs Tesseract on the only page
    assert reader is not None and len(workers) == 2, "the build should be reading with two workers"
    os.kill(reader if victim == "reading" else next(w for w in workers if w != reader), signal.SIGKILL)
    out, err = build.communicate(timeout=300)
    assert build.returncode == 0 and "Traceback" not in err, err
    assert "crates" in _texts(tmp_path / "idx")["ledger.png"] and "Delivery" in _texts(tmp_path / "idx")["note.pdf"]


SPY = """import os, sys
if "--multiprocessing-fork" in sys.argv:  # a worker process that multiprocessing spawned
    with open(os.environ["SPAWN_LOG"], "a") as log:
        log.write(f"{os.getpid()}\\n")
"""


@pytest.mark.slow
def test_workers_start_only_for_pages_to_read_and_no_more_than_the_cpus(tmp_path):
    """`-j 256` started 256 workers before planning, on 2 CPUs, even for a rebuild with nothing to read. A larger
    -j than the CPUs is noted; the workers are no more than the CPUs or the pages to read, and none start when
    nothing is to be read. (A sitecustomize.py on the build's path logs each process multiprocessing spawns.)"""
    from index.readers import usable_cpus

    jobs = usable_cpus() + 1
    (tmp_path / "spy").mkdir()
    (tmp_path / "spy" / "sitecustomize.py").write_text(SPY)
    log = tmp_path / "spawned"
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path / "spy"), str(Path(__file__).resolve().parent.parent)]),
           "SPAWN_LOG": str(log)}

    def workers_started() -> tuple[int, str]:
        log.write_text("")
        run = _cli("index", "build", tmp_path / "c", "--index", tmp_path / "idx", "--ocr", "none", "-j", jobs, env=env)
        assert run.returncode == 0, run.stderr
        return len(log.read_text().split()), run.stderr

    text_pdf(tmp_path / "c" / "one.pdf", ["Tram timetable changes from the first of May."])
    started, said = workers_started()
    assert started == 1, said  # one page to read
    assert f"Note: -j {jobs} is more than the {jobs - 1} CPU(s) here; at most {jobs - 1} worker(s)" in said
    started, said = workers_started()
    assert started == 0 and "Nothing new to read" in said, said
    text_pdf(tmp_path / "c" / "many.pdf", [f"Timetable page {n} of the ferry." for n in range(jobs)])
    started, said = workers_started()
    assert started == jobs - 1 and f"Read {jobs} page(s)" in said, said  # as many as the CPUs


@pytest.mark.slow
def test_a_page_killed_for_time_leaves_no_temporary_files_nor_tesseract(tmp_path):
    """A worker killed for --page-timeout never ran pytesseract's cleanup: each kill left its page image
    (tess_*_input.PPM, megabytes) and outputs in $TMPDIR, again on every rebuild of the same file. Workers now
    write into a folder of their pool's, which the build removes; pool folders of builds that are gone (kill -9)
    go with the next build, a live build's stay."""
    from PIL import Image

    corpus, temp = tmp_path / "c", tmp_path / "tmp"
    corpus.mkdir()
    temp.mkdir()
    noise = (np.random.default_rng(0).random((4000, 3000)) > 0.5).astype("uint8") * 255
    Image.fromarray(noise).save(corpus / "noise.png")  # Tesseract reads it for minutes
    page_image(["Orchard irrigation plan for the spring"], size=(900, 300)).save(corpus / "fine.png")
    stale = temp / "pagerag-read-999999999-x"  # no such process
    stale.mkdir()
    (stale / "tess_old_input.PPM").write_bytes(b"P5")
    live = temp / f"pagerag-read-{os.getpid()}-x"
    live.mkdir()
    run = _cli("index", "build", corpus, "--index", tmp_path / "idx", "--ocr", "tesseract", "-j", "1",
               "--page-timeout", "3", env={"TMPDIR": str(temp)})
    assert run.returncode == 3 and "noise.png: page 1 took longer than 3 s" in run.stderr, run.stderr
    assert "irrigation" in _texts(tmp_path / "idx")["fine.png"].lower()
    # (the build's own process may leave its libraries' caches: onnxruntime's .ses, torchinductor_*)
    assert not [p for p in temp.rglob("*") if p.name.startswith("tess")], sorted(temp.rglob("*"))
    assert [p.name for p in temp.glob("pagerag-read-*")] == [live.name]
    tesseracts = [pid for pid in os.listdir("/proc") if pid.isdigit()
                  and b"tesseract" in _cmdline(pid) and str(temp).encode() in _cmdline(pid)]
    assert not tesseracts, "the killed worker's tesseract reads on"


def _cmdline(pid) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
