"""The web inspector in a real browser: headless Chromium, driven by Selenium through
chromedriver, against a `satchel serve` of its own.

The tests log in, find a session made through the API, watch its timeline grow, preview and
download artifacts, fork from a point, passivate an actor and check that markup in a name
stays text. Each page they visit is kept as a PNG screenshot: in ``$SATCHEL_SCREENSHOTS`` if
set, else in ``build/screenshots/`` at the repository's root (docs/ui.md shows them).

They need Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them). Without
them the tests fail, unless ``SATCHEL_BROWSER_OPTIONAL=1`` is set: then they are skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import (
    NoAlertPresentException,
    StaleElementReferenceException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "browser-test-token-0123456789abcdef"
XSS = "<img src=x onerror=alert(1)>"
#: The browser's window, and so each screenshot's size.
WINDOW = (1280, 800)
#: The longest any condition is waited for (the timeline is polled every second).
WAIT_S = 20.0
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

if (CHROMIUM is None or CHROMEDRIVER is None) and os.environ.get("SATCHEL_BROWSER_OPTIONAL") == "1":
    pytest.skip(
        "chromium or chromedriver is not installed (apt-get install chromium chromium-driver), "
        "and SATCHEL_BROWSER_OPTIONAL=1 lets the browser tests be skipped",
        allow_module_level=True,
    )


# -- the server ------------------------------------------------------------------------------


class Server:
    """A running ``satchel serve``: its URL, and an API client holding its token."""

    def __init__(self, url: str, api: httpx.Client) -> None:
        self.url = url
        #: The name of the inspector's login cookie on this server (one per port).
        self.cookie = f"satchel_ui_{url.rsplit(':', 1)[1]}"
        self.api = api

    def ui(self, path: str = "/") -> str:
        return f"{self.url}/ui{path}"

    def create(self, name: str, **fields: Any) -> str:
        """A new session, made through the API; its id."""
        answer = self.api.post("/sessions", json={"name": name, **fields})
        answer.raise_for_status()
        session_id: str = answer.json()["id"]
        return session_id

    def set_state(self, session_id: str, key: str, value: Any) -> None:
        self.api.put(
            f"/sessions/{session_id}/state/{key}", json={"value": value}
        ).raise_for_status()

    def store(self, session_id: str, name: str, content: bytes, **query: str) -> None:
        """An artifact version, uploaded through the API."""
        answer = self.api.put(
            f"/sessions/{session_id}/artifacts/{quote(name, safe='')}",
            content=content,
            params={"type": "tool_output", **query},
        )
        answer.raise_for_status()

    def live_actor_ids(self) -> set[str]:
        answer = self.api.get("/control/actors")
        answer.raise_for_status()
        return {actor["id"] for actor in answer.json()}


def _wait_for_server(process: subprocess.Popen[bytes], data: Path, log: Path) -> str:
    """The server's URL, once it answers ``/health``."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"satchel serve exited ({process.returncode}):\n{log.read_text()}")
        try:
            url = str(json.loads((data / "server.json").read_text())["url"])
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return url
        except (OSError, ValueError, KeyError, httpx.HTTPError):
            pass
        time.sleep(0.1)  # polling a process that is starting: nothing to wait on instead
    raise RuntimeError(f"satchel serve did not answer /health in 60 s:\n{log.read_text()}")


def _seed(server: Server) -> None:
    """A few sessions of the kind a host keeps, so the screenshots show something."""
    research = server.create(
        "research: battery suppliers",
        tags=["research", "weekly"],
        description="Compares supplier offers and drafts a summary.",
    )
    for key, value in (
        ("goal", "compare three suppliers"),
        ("sources", ["offers.pdf", "pricing.csv"]),
        ("step", 4),
    ):
        server.set_state(research, key, value)
    server.store(research, "summary.md", b"# Suppliers\n\nThree offers were compared.\n")
    support = server.create("support ticket 4211", tags=["support"])
    server.set_state(support, "customer", "ACME Corp")
    server.create("nightly import", tags=["batch"])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``satchel serve`` on a data folder of its own, on a free port, with a known token."""
    folder = tmp_path_factory.mktemp("serve")
    token_file = folder / "token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o600)
    data, log = folder / "data", folder / "serve.log"
    # The entry point `satchel`, run by this interpreter.
    command = [sys.executable, "-c", "import sys; from satchel._cli import main; sys.exit(main())"]
    command += ["serve", "--data", str(data), "--port", "0", "--token-file", str(token_file)]
    with open(log, "wb") as out:
        process = subprocess.Popen([*command, "--log-level", "warning"], stdout=out, stderr=out)
    try:
        url = _wait_for_server(process, data, log)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as api:
            running = Server(url, api)
            _seed(running)
            yield running
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- the browser -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def screenshots(request: pytest.FixtureRequest) -> Iterator[Path]:
    """The folder the pages' screenshots are kept in; their paths are listed at the end."""
    folder = Path(os.environ.get("SATCHEL_SCREENSHOTS") or ROOT / "build" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    started = time.time()
    yield folder
    kept = sorted(p for p in folder.glob("ui-*.png") if p.stat().st_mtime >= started - 1)
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print(f"\nbrowser screenshots kept: {len(kept)}", *(f"  {p}" for p in kept), sep="\n")


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the browser saves what it downloads."""
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(downloads: Path) -> Iterator[WebDriver]:
    """Headless Chromium, one window of ``WINDOW``, downloads going to ``downloads``."""
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.fail(
            "the browser tests need chromium and chromedriver: apt-get install chromium "
            "chromium-driver (or set SATCHEL_BROWSER_OPTIONAL=1 to skip them)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(argument)
    # An alert stays open for the test to find, rather than being dismissed by the driver.
    options.unhandled_prompt_behavior = "ignore"
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        # The window's size holds its (invisible) frame: the page gets exactly WINDOW.
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": WINDOW[0], "height": WINDOW[1], "deviceScaleFactor": 1, "mobile": False},
        )
        driver.execute_cdp_cmd(
            "Browser.setDownloadBehavior",
            {"behavior": "allow", "downloadPath": str(downloads), "eventsEnabled": True},
        )
        yield driver
    finally:
        driver.quit()


def wait(driver: WebDriver, timeout: float = WAIT_S) -> WebDriverWait[WebDriver]:
    return WebDriverWait(driver, timeout, ignored_exceptions=[StaleElementReferenceException])


def log_in(driver: WebDriver, server: Server) -> None:
    """Logs the browser in through the login form, unless its cookie already does."""
    driver.get(server.ui("/"))
    if driver.current_url.endswith("/ui/login"):
        driver.find_element(By.ID, "token").send_keys(TOKEN)
        driver.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()
        wait(driver).until(ec.presence_of_element_located((By.ID, "sessions")))


def keep(driver: WebDriver, folder: Path, name: str) -> Path:
    """A screenshot of the page as it is, as ``ui-<name>.png``."""
    path = folder / f"ui-{name}.png"
    assert driver.save_screenshot(str(path)), path
    return path


def no_alert(driver: WebDriver) -> bool:
    """Whether no alert, confirm or prompt is open."""
    try:
        driver.switch_to.alert  # noqa: B018 (the property raises when there is none)
    except NoAlertPresentException:
        return True
    return False


def csp_violations(driver: WebDriver) -> list[str]:
    """The browser console's messages about the page's Content-Security-Policy."""
    entries: list[dict[str, Any]] = driver.get_log("browser")
    return [e["message"] for e in entries if "Content Security Policy" in e["message"]]


def row_of(table: WebElement, text: str) -> WebElement:
    """The first row of ``table`` whose text holds ``text``."""
    for row in table.find_elements(By.CSS_SELECTOR, "tbody tr"):
        if text in row.text:
            return row
    raise AssertionError(f"no row holds {text!r}")


def png(width: int, height: int) -> bytes:
    """A small, valid RGB PNG: a diagonal gradient."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    rows = b"".join(
        b"\x00" + b"".join(bytes((4 * x % 256, 4 * y % 256, 160)) for x in range(width))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def downloaded(folder: Path, name: str, size: int) -> Callable[[WebDriver], Path | bool]:
    """A wait condition: the file ``name`` is in ``folder``, complete at ``size`` bytes."""

    def done(_: WebDriver) -> Path | bool:
        path = folder / name
        partial = any(folder.glob("*.crdownload"))
        return path if path.exists() and path.stat().st_size == size and not partial else False

    return done


# -- the tests -------------------------------------------------------------------------------


def test_logging_in_with_the_token(browser: WebDriver, server: Server, screenshots: Path) -> None:
    """A browser without the cookie is sent to the login form, which refuses a wrong token
    and lets the right one in to the sessions list."""
    browser.delete_all_cookies()
    browser.get(server.ui("/"))
    wait(browser).until(ec.url_to_be(server.ui("/login")))
    keep(browser, screenshots, "login")
    browser.find_element(By.ID, "token").send_keys("not-the-token")
    browser.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()
    failed = wait(browser).until(ec.visibility_of_element_located((By.ID, "login-failed")))
    assert "not the token" in failed.text
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()
    wait(browser).until(ec.url_to_be(server.ui("/")))
    assert browser.find_element(By.TAG_NAME, "h1").text == "Sessions"
    cookie = browser.get_cookie(server.cookie)
    assert cookie is not None and cookie["httpOnly"] and cookie.get("sameSite") == "Strict"
    assert TOKEN not in cookie["value"]
    assert browser.execute_script("return document.cookie") == ""  # HttpOnly: not for scripts


def test_a_login_link_logs_in_once(browser: WebDriver, server: Server) -> None:
    """The link `satchel ui` opens logs a browser in, and the same link a second time does
    not."""
    from satchel._ui import login_link

    link = server.url + login_link(TOKEN)
    browser.delete_all_cookies()
    browser.get(link)
    wait(browser).until(ec.url_to_be(server.ui("/")))
    assert browser.get_cookie(server.cookie) is not None
    browser.find_element(By.CSS_SELECTOR, "form.logout button").click()
    wait(browser).until(ec.url_to_be(server.ui("/login")))
    assert browser.get_cookie(server.cookie) is None
    browser.get(link)
    assert browser.find_element(By.ID, "login-failed").is_displayed()
    assert browser.get_cookie(server.cookie) is None


def test_a_session_made_through_the_api_is_in_the_list(
    browser: WebDriver, server: Server, screenshots: Path
) -> None:
    """A session created through the HTTP API appears in the list, with its tags, and its
    link opens its page."""
    session_id = server.create("triage the inbox", tags=["email"])
    log_in(browser, server)
    browser.get(server.ui("/"))
    link = wait(browser).until(ec.element_to_be_clickable((By.LINK_TEXT, "triage the inbox")))
    row = row_of(browser.find_element(By.ID, "sessions"), "triage the inbox")
    assert "email" in row.find_element(By.CLASS_NAME, "tag").text
    assert "active" in row.text
    keep(browser, screenshots, "sessions")
    link.click()
    wait(browser).until(ec.url_to_be(server.ui(f"/sessions/{session_id}")))
    assert browser.find_element(By.ID, "session-name").text == "triage the inbox"


def test_the_timeline_shows_a_state_write_as_it_happens(
    browser: WebDriver, server: Server, screenshots: Path
) -> None:
    """A state written through the API while the session's page is open appears as a new
    timeline row, without reloading the page, and links to the state at that entry."""
    session_id = server.create("weekly report", tags=["weekly"])
    server.set_state(session_id, "plan", ["search", "read", "write"])
    server.store(session_id, "notes.txt", b"first notes\n")
    log_in(browser, server)
    browser.get(server.ui(f"/sessions/{session_id}"))
    timeline = wait(browser).until(ec.presence_of_element_located((By.ID, "timeline")))
    before = len(timeline.find_elements(By.CSS_SELECTOR, "tbody tr"))
    assert before >= 2 and not timeline.find_elements(By.CSS_SELECTOR, "tr.fresh")
    server.set_state(session_id, "progress", "written after the page was opened")
    fresh = wait(browser).until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, "#timeline tbody tr.fresh"))
    )
    cells = fresh.find_elements(By.TAG_NAME, "td")
    assert cells[0].text == str(before + 1)
    assert "progress" in cells[3].text and "written after" in cells[3].text
    assert len(timeline.find_elements(By.CSS_SELECTOR, "tbody tr")) == before + 1
    link = cells[4].find_element(By.TAG_NAME, "a")
    assert link.get_attribute("href") == server.ui(f"/sessions/{session_id}/at/{before + 1}")
    keep(browser, screenshots, "session")
    link.click()
    variables = wait(browser).until(ec.presence_of_element_located((By.ID, "point-variables")))
    assert "written after the page was opened" in variables.text


def test_an_artifact_is_previewed_and_downloaded(
    browser: WebDriver, server: Server, screenshots: Path, downloads: Path
) -> None:
    """An artifact's page renders a Markdown version, switches to an earlier version, and
    its download link saves exactly that version's bytes."""
    session_id = server.create("supplier research")
    first = b"# Findings\n\n- two suppliers answered\n- prices are in EUR\n"
    second = b"# Findings\n\n- three suppliers answered\n- prices are in EUR\n- one offer expired\n"
    server.store(session_id, "findings.md", first, description="what the run found")
    server.store(session_id, "findings.md", second, description="what the run found")
    log_in(browser, server)
    browser.get(server.ui(f"/sessions/{session_id}"))
    wait(browser).until(ec.element_to_be_clickable((By.LINK_TEXT, "findings.md"))).click()
    preview = wait(browser).until(ec.visibility_of_element_located((By.ID, "preview")))
    assert browser.find_element(By.ID, "artifact-name").text == "findings.md"
    assert preview.find_element(By.TAG_NAME, "h1").text == "Findings"
    assert "three suppliers answered" in preview.text
    assert len(preview.find_elements(By.TAG_NAME, "li")) == 3
    keep(browser, screenshots, "artifact")

    versions = browser.find_element(By.ID, "versions")
    versions.find_element(By.LINK_TEXT, "1").click()
    wait(browser).until(ec.text_to_be_present_in_element((By.ID, "preview"), "two suppliers"))
    assert "version 1 of 2" in browser.find_element(By.CLASS_NAME, "sub").text
    browser.find_element(By.ID, "download").click()
    saved = wait(browser).until(downloaded(downloads, "findings.md", len(first)))
    assert isinstance(saved, Path) and saved.read_bytes() == first


def test_a_binary_artifact_is_downloaded_whole(
    browser: WebDriver, server: Server, downloads: Path
) -> None:
    """A binary artifact's page says it is binary, and its download saves every byte."""
    session_id = server.create("binary upload")
    blob = bytes(range(256)) * 64 + b"\x00end"
    server.store(session_id, "raw.bin", blob)
    log_in(browser, server)
    browser.get(server.ui(f"/sessions/{session_id}/artifacts/raw.bin"))
    preview = browser.find_element(By.ID, "preview")  # the page is made on the server
    assert "Binary content" in preview.text
    browser.find_element(By.ID, "download").click()
    saved = wait(browser).until(downloaded(downloads, "raw.bin", len(blob)))
    assert isinstance(saved, Path) and saved.read_bytes() == blob


def test_an_image_artifact_is_shown_as_an_image(browser: WebDriver, server: Server) -> None:
    """A PNG artifact's preview is an image the browser decodes at its own size."""
    session_id = server.create("chart upload")
    server.store(session_id, "chart.png", png(64, 48), mime_type="image/png")
    log_in(browser, server)
    browser.get(server.ui(f"/sessions/{session_id}/artifacts/chart.png"))
    image = browser.find_element(By.CSS_SELECTOR, "#preview.image img")
    loaded = wait(browser).until(
        lambda d: d.execute_script(
            "const i = arguments[0]; return i.complete && [i.naturalWidth, i.naturalHeight];",
            image,
        )
    )
    assert loaded == [64, 48]


def test_two_versions_of_a_text_are_compared(
    browser: WebDriver, server: Server, screenshots: Path
) -> None:
    """The artifact page's comparison form shows the lines one version removed and the
    other added."""
    session_id = server.create("reading plan")
    server.store(session_id, "plan.txt", b"gather sources\nread two papers\nwrite summary\n")
    server.store(session_id, "plan.txt", b"gather sources\nread five papers\nwrite summary\n")
    log_in(browser, server)
    browser.get(server.ui(f"/sessions/{session_id}/artifacts/plan.txt"))
    form = wait(browser).until(ec.presence_of_element_located((By.ID, "diff-form")))
    assert Select(form.find_element(By.NAME, "a")).first_selected_option.text == "1"
    assert Select(form.find_element(By.NAME, "b")).first_selected_option.text == "2"
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    diff = wait(browser).until(ec.visibility_of_element_located((By.ID, "diff")))
    removed = [e.text for e in diff.find_elements(By.CLASS_NAME, "removed")]
    added = [e.text for e in diff.find_elements(By.CLASS_NAME, "added")]
    assert "-read two papers" in removed and "+read five papers" in added
    keep(browser, screenshots, "diff")


def test_a_fork_from_a_timeline_point_keeps_the_state_there(
    browser: WebDriver, server: Server, screenshots: Path
) -> None:
    """From a timeline entry's point, a debug replay steps through the states up to it, and
    a fork makes a named session holding the state at that entry."""
    session_id = server.create("essay draft")
    for n in range(3):
        server.set_state(session_id, "draft", n)
    log_in(browser, server)
    browser.get(server.ui(f"/sessions/{session_id}"))
    timeline = wait(browser).until(ec.presence_of_element_located((By.ID, "timeline")))
    middle = row_of(timeline, '"value": 1')
    seq = int(middle.find_element(By.CSS_SELECTOR, "td").text)
    middle.find_element(By.LINK_TEXT, "state here").click()
    variables = wait(browser).until(ec.presence_of_element_located((By.ID, "point-variables")))
    assert row_of_variables(variables) == {"draft": "1"}

    browser.find_element(By.CSS_SELECTOR, "#replay-form button").click()
    at = wait(browser).until(ec.visibility_of_element_located((By.ID, "step-at")))
    assert at.text.startswith(f"step {seq} of {seq}")
    browser.find_element(By.ID, "step-back").click()
    wait(browser).until(ec.text_to_be_present_in_element((By.ID, "step-at"), f"step {seq - 1}"))
    shown = browser.find_elements(By.CSS_SELECTOR, "table.step.shown")
    assert len(shown) == 1 and "draft" in shown[0].text and "0" in shown[0].text
    browser.find_element(By.ID, "step-on").click()
    wait(browser).until(ec.text_to_be_present_in_element((By.ID, "step-at"), f"step {seq} "))
    browser.find_element(By.ID, "fork-name").send_keys("essay draft, second try")
    keep(browser, screenshots, "point")

    browser.find_element(By.CSS_SELECTOR, "#fork-form button[type=submit]").click()
    wait(browser).until(ec.text_to_be_present_in_element((By.ID, "session-name"), "second try"))
    fork_id = browser.current_url.rsplit("/", 1)[1]
    assert fork_id != session_id
    assert row_of_variables(browser.find_element(By.ID, "variables")) == {"draft": "1"}
    assert server.api.get(f"/sessions/{fork_id}/state/draft").json()["value"] == 1


def row_of_variables(table: WebElement) -> dict[str, str]:
    """A variables table as ``{name: shown value}``."""
    found = {}
    for row in table.find_elements(By.TAG_NAME, "tr"):
        heads = row.find_elements(By.TAG_NAME, "th")
        if heads:
            found[heads[0].text] = row.find_element(By.TAG_NAME, "td").text
    return found


def test_a_live_actor_is_passivated_from_its_page(
    browser: WebDriver, server: Server, screenshots: Path
) -> None:
    """The live actors page lists a working session's actor, and its Passivate button takes
    the actor out of memory (the API no longer lists it) and back to the page."""
    session_id = server.create("busy worker")
    server.set_state(session_id, "step", 1)
    assert session_id in server.live_actor_ids()
    log_in(browser, server)
    browser.get(server.ui("/actors"))
    row = wait(browser).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, f'tr[data-actor="{session_id}"]'))
    )
    assert "session" in row.text and "running" in row.text
    keep(browser, screenshots, "actors")
    row.find_element(By.CSS_SELECTOR, "button.passivate").click()
    wait(browser).until(ec.staleness_of(row))
    wait(browser).until(ec.url_to_be(server.ui("/actors")))
    assert not browser.find_elements(By.CSS_SELECTOR, f'tr[data-actor="{session_id}"]')
    assert session_id not in server.live_actor_ids()
    # The session is kept: its next use brings the actor back, with its state.
    assert server.api.get(f"/sessions/{session_id}/state/step").json()["value"] == 1


def test_markup_in_a_session_name_is_shown_as_text(browser: WebDriver, server: Server) -> None:
    """A session named ``<img src=x onerror=alert(1)>`` shows those characters in the list,
    the search box and its page, makes no image, opens no alert and breaks no page policy."""
    session_id = server.create(XSS, description=XSS, tags=["xss"])
    server.set_state(session_id, "payload", XSS)
    log_in(browser, server)
    browser.get_log("browser")  # what came before is not this test's
    for path in ("/?tag=xss", f"/?search={quote(XSS)}", f"/sessions/{session_id}"):
        browser.get(server.ui(path))
        wait(browser).until(ec.presence_of_element_located((By.TAG_NAME, "main")))
        assert no_alert(browser), path
        assert not browser.find_elements(By.CSS_SELECTOR, "img"), path
        if path.startswith("/?"):
            link = browser.find_element(By.CSS_SELECTOR, "#sessions a.session-link")
            assert link.text == XSS and link.is_displayed()
    assert browser.find_element(By.ID, "session-name").text == XSS
    assert XSS in browser.find_element(By.ID, "variables").text
    browser.get(server.ui(f"/?search={quote(XSS)}"))
    assert browser.find_element(By.ID, "search").get_attribute("value") == XSS
    assert no_alert(browser)
    assert csp_violations(browser) == []


def test_the_statistics_page_draws_its_charts(
    browser: WebDriver, server: Server, screenshots: Path
) -> None:
    """Once the server has sampled its counters a few times, the statistics page draws
    operations a second, live actors, bytes stored and bytes deduplicated as four SVG
    lines."""
    log_in(browser, server)

    def lines_drawn(driver: WebDriver) -> list[WebElement] | bool:
        driver.get(server.ui("/statistics"))
        charts = driver.find_elements(By.CSS_SELECTOR, "figure.chart")
        points = [c.find_element(By.TAG_NAME, "polyline").get_attribute("points") for c in charts]
        drawn = len(charts) == 4 and all(len((p or "").split()) >= 2 for p in points)
        return charts if drawn else False

    # The server samples every 5 s; a rate needs two samples, so a line needs three.
    charts = WebDriverWait(browser, 30, poll_frequency=1).until(lines_drawn)
    assert isinstance(charts, list)
    titles = [c.find_element(By.TAG_NAME, "figcaption").text for c in charts]
    assert [t.split(":")[0] for t in titles] == [
        "operations a second",
        "live actors",
        "artifact bytes stored",
        "of which already stored (deduplicated)",
    ]
    keep(browser, screenshots, "statistics")
    assert csp_violations(browser) == []
