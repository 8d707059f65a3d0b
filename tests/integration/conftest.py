"""Shared for the report and notebook tests: one quick-preset MiniLM run, and headless Chromium.

Chromium is driven through the DevTools protocol over ``--remote-debugging-pipe`` (JSON
messages on file descriptors 3 and 4, no websocket library needed). Every page error the
protocol reports is collected: uncaught exceptions, ``console.error``, browser log errors
(failed loads, refused content-security-policy requests), JavaScript dialogs (``alert``), and
every request the page makes. Chromium's proxy points at an unroutable address, so a request
that slipped through could reach nothing anyway.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

from lens_relearn.data.conll import write_conll
from lens_relearn.data.sentences import Sentence
from lens_relearn.data.sources import load_ner
from lens_relearn.study.config import preset
from lens_relearn.study.runner import run_experiment

PAYLOADS = ("<script>alert(1)</script>", "<img/src/onerror=alert(2)>")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--proxy-server=127.0.0.1:9",
    "--window-size=1280,900",
    "--remote-debugging-pipe",
)


@dataclass
class Page:
    """What loading one page produced."""

    url: str
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # every URL requested but inline data: ones
    values: dict = field(default_factory=dict)


class Chromium:
    """Headless Chromium, one fresh browser a page."""

    def __init__(self, binary: str) -> None:
        self.binary = binary

    def load(
        self,
        path: Path,
        *,
        ready: str,
        probes: dict[str, str],
        actions: Sequence[tuple[str, str]] = (),
        screenshot: Path | None = None,
        timeout: float = 120,
    ) -> Page:
        """Open ``path`` from ``file://``, wait until the JavaScript ``ready`` is true, act, read ``probes``.

        Args:
            path: The HTML file.
            ready: An expression that becomes true once the page has rendered.
            probes: Expressions to evaluate after that, by name (values are JSON).
            actions: What a reader does next, in order: an expression to run (a click, a choice),
                then one that becomes true once the page has answered it.
            screenshot: Where to save a full-page PNG.
            timeout: Seconds for the whole visit.
        """
        page = Page(path.resolve().as_uri())
        with tempfile.TemporaryDirectory() as profile:
            session = _Session(self.binary, profile)
            try:
                session.visit(page, ready, probes, actions, screenshot, time.monotonic() + timeout)
            finally:
                session.close()
        return page


class _Session:
    """One Chromium process and the DevTools messages on its pipe."""

    def __init__(self, binary: str, profile: str) -> None:
        commands_read, self.commands = os.pipe()
        self.replies, replies_write = os.pipe()

        def pipe_descriptors() -> None:  # in the child: commands on fd 3, replies on fd 4
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (commands_read, replies_write)]
            for wanted, fd in zip((3, 4), high, strict=True):
                os.dup2(fd, wanted)  # inheritable, unlike the pipe's own descriptors

        self.log = Path(profile) / "chromium.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                close_fds=False,
                preexec_fn=pipe_descriptors,  # noqa: PLW1509  (the child only duplicates two descriptors)
            )
        os.close(commands_read)
        os.close(replies_write)
        self.messages: queue.Queue[dict | None] = queue.Queue()
        self.events: list[dict] = []
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buffer = b""
        while chunk := os.read(self.replies, 1 << 16):
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            for message in messages:
                self.messages.put(json.loads(message))
        self.messages.put(None)

    def send(self, method: str, params: dict | None = None, *, session: str | None = None, deadline: float) -> dict:
        """Send a command and return its result; events that arrive meanwhile are kept."""
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.commands, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._next(deadline, method)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self._event(reply, session)

    def _next(self, deadline: float, waiting_for: str) -> dict:
        try:
            reply = self.messages.get(timeout=max(deadline - time.monotonic(), 0.01))
        except queue.Empty:
            raise TimeoutError(f"Chromium gave no answer to {waiting_for}; log:\n{self._log_tail()}") from None
        if reply is None:
            raise RuntimeError(f"Chromium ended while waiting for {waiting_for}; log:\n{self._log_tail()}")
        return reply

    def _event(self, event: dict, session: str | None) -> None:
        self.events.append(event)
        if event.get("method") == "Page.javascriptDialogOpening" and session:
            message = {
                "id": 0,
                "method": "Page.handleJavaScriptDialog",
                "params": {"accept": True},
                "sessionId": session,
            }
            os.write(self.commands, json.dumps(message).encode() + b"\0")

    def _log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def visit(
        self,
        page: Page,
        ready: str,
        probes: dict[str, str],
        actions: Sequence[tuple[str, str]],
        screenshot: Path | None,
        deadline: float,
    ) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"}, deadline=deadline)["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True}, deadline=deadline)[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=session, deadline=deadline)
        self.send("Page.navigate", {"url": page.url}, session=session, deadline=deadline)

        def evaluate(expression: str):
            result = self.send(
                "Runtime.evaluate",
                {"expression": expression, "returnByValue": True},
                session=session,
                deadline=deadline,
            )
            if "exceptionDetails" in result:
                raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
            return result["result"].get("value")

        def wait_for(condition: str) -> None:
            while not evaluate(condition):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the page never became ready ({condition})")
                time.sleep(0.2)

        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            self._event(self._next(deadline, "the page to load"), session)
        wait_for(ready)
        for action, answered in actions:
            evaluate(action)
            wait_for(answered)
        page.values = {name: evaluate(expression) for name, expression in probes.items()}
        if screenshot is not None:
            size = self.send("Page.getLayoutMetrics", session=session, deadline=deadline)["cssContentSize"]
            clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 16000), "scale": 1}
            shot = self.send(
                "Page.captureScreenshot",
                {"format": "png", "clip": clip, "captureBeyondViewport": True},
                session=session,
                deadline=deadline,
            )
            screenshot.write_bytes(base64.b64decode(shot["data"]))
        evaluate("0")  # a last round trip, so late events are in
        _describe(self.events, page)

    def close(self) -> None:
        try:
            os.write(self.commands, json.dumps({"id": -1, "method": "Browser.close"}).encode() + b"\0")
            self.process.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        os.close(self.commands)


def _describe(events: list[dict], page: Page) -> None:
    """Sort the DevTools events into the page's errors, dialogs and requests."""
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            page.errors.append(details.get("exception", {}).get("description") or details.get("text", ""))
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            page.errors.append(" ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            page.errors.append(f"{params['entry']['text']} {params['entry'].get('url', '')}")
        elif method == "Page.javascriptDialogOpening":
            page.dialogs.append(params["message"])
        elif method == "Network.requestWillBeSent" and not params["request"]["url"].startswith("data:"):
            page.requests.append(params["request"]["url"])


@pytest.fixture(scope="session")
def chromium() -> Chromium:
    """Headless Chromium (Debian's ``chromium``, which ``make test`` installs)."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if binary is None:
        pytest.fail(
            "no Chromium on PATH: the report's browser tests need it "
            "(on Debian: apt-get install chromium; `make test` does it as root)"
        )
    return Chromium(binary)


@dataclass(frozen=True)
class CommandRun:
    """A finished ``lens-relearn run``: its folder and what it printed to stdout and stderr."""

    out: Path
    output: str
    errors: str


@pytest.fixture(scope="session")
def quick_cli_run(tmp_path_factory) -> CommandRun:
    """``lens-relearn run --preset quick`` (MiniLM), run once for the session as a user would."""
    out = tmp_path_factory.mktemp("quick") / "run"
    finished = subprocess.run(
        [sys.executable, "-m", "lens_relearn.cli", "run", "--preset", "quick", "--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    return CommandRun(out, finished.stdout, finished.stderr)


@pytest.fixture(scope="session")
def quick_run(quick_cli_run: CommandRun) -> Path:
    """A finished quick-preset MiniLM study, made once for the session."""
    return quick_cli_run.out


@pytest.fixture(scope="session")
def payloads() -> tuple[str, ...]:
    """Words that would run script if a page wrote them as HTML (the second even via innerHTML)."""
    return PAYLOADS


@pytest.fixture(scope="session")
def payload_run(tmp_path_factory) -> Path:
    """A tiny finished study whose corpus and top tokens hold HTML that runs if left unescaped.

    Every concept-corpus sentence starts with one of ``PAYLOADS``, and the first primed
    neuron's top tokens (``neurons.parquet``, ``primed.csv``) are made to start with both, so
    the report shows them in tables, top-token lists and neuron views.
    """
    root = tmp_path_factory.mktemp("payload")
    data = load_ner("synthetic", n_train=80, n_validation=30, n_test=20, n_novel=0)
    folder = root / "data"
    folder.mkdir()
    validation = [Sentence([PAYLOADS[i % 2], *s.words[1:]], s.tags) for i, s in enumerate(data.validation)]
    for name, sentences in (("eng.train", data.train), ("eng.testa", validation), ("eng.testb", data.test)):
        write_conll(sentences, folder / name)
    out = root / "run"
    config = preset("quick", model="tiny-bert", data=str(folder), base_epochs=1, rounds=1, arms=("concept",))
    run_experiment(config, out, progress=False)
    primed = pd.read_csv(out / "primed.csv")
    assert not primed.empty, "the tiny study should have primed neurons"
    first = (primed.layer == primed.layer[0]) & (primed["index"] == primed["index"][0])
    prefix = " ".join(PAYLOADS) + " "
    for column in ("top_tokens_before", "top_tokens_after"):
        primed.loc[first, column] = prefix + primed.loc[first, column]
    primed.to_csv(out / "primed.csv", index=False)
    neurons = pd.read_parquet(out / "neurons.parquet")
    chosen = (neurons.layer == primed.layer[0]) & (neurons["index"] == primed["index"][0])
    neurons.loc[chosen, "top_tokens"] = prefix + neurons.loc[chosen, "top_tokens"]
    neurons.to_parquet(out / "neurons.parquet", index=False)
    return out
