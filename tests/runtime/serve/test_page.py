"""The page in headless Chromium (Debian's package, driven by Playwright): choose a clip, ask,
watch the answer stream in; a recording through MediaRecorder too. The screenshots are kept in
test-artifacts/ at the repository root ($MOSS_TEST_ARTIFACTS to put them elsewhere)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import soundfile as sf

from tests.conftest import SAMPLE_RATE, clip
from tests.runtime.serve.conftest import audio_part, user, wav_bytes

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("MOSS_TEST_ARTIFACTS", Path(__file__).resolve().parents[3] / "test-artifacts"))
FLAGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         # a fake microphone (a beep) that needs no permission prompt
         "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]


@pytest.fixture(scope="module")
def browser():
    if not shutil.which(CHROMIUM):
        pytest.skip("chromium not installed: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 900, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url)
    page.click("summary")  # the options: temperature, max tokens, API key
    page.fill("#temperature", "0")
    page.fill("#max_tokens", "24")
    page.fill("#key", server.key)
    # The tiny model answers in milliseconds, so on a fast loopback all its events can land in one
    # read and the page would show the answer in one piece however it streams. Throttling the
    # download to 2 KB/s (an SSE delta is ~150 bytes) makes the pieces arrive apart, as on a real link.
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions",
             {"offline": False, "latency": 0, "downloadThroughput": 2048, "uploadThroughput": -1})
    # what the answer showed each time it changed: a streamed answer shows a part of itself first
    page.evaluate("""() => { window.shown = [];
        new MutationObserver(() => window.shown.push(document.getElementById('answer').textContent))
            .observe(document.getElementById('answer'), {childList: true, characterData: true, subtree: true}); }""")
    yield page
    assert errors == []
    context.close()


def ask_and_wait(page) -> str:
    page.click("#ask")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('done')", timeout=120_000)
    return page.text_content("#answer")


def streamed(page, answer: str) -> bool:
    """Whether the page showed a non-empty part of the answer before all of it."""
    return any(0 < len(part) < len(answer) and answer.startswith(part) for part in page.evaluate("window.shown"))


def test_choose_a_clip_ask_and_see_the_streamed_answer(page, client, tmp_path):
    path = tmp_path / "clip.flac"
    sf.write(path, clip(2.0, seed=4), SAMPLE_RATE, format="FLAC")
    page.set_input_files("#file", str(path))
    page.fill("#question", "What is said?")
    shown = ask_and_wait(page)
    page.screenshot(path=str(ARTIFACTS / "serve-page-upload.png"), full_page=True)
    expected = client.chat.completions.create(
        model="m", messages=user(audio_part(path.read_bytes(), "flac"), "What is said?"), temperature=0,
        max_tokens=24).choices[0].message.content
    assert shown == expected and expected
    assert streamed(page, shown), "the answer arrived in one piece, not streamed"
    assert "24 tokens" in page.text_content("#status")


def test_record_with_the_microphone_and_ask(page):
    page.click("#record")
    page.wait_for_function("document.getElementById('status').textContent === 'recording…'")
    page.wait_for_timeout(1500)
    page.click("#record")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('recorded')")
    shown = ask_and_wait(page)
    page.screenshot(path=str(ARTIFACTS / "serve-page-recording.png"), full_page=True)
    assert shown and streamed(page, shown)


def test_an_error_is_shown_in_words(page):
    page.fill("#key", "wrong")
    page.set_input_files("#file", {"name": "clip.wav", "mimeType": "audio/wav", "buffer": wav_bytes(1.0)})
    page.click("#ask")
    page.wait_for_function("document.getElementById('status').className === 'error'")
    assert "wrong API key" in page.text_content("#status")
