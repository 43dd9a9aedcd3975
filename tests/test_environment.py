"""What a user's machine does around pagerag while it runs: the index folder deleted or rebuilt under a
running `serve`, files turned into folders between builds, a build stopped while it is still walking.

Real parts throughout: real indexes of text PDFs, the CLI and the web app in subprocesses, real HTTP.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from fault_kit import cli, text_pdf

REPO = Path(__file__).resolve().parents[1]


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAGERAG_", "OPENAI_"))}
    env.update(PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1")
    return env


@contextmanager
def serving(index: Path):
    """`pagerag serve --index INDEX` in a subprocess; yields get(path) -> (status, parsed JSON)."""
    proc = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--index", str(index)], env=_env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()  # "Serving FOLDER at http://127.0.0.1:PORT/  (Ctrl-C to stop)"
        assert " at http://" in line, line + proc.stderr.read()
        base = line.split(" at ")[-1].split()[0].rstrip("/")

        def get(path: str):
            try:
                with urllib.request.urlopen(base + path, timeout=60) as r:
                    return r.status, json.loads(r.read())
            except urllib.error.HTTPError as e:
                return e.code, json.loads(e.read())

        yield get
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stderr.close()


def _build(index: Path, *paths):
    done = cli("index", "build", *paths, "--index", index, "--ocr", "none")
    assert done.returncode == 0, done.stderr
    return done


@pytest.mark.slow
def test_serve_says_a_deleted_index_is_gone_and_serves_one_built_again_there(tmp_path):
    """An open SQLite file outlives its name: `serve` went on answering from an index folder that had been
    deleted (and /status gave a bare 500), and after the index was built again there it still served the
    deleted one's pages."""
    old = text_pdf(tmp_path / "old" / "budget.pdf", ["The annual budget of $27,500 was approved."])
    new = text_pdf(tmp_path / "new" / "orchard.pdf", ["The orchard irrigation pump was replaced in May."])
    index = tmp_path / "index"
    _build(index, old.parent)
    with serving(index) as get:
        status, data = get("/search.json?q=annual+budget&k=1")
        assert status == 200 and data["hits"][0]["path"].endswith("budget.pdf")
        shutil.rmtree(index)
        for path in ("/search.json?q=annual+budget&k=1", "/status.json", "/page/1.json"):
            status, data = get(path)
            assert status == 503 and "deleted or moved" in data["error"], (path, status, data)
        _build(index, new.parent)
        status, data = get("/search.json?q=orchard+pump&k=5")
        assert status == 200 and [h["path"] for h in data["hits"]] == [str(new)], data
        status, data = get("/status.json")
        assert status == 200 and data["status"]["documents"] == 1, data


def test_a_skipped_file_that_became_a_folder_is_no_longer_listed_as_skipped(tmp_path):
    """A file skipped for an error, then replaced by a folder of the same name (an unpacked archive): the
    next build reads the folder's files, and `index status` listed the old file's error for ever after,
    telling to run the build again, with or without --prune."""
    docs, index = tmp_path / "docs", tmp_path / "index"
    text_pdf(docs / "budget.pdf", ["The annual budget of $27,500 was approved."])
    (docs / "scans.pdf").write_bytes(b"%PDF-1.7\n" + b"\x00garbage" * 50)
    done = cli("index", "build", docs, "--index", index, "--ocr", "none")
    assert done.returncode == 3 and "scans.pdf" in done.stderr, done.stderr
    (docs / "scans.pdf").unlink()
    text_pdf(docs / "scans.pdf" / "orchard.pdf", ["The orchard irrigation pump was replaced in May."])
    for extra in ([], ["--prune"]):
        done = _build(index, docs, *extra)
        status = cli("index", "status", "--index", index)
        assert status.returncode == 0 and "Skipped" not in status.stdout + status.stderr, status.stdout
    found = cli("search", "orchard pump", "-k", "1", "--json", "--index", index)
    assert json.loads(found.stdout)[0]["path"] == str(docs / "scans.pdf" / "orchard.pdf")


@pytest.mark.slow
def test_onnxruntime_telemetry_is_off(tmp_path, pdf_index):
    """onnxruntime 1.32 turns its telemetry on by default: importing it (every search encodes its query with
    it) wrote a device id and a database of usage events queued for upload to Microsoft under the cache
    folder. pagerag says nothing leaves the machine: neither is made."""
    index, _ = pdf_index
    cache, home = tmp_path / "cache", tmp_path / "home"
    cache.mkdir()
    home.mkdir()
    shared = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pagerag"
    shared.mkdir(parents=True, exist_ok=True)
    (cache / "pagerag").symlink_to(shared)  # the session's ONNX export, not made again
    env = {**_env(), "XDG_CACHE_HOME": str(cache), "HOME": str(home)}
    env.pop("ORT_DISABLE_TELEMETRY", None)
    done = subprocess.run([sys.executable, "-m", "cli", "search", "annual budget", "--mode", "dense", "-k", "1",
                           "--index", str(index)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "budget.pdf" in done.stdout, done.stderr
    made = [str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if "Microsoft" in p.parts]
    assert made == [], made


@pytest.mark.slow
def test_chat_says_a_deleted_index_is_gone_and_searches_one_built_again_there(tmp_path):
    """`chat` kept answering from a deleted index ('I searched 1 page(s)', its pages as sources) after
    another one was built in its folder."""
    import queue
    import threading

    old = text_pdf(tmp_path / "old" / "budget.pdf", ["The annual budget of $27,500 was approved."])
    new = text_pdf(tmp_path / "new" / "orchard.pdf", ["The orchard irrigation pump was replaced in May."])
    index = tmp_path / "index"
    _build(index, old.parent)
    # no model: each question shows the pages found as evidence and says the model could not be used
    chat = subprocess.Popen([sys.executable, "-m", "cli", "chat", "--index", str(index)],
                            env=_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in chat.stdout], daemon=True).start()
    seen: list[str] = []

    def say(line: str, until: str) -> str:
        chat.stdin.write(line + "\n")
        chat.stdin.flush()
        start = len(seen)
        while until not in "".join(seen[start:]):
            try:
                seen.append(lines.get(timeout=60))
            except queue.Empty:
                raise AssertionError(f"no {until!r} after {line!r}: {''.join(seen[start:])!r}") from None
        return "".join(seen[start:])

    try:
        say("/in", "Searching all documents")
        say("what was approved?", "budget.pdf")
        shutil.rmtree(index)
        assert "deleted or moved after `pagerag chat` opened it" in say("what was approved?", "Error:")
        _build(index, new.parent)
        out = say("orchard irrigation pump?", "start `pagerag chat` again")
        assert "was replaced since chat started" in out and "orchard.pdf" in out and "budget.pdf" not in out, out
        chat.stdin.close()
        assert chat.wait(timeout=60) == 0
    finally:
        if chat.poll() is None:
            chat.kill()
    assert "Traceback" not in "".join(seen), seen


@pytest.mark.slow
def test_ask_on_a_read_only_index_with_a_read_only_home_says_what_to_set(tmp_path, pdf_index, read_only):
    """A read-only index keeps its conversations in the user's data folder; when that cannot be written
    either (a read-only home: a sandbox, a service account), `ask` and `conversations` said only
    'Read-only file system: ~/.local (a read-only or protected location)'."""
    index, _ = pdf_index
    (tmp_path / "home").mkdir()
    index_view, home_view = read_only(index), read_only(tmp_path / "home")
    env = {**_env(), "HOME": str(home_view), "XDG_DATA_HOME": ""}
    for args in (["ask", "what was approved?"], ["conversations"]):
        done = subprocess.run([sys.executable, "-m", "cli", *args, "--index", str(index_view)], env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert "set XDG_DATA_HOME to a folder you can write" in done.stderr, done.stderr
    done = subprocess.run([sys.executable, "-m", "cli", "conversations", "--index", str(index_view)],
                          env={**env, "XDG_DATA_HOME": str(tmp_path / "data")}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_json_gives_a_non_utf8_file_name_as_printed_not_as_stored(tmp_path):
    """A file name whose bytes are not UTF-8 (a Latin-1 'résumé.pdf' from an old disk) is stored with a
    private-use character per odd byte: `search --json`, `--batch` and the web app's JSON gave that stored
    form ('r\\uf7e9sum\\uf7e9.pdf', shown as 'rsum.pdf'), a path that names no file, where the text output
    and `index status --json` give 'r\\xe9sum\\xe9.pdf'."""
    docs = tmp_path / "docs"
    docs.mkdir()
    text_pdf(tmp_path / "resume.pdf", ["The orchard irrigation pump was replaced in May."])
    os.rename(tmp_path / "resume.pdf", os.fsencode(docs) + b"/r\xe9sum\xe9.pdf")
    index = tmp_path / "index"
    _build(index, docs)
    printed = f"{docs}/r\\xe9sum\\xe9.pdf"
    done = cli("search", "orchard pump", "-k", "1", "--json", "--index", index)
    assert json.loads(done.stdout)[0]["path"] == printed, done.stdout
    done = cli("search", "--batch", "-k", "1", "--index", index, input="orchard pump\n")
    assert json.loads(done.stdout)[0]["path"] == printed, done.stdout
    with serving(index) as get:
        status, data = get("/search.json?q=orchard+pump&k=1")
        assert status == 200 and data["hits"][0]["path"] == printed, data
        status, data = get(f"/page/{data['hits'][0]['page_id']}.json")
        assert status == 200 and data["page"]["path"] == printed, data


def _walking(pid: int, under: Path) -> bool:
    """The process has a folder under `under` open: it is listing the corpus."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(str(under) + "/"):
                return True
        except OSError:
            continue
    return False


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_a_build_stopped_while_walking_does_not_say_no_file_was_found(tmp_path):
    """Ctrl-C (or a service stop) while the build still lists a large tree: it said 'Nothing new to read'
    and 'No file to index was found there', as if the folder held nothing pagerag reads."""
    corpus = tmp_path / "corpus"
    for i in range(60):
        for j in range(150):
            (corpus / f"d{i}" / f"e{j}").mkdir(parents=True)
    text_pdf(corpus / "d59" / "e149" / "budget.pdf", ["The annual budget of $27,500 was approved."])
    build = subprocess.Popen([sys.executable, "-m", "cli", "index", "build", str(corpus), "--index",
                              str(tmp_path / "index"), "--ocr", "none", "-j", "1"], env=_env(),
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not _walking(build.pid, corpus) and build.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    os.kill(build.pid, signal.SIGSTOP)  # held inside the walk while the stop signal is queued
    os.kill(build.pid, signal.SIGTERM)
    os.kill(build.pid, signal.SIGCONT)
    out, err = build.communicate(timeout=120)
    assert build.returncode == 130, err
    assert "No file to index was found" not in err and "Nothing new to read" not in err, err
    assert "Stopped while looking for files" in err and "Traceback" not in err, err


@pytest.fixture
def full_disk(tmp_path):
    """A folder on a small ext4 file system filled to the last block (root: a loop mount)."""
    if os.geteuid() != 0 or not shutil.which("mkfs.ext4"):
        pytest.skip("needs root and mkfs.ext4 for a loop mount")
    image, mount = tmp_path / "fs.img", tmp_path / "full"
    with open(image, "wb") as f:
        f.truncate(8 << 20)
    mount.mkdir()
    if subprocess.run(["mkfs.ext4", "-q", str(image)], capture_output=True).returncode or subprocess.run(
            ["mount", "-o", "loop", str(image), str(mount)], capture_output=True).returncode:
        pytest.skip("cannot make a loop mount here")
    try:
        (mount / "tmp").mkdir()
        with open(mount / "filler", "wb") as f:
            try:
                while True:
                    f.write(b"\0" * (1 << 16))
                    f.flush()
            except OSError:
                pass
        yield mount / "tmp"
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.slow
def test_a_full_temporary_folder_stops_the_build_instead_of_blaming_every_file(tmp_path, full_disk):
    """TMPDIR on a full disk: OCR could not write its page images there, and every scanned file was
    skipped as an ERROR of its own ('page 1: OSError: [Errno 28] No space left on device', exit 3)."""
    from fault_kit import page_image, save_image

    docs = tmp_path / "docs"
    for name in ("a", "b"):
        save_image(page_image(["Orchard irrigation pump", f"replaced in May {name}"]), docs / f"{name}.png")
    index = tmp_path / "index"
    done = cli("index", "build", docs, "--index", index, "--ocr", "tesseract", "-j", "1",
               env={"TMPDIR": str(full_disk)})
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"the temporary folder {full_disk} is full" in done.stderr and "ERROR" not in done.stderr, done.stderr
    done = cli("index", "build", docs, "--index", index, "--ocr", "tesseract", "-j", "1")  # room again
    assert done.returncode == 0, done.stderr
    status = cli("index", "status", "--index", index)
    assert "Skipped" not in status.stdout and "2 read by OCR" in status.stdout, status.stdout


def _build_caught_reading(docs: Path, index: Path, pages: int) -> subprocess.Popen:
    """`pagerag index build` of `pages` scanned pages in a subprocess, returned SIGSTOPped once a document is
    being read (not yet done): it holds the index's lock, mid-way. The caller sends SIGCONT."""
    import sqlite3

    from fault_kit import page_image, save_image

    for i in range(pages):
        save_image(page_image([f"Orchard irrigation pump {i}", "replaced in May"]), docs / f"p{i}.png")
    build = subprocess.Popen([sys.executable, "-m", "cli", "index", "build", str(docs), "--index", str(index),
                              "--ocr", "tesseract", "-j", "1", "--page-timeout", "0"], env=_env(),
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while build.poll() is None and time.monotonic() < deadline:
        try:
            with sqlite3.connect(f"file:{index / 'index.db'}?mode=ro", uri=True) as db:
                if db.execute("SELECT count(*) FROM documents WHERE status != 'done'").fetchone()[0]:
                    break
        except sqlite3.Error:
            pass
        time.sleep(0.02)
    os.kill(build.pid, signal.SIGSTOP)
    return build


@pytest.mark.slow
def test_status_during_a_build_says_it_is_reading_not_to_resume(tmp_path):
    """`index status` while a build runs told to 'run `pagerag index build` to resume' the documents that
    build was reading; running it as told fails (the index is locked by that build)."""
    docs, index = tmp_path / "docs", tmp_path / "index"
    build = _build_caught_reading(docs, index, 6)
    try:
        try:
            status = cli("index", "status", "--index", index)
        finally:
            os.kill(build.pid, signal.SIGCONT)
        assert status.returncode == 0, status.stderr
        assert "incomplete: a build is reading them now: pid " in status.stdout, status.stdout
        assert "to resume" not in status.stdout, status.stdout
        assert build.wait(timeout=300) == 0, build.stderr.read()
    finally:
        if build.poll() is None:
            build.kill()
        build.stderr.close()
    status = cli("index", "status", "--json", "--index", index)
    assert json.loads(status.stdout)["writer"] is None


def test_a_skip_reason_gives_a_non_utf8_name_as_index_status_does(tmp_path):
    """A file of a type pagerag does not read, named in Latin-1 bytes: the build's summary said
    "unsupported file type 'caf\\udce9'" (a Python surrogate), `index status` "'caf\\xe9'"."""
    docs = tmp_path / "docs"
    text_pdf(docs / "budget.pdf", ["The annual budget of $27,500 was approved."])
    with open(os.fsencode(docs) + b"/caf\xe9", "wb") as f:
        f.write(b"not a scan")
    index = tmp_path / "index"
    done = _build(index, docs)
    status = cli("index", "status", "--index", index)
    assert "unsupported file type 'caf\\xe9'" in done.stderr and "udce9" not in done.stderr, done.stderr
    assert "unsupported file type 'caf\\xe9'" in status.stdout, status.stdout


@pytest.mark.slow
def test_a_build_whose_index_folder_is_deleted_meanwhile_says_so(tmp_path):
    """`rm -rf` of the index folder while a build writes it: the build ended with
    'No such file or directory: …/vectors.faiss.tmp'."""
    docs, index = tmp_path / "docs", tmp_path / "index"
    build = _build_caught_reading(docs, index, 4)
    try:
        shutil.rmtree(index)
        os.kill(build.pid, signal.SIGCONT)
        err = build.communicate(timeout=300)[1]
    finally:
        if build.poll() is None:
            build.kill()
    assert build.returncode == 1 and "Traceback" not in err, err
    assert "was deleted or moved while this build wrote to it" in err, err
