"""The status page as a person sees it: Debian's Chromium, headless, driven by Selenium.

Everything runs for real: the local functions host serves ``function_app.app``, the files
are uploaded with the stack's managed identity, the intake, the submitter and the poller
move them on, and the browser loads ``/api/ui?code=<key>`` as someone with the function key
would. Four files: one that is transcribed, one that is not audio, one that the Speech
emulator fails (a forced ``InvalidData``), and one whose blob name holds a ``<script>`` tag
and whose ``model`` metadata an ``<img onerror>`` tag: the intake's rejection quotes that
value, so both reach the page, which must show them as text and run nothing.

Without Chromium and chromedriver the tests skip, except in CI (``CI`` set), where they
fail: ``make test`` installs both. Screenshots go to ``UI_SCREENSHOTS_DIR`` (default
``.artifacts/ui/`` in the repo, which git ignores).
"""

from __future__ import annotations

import datetime as dt
import os
import ssl
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from azure.identity import DefaultAzureCredential
from azure.storage.blob import BlobServiceClient
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By

from local.stack import StackInfo

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "speech"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INPUT, OUTPUT = "audio-input", "transcripts"
TERMINAL = {"Succeeded", "Failed", "Rejected", "Superseded", "Cancelled"}
SCRIPT_NAME = "<script>alert(1)</script>.wav"
IMG_VALUE = "<img src=x onerror=alert(2)>"
#: A laptop screen.
WINDOW_WIDTH, WINDOW_HEIGHT = 1366, 900

pytestmark = pytest.mark.stack


@dataclass(frozen=True)
class Files:
    """The uploaded files' paths and what the status API says of each once settled."""

    folder: str
    good: str
    junk: str
    failed: str
    hostile: str
    status: dict[str, dict[str, Any]]


def screenshot(driver: WebDriver, name: str) -> None:
    """The whole page as ``<name>.png`` (the window grows to the page's height for it)."""
    folder = Path(os.environ.get("UI_SCREENSHOTS_DIR") or REPO / ".artifacts" / "ui")
    folder.mkdir(parents=True, exist_ok=True)
    width = driver.get_window_size()["width"]
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, int(height) + 120)  # + the window's own frame
    try:
        assert driver.save_screenshot(str(folder / f"{name}.png"))
    finally:
        driver.set_window_size(width, WINDOW_HEIGHT)


def blob_service(info: StackInfo) -> BlobServiceClient:
    credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
    return BlobServiceClient(
        info.blob_endpoint, credential=credential, connection_verify=info.ca_bundle
    )


def api(info: StackInfo, route: str, **params: str) -> httpx.Response:
    with httpx.Client(base_url=info.functions_url, timeout=60) as client:
        return client.get(
            f"/api/{route}", params=params, headers={"x-functions-key": info.functions_key}
        )


def wait_until_settled(info: StackInfo, folder: str, count: int) -> dict[str, dict[str, Any]]:
    """Latest status per path under ``folder`` once ``count`` files are in end states."""
    deadline = time.monotonic() + 240
    items: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        response = api(info, "transcriptions", prefix=f"{folder}/")
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        if len(items) == count and all(item["state"] in TERMINAL for item in items):
            return {item["path"]: item for item in items}
        time.sleep(1)
    raise AssertionError(f"files under {folder}/ did not settle: {items}")


@pytest.fixture(scope="module")
def app(local_stack_with_functions: StackInfo) -> StackInfo:
    return local_stack_with_functions


@pytest.fixture(scope="module")
def files(app: StackInfo) -> Files:
    folder = f"ui-{uuid.uuid4().hex[:8]}"
    paths = Files(
        folder=folder,
        good=f"{folder}/meeting.wav",
        junk=f"{folder}/notes.wav",
        failed=f"{folder}/fails.wav",
        hostile=f"{folder}/{SCRIPT_NAME}",
        status={},
    )
    speech = httpx.Client(base_url=app.speech_url, timeout=10)
    # The emulator fails this one path's transcription for good (InvalidData is permanent).
    faults = {"fail_files": f"*/{paths.failed}", "fail_files_kind": "InvalidData"}
    assert speech.put("/admin/faults", json={**faults, "fail_files_times": 0}).status_code == 200
    try:
        service = blob_service(app)
        audio = (FIXTURES / "sentence-06.wav").read_bytes()
        uploads = {
            paths.good: (audio, None),
            paths.junk: (b"this is a shopping list, not audio", None),
            paths.failed: ((FIXTURES / "sentence-07.wav").read_bytes(), None),
            paths.hostile: (audio, {"model": IMG_VALUE}),
        }
        for name, (data, metadata) in uploads.items():
            service.get_blob_client(INPUT, name).upload_blob(data, metadata=metadata)
        status = wait_until_settled(app, folder, len(uploads))
    finally:
        speech.put("/admin/faults", json={"fail_files": None})
        speech.close()
    return replace(paths, status=status)


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    """Headless Chromium; tests ask for it first, so a missing browser skips before the stack
    starts."""
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        missing = "Chromium and chromedriver are not installed"
        if os.environ.get("CI"):
            pytest.fail(
                f"{missing}; `make test` installs them (apt-get install chromium chromium-driver)"
            )
        pytest.skip(f"{missing}: apt-get install chromium chromium-driver (`make test` does)")
    options = Options()
    options.binary_location = str(CHROMIUM)
    # Root in a container: Chromium's sandbox needs namespaces it does not get there.
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        f"--window-size={WINDOW_WIDTH},{WINDOW_HEIGHT}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def open_list(driver: WebDriver, info: StackInfo, **params: str) -> None:
    query = "&".join(
        f"{k}={quote(v, safe='')}" for k, v in {"code": info.functions_key, **params}.items()
    )
    driver.get(f"{info.functions_url}/api/ui?{query}")


def text_of(driver: WebDriver, selector: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, selector).text


def assert_nothing_injected(driver: WebDriver, info: StackInfo) -> None:
    """No alert fired, no element came from data, and the key is in no visible text."""
    with pytest.raises(NoAlertPresentException):
        _ = driver.switch_to.alert
    # The page has no script and no image of its own: any such element was injected.
    assert driver.find_elements(By.TAG_NAME, "script") == []
    assert driver.find_elements(By.TAG_NAME, "img") == []
    assert driver.execute_script("return document.querySelectorAll('[onerror]').length") == 0
    assert info.functions_key not in driver.find_element(By.TAG_NAME, "body").text


def assert_links_carry_the_key(driver: WebDriver, info: StackInfo) -> None:
    """Every link and form back into the app keeps ``code``, and only as ``code``."""
    targets = [a.get_attribute("href") or "" for a in driver.find_elements(By.TAG_NAME, "a")]
    targets += [
        f.get_attribute("action") or ""
        for f in driver.find_elements(By.CSS_SELECTOR, "form[method=post]")
    ]
    own = [t for t in targets if t.startswith(info.functions_url)]
    assert own, "the page links back into the app"
    for target in own:
        assert parse_qs(urlsplit(target).query).get("code") == [info.functions_key], target


def test_the_list_page_shows_states_failures_and_data_as_text(
    browser: WebDriver, app: StackInfo, files: Files
) -> None:
    hostile = files.status[files.hostile]
    assert hostile["state"] == "Rejected"
    assert IMG_VALUE in hostile["error"]["message"], "the planted metadata reaches the message"
    failed = files.status[files.failed]
    assert failed["state"] == "Failed", failed

    open_list(browser, app)
    assert browser.title.startswith("Status")
    for state, at_least in (("Succeeded", 1), ("Failed", 1), ("Rejected", 2)):
        count = text_of(browser, f"#counts li[data-state={state}] .count")
        assert int(count) >= at_least, (state, count)
    assert_nothing_injected(browser, app)
    assert_links_carry_the_key(browser, app)
    screenshot(browser, "list")

    # The filter form is a GET form: the key must survive it through its hidden field.
    prefix = browser.find_element(By.CSS_SELECTOR, "#files input[name=prefix]")
    prefix.send_keys(f"{files.folder}/")
    prefix.submit()
    assert parse_qs(urlsplit(browser.current_url).query)["code"] == [app.functions_key]
    listing = text_of(browser, "#files table")
    for path in (files.good, files.junk, files.failed, files.hostile):
        assert path in listing
    assert SCRIPT_NAME in listing, "shown as text, not markup"
    assert IMG_VALUE in listing
    assert "NotAudio" in listing
    # Under the prefix, so that failures of other tests in this session cannot crowd it out.
    failures = text_of(browser, "#failures")
    assert files.failed in failures
    assert failed["error"]["code"] in failures
    assert failed["error"]["message"] in failures
    assert_nothing_injected(browser, app)
    assert_links_carry_the_key(browser, app)
    screenshot(browser, "list-filtered")


def test_a_file_page_shows_its_transcript_and_downloads_by_user_delegation_sas(
    browser: WebDriver, app: StackInfo, files: Files
) -> None:
    open_list(browser, app, prefix=f"{files.folder}/")
    browser.find_element(By.LINK_TEXT, files.good).click()
    assert text_of(browser, "#path") == files.good
    assert text_of(browser, "#latest-state") == "Succeeded"
    text = bytes(
        blob_service(app).get_blob_client(OUTPUT, f"{files.good}.txt").download_blob().readall()
    ).decode()
    assert text.splitlines()[0] in text_of(browser, "#transcript pre")
    assert "RoutedBatch" in text_of(browser, ".version .events")
    assert browser.find_elements(By.CSS_SELECTOR, "form[action*=':retry']") == []

    link = browser.find_element(By.CSS_SELECTOR, "#downloads a[data-kind=txt]")
    href = link.get_attribute("href") or ""
    query = parse_qs(urlsplit(href).query)
    assert "sig" in query, "a signed SAS"
    assert "skoid" in query, "signed with a user delegation key, not the account key"
    assert query["sp"] == ["r"], "read only"
    expiry = dt.datetime.fromisoformat(query["se"][0].replace("Z", "+00:00"))
    left = expiry - dt.datetime.now(dt.UTC)
    assert dt.timedelta(minutes=10) < left <= dt.timedelta(minutes=15), "DOWNLOAD_SAS_MINUTES"
    account_key = app.env["LOCAL_STORAGE_KEY"]
    assert account_key not in href
    assert quote(account_key, safe="") not in href
    assert "code" not in query, "the function key never goes to storage"
    trust = ssl.create_default_context(cafile=app.ca_bundle)
    download = httpx.get(href, verify=trust, timeout=30)
    assert download.status_code == 200
    assert download.text == text
    assert_nothing_injected(browser, app)
    assert_links_carry_the_key(browser, app)
    screenshot(browser, "file")


def test_failed_and_hostile_files_get_their_pages(
    browser: WebDriver, app: StackInfo, files: Files
) -> None:
    open_list(browser, app, prefix=f"{files.folder}/")
    browser.find_element(By.LINK_TEXT, files.hostile).click()
    assert text_of(browser, "#path") == files.hostile
    assert IMG_VALUE in text_of(browser, ".version .error")
    assert_nothing_injected(browser, app)
    screenshot(browser, "file-hostile")

    open_list(browser, app, prefix=f"{files.folder}/")
    browser.find_element(By.LINK_TEXT, files.failed).click()
    form = browser.find_element(By.CSS_SELECTOR, "form[action*=':retry']")
    action = urlsplit(form.get_attribute("action") or "")
    assert action.path == f"/api/transcriptions/{files.failed}:retry"
    assert parse_qs(action.query) == {
        "code": [app.functions_key],
        "etag": [files.status[files.failed]["etag"]],
        "container": [INPUT],
        "redirect": ["ui"],
    }


def test_re_run_posts_to_the_action_and_comes_back_to_the_page(
    browser: WebDriver, app: StackInfo, files: Files
) -> None:
    # The emulator's fault is lifted by now: the re-run goes through like a new attempt.
    open_list(browser, app, prefix=f"{files.folder}/")
    browser.find_element(By.LINK_TEXT, files.failed).click()
    browser.find_element(By.CSS_SELECTOR, "form[action*=':retry'] button").click()
    landed = urlsplit(browser.current_url)
    assert landed.path == f"/api/ui/files/{files.failed}", "303 back to the file's page"
    assert parse_qs(landed.query)["code"] == [app.functions_key]
    assert "RetryRequested" in text_of(browser, ".version .events")
    assert text_of(browser, "#latest-state") != "Failed"
    assert_nothing_injected(browser, app)


def test_errors_are_pages_that_name_the_problem(app: StackInfo) -> None:
    missing = api(app, f"ui/files/ui-none/{quote(SCRIPT_NAME)}")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in missing.text
    assert "<script>" not in missing.text

    bad_state = api(app, "ui", state="Finished")
    assert bad_state.status_code == 400
    assert bad_state.headers["content-type"].startswith("text/html")
    assert '<code id="parameter">state</code>' in bad_state.text

    bad_token = api(app, "ui", continuation="not-a-token")
    assert bad_token.status_code == 400
    assert '<code id="parameter">continuation</code>' in bad_token.text

    with httpx.Client(base_url=app.functions_url) as client:
        assert client.get("/api/ui").status_code == 401, "the function key is required"
