"""A tiny Chrome DevTools Protocol client: drive headless Debian chromium from tests, take screenshots.

    with Chromium(tmp_path) as page:
        page.goto("http://127.0.0.1:8000/search?q=rent")
        page.click("ol.hits a.title")
        page.wait_for("document.querySelectorAll('.box').length > 0")
        page.screenshot(tmp_path / "page.png")

Chromium runs with a fresh profile in tmp, no network services, no sandbox (containers).
"""
from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--no-default-browser-check",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--remote-debugging-port=0"]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class CdpError(RuntimeError):
    pass


class Chromium:
    def __init__(self, tmp: Path, width: int = 1280, height: int = 900, timeout: float = 30):
        self.tmp, self.width, self.height, self.timeout = Path(tmp), width, height, timeout
        self._ids = itertools.count(1)
        self.proc = None
        self.ws = None
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> "Chromium":
        from websockets.sync.client import connect

        binary = find_chromium()
        if binary is None:
            raise CdpError("chromium is not installed: apt-get install chromium")
        profile = self.tmp / "chromium-profile"
        self.log = open(self.tmp / "chromium.log", "w+")
        self.proc = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={profile}",
                                      f"--window-size={self.width},{self.height}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=self.log, env={**os.environ, "HOME": str(self.tmp)})
        try:  # a failure from here on must not leave the browser running (__exit__ is not called)
            port = self._devtools_port(profile)
            targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
            page = next(t for t in targets if t["type"] == "page")
            self.ws = self._stack.enter_context(connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10))
            self.send("Page.enable")
            self.send("Runtime.enable")
            self.send("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height, deviceScaleFactor=1,
                      mobile=False)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _devtools_port(self, profile: Path) -> int:
        deadline = time.monotonic() + self.timeout
        port_file = profile / "DevToolsActivePort"
        while time.monotonic() < deadline:
            if port_file.exists() and port_file.read_text().strip():
                return int(port_file.read_text().split()[0])
            self.log.seek(0)
            m = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", self.log.read())
            if m:
                return int(m.group(1))
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise CdpError(f"chromium exited with {self.proc.returncode}: {self.log.read()[-2000:]}")
            time.sleep(0.1)
        raise CdpError("chromium did not open its DevTools port in time")

    def __exit__(self, *exc) -> None:
        self._stack.close()
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    # -- protocol -------------------------------------------------------------------
    def send(self, method: str, **params) -> dict:
        """Send a command and wait for its result (events that arrive meanwhile are dropped)."""
        msg_id = next(self._ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise CdpError(f"{method}: {msg['error']}")
                return msg.get("result", {})
        raise CdpError(f"{method}: no answer in {self.timeout} s")

    def eval(self, expression: str):
        """The value of a JavaScript expression (promises awaited)."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise CdpError(f"{expression}: {result['exceptionDetails'].get('exception', {}).get('description')}")
        return result["result"].get("value")

    # -- page actions ---------------------------------------------------------------
    def wait_for(self, condition: str, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout or self.timeout)
        while time.monotonic() < deadline:
            if self.eval(f"!!({condition})"):
                return
            time.sleep(0.1)
        raise CdpError(f"timed out waiting for {condition}; page: {self.eval('location.href')}")

    def loaded(self) -> None:
        """Wait until the document and all its images are loaded."""
        self.wait_for("document.readyState === 'complete' && [...document.images].every(i => i.complete)")

    def goto(self, url: str) -> None:
        self.send("Page.navigate", url=url)
        self.wait_for(f"location.href === {json.dumps(url)} || location.href.startsWith({json.dumps(url)})")
        self.loaded()

    def click(self, selector: str) -> None:
        """Click an element as a user would (it must exist), then wait for any navigation to load."""
        before = self.eval("location.href")
        self.wait_for(f"document.querySelector({json.dumps(selector)})")
        self.eval(f"document.querySelector({json.dumps(selector)}).click()")
        time.sleep(0.2)
        if self.eval("location.href") != before:
            self.loaded()

    def type(self, selector: str, text: str) -> None:
        self.eval(f"(e => {{ e.focus(); e.value = {json.dumps(text)}; }})(document.querySelector({json.dumps(selector)}))")

    def screenshot(self, path: Path, full_page: bool = True) -> Path:
        params = {"format": "png", "captureBeyondViewport": full_page}
        if full_page:
            height = min(4000, int(self.eval("document.documentElement.scrollHeight")))
            params["clip"] = {"x": 0, "y": 0, "width": self.width, "height": height, "scale": 1}
        data = self.send("Page.captureScreenshot", **params)["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)
