"""The web inspector's pages, as a browser gets them: login, the pages, what they show and
escape, and the guards on everything that changes something."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from satchel import _ui as ui_module
from satchel import open_runtime
from satchel._http import make_app
from satchel._ui import COOKIE, LINK_S, LOGIN_S, POLICY, csrf_value, login_link, login_value

pytestmark = pytest.mark.anyio

TOKEN = "ui-test-token-0123456789abcdef"
#: The login cookie's name for a server on port 80 (httpx's test base URL).
LOGIN = f"{COOKIE}_80"
XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
async def ui() -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """A runtime, and a browser-like client logged in to its inspector."""
    async with open_runtime(store="memory") as rt:
        app = make_app(rt, TOKEN)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answer = await client.post("/ui/login", data={"token": TOKEN})
            assert answer.status_code == 303 and LOGIN in answer.cookies
            yield rt, client


class _Tags(HTMLParser):
    """The tags of a page, with their attributes, as a browser parses them."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))


def handlers_in(page: str) -> list[str]:
    """The event-handler attributes and images of a page's markup (none are expected)."""
    parser = _Tags()
    parser.feed(page)
    return [
        f"{tag} {name}"
        for tag, attrs in parser.found
        for name, _ in attrs
        if name.startswith("on") or (tag == "img" and name == "src" and "raw" not in str(_))
    ]


def form(csrf: bool = True, **fields: str) -> dict[str, str]:
    """A form's fields, with the CSRF field unless ``csrf`` is false."""
    return {**fields, **({"csrf": csrf_value(TOKEN)} if csrf else {})}


async def test_a_browser_without_the_cookie_goes_to_the_login_form() -> None:
    """Every page sends a browser that has not logged in to the login form, and a wrong
    token is refused there."""
    async with open_runtime(store="memory") as rt:
        transport = httpx.ASGITransport(app=make_app(rt, TOKEN))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            for path in ("/ui/", "/ui/actors", "/ui/statistics", "/ui/sessions/x"):
                answer = await client.get(path)
                assert answer.status_code == 303, path
                assert answer.headers["location"] == "/ui/login"
            refused = await client.post("/ui/login", data={"token": "wrong"})
            assert refused.status_code == 401 and "not the token" in refused.text
            assert (await client.get("/ui")).status_code == 307


async def test_the_cookie_opens_the_pages_and_not_the_api(ui: Any) -> None:
    """The login cookie is HttpOnly and SameSite=Strict, and the API still wants the token."""
    _, client = ui
    fresh = await client.post("/ui/login", data={"token": TOKEN})
    cookie = fresh.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/ui" in cookie
    assert TOKEN not in fresh.headers["set-cookie"]
    assert (await client.get("/ui/")).status_code == 200
    assert (await client.get("/sessions")).status_code == 401


async def test_every_page_has_the_policy_and_no_inline_script(ui: Any) -> None:
    """Pages forbid inline scripts and other origins, and carry none themselves."""
    rt, client = ui
    session_id = await rt.sessions.create(name="s")
    await rt.sessions.set_state(session_id, "k", 1)
    await rt.artifacts.store(session_id, "a.txt", b"x", type="user_input")
    for path in (
        "/ui/",
        f"/ui/sessions/{session_id}",
        f"/ui/sessions/{session_id}/at/1",
        f"/ui/sessions/{session_id}/artifacts/a.txt",
        "/ui/actors",
        "/ui/statistics",
        "/ui/login",  # a logged-in browser is sent on from there
    ):
        answer = await client.get(path)
        assert answer.status_code in (200, 303), (path, answer.text)
        assert answer.headers["content-security-policy"] == POLICY
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert not re.search(r"<script(?![^>]*\bsrc=)", answer.text), path
        assert not handlers_in(answer.text), path


async def test_user_text_is_shown_as_text(ui: Any) -> None:
    """A session, variable, tag and artifact named with markup show as text everywhere."""
    rt, client = ui
    session_id = await rt.sessions.create(name=XSS, description=XSS, tags=["t"])
    await rt.sessions.set_state(session_id, "k", XSS)
    await rt.artifacts.store(
        session_id, "page.html", XSS.encode(), type="user_input", metadata={"description": XSS}
    )
    await rt.artifacts.store(session_id, "notes.md", f"# hi\n\n{XSS}\n".encode(), type="t")
    await rt.artifacts.store(
        session_id,
        "pic.svg",
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
        type="t",
    )
    for path in (
        "/ui/",
        f"/ui/?search={XSS}",
        f"/ui/sessions/{session_id}",
        f"/ui/sessions/{session_id}/artifacts/page.html",
        f"/ui/sessions/{session_id}/artifacts/notes.md",
        f"/ui/sessions/{session_id}/artifacts/pic.svg",
        f"/ui/sessions/{session_id}/at/2",
    ):
        text = (await client.get(path)).text
        assert XSS not in text, path
        assert not handlers_in(text), path
    listing = (await client.get("/ui/")).text
    assert "&lt;img src=x onerror=alert(1)&gt;" in listing
    svg = await client.get(f"/ui/sessions/{session_id}/artifacts/pic.svg/raw")
    assert svg.status_code == 422  # only raster images are sent as themselves


async def test_the_session_page_shows_its_record_variables_timeline_and_artifacts(
    ui: Any,
) -> None:
    """A session's page holds its name, variables, each journal entry and its artifacts,
    and the live feed gives the entries written after the page was made."""
    rt, client = ui
    session_id = await rt.sessions.create(name="worker", tags=["blue"])
    await rt.sessions.set_state(session_id, "step", 1)
    await rt.artifacts.store(session_id, "out.json", b'{"a": 1}', type="tool_output")
    page = (await client.get(f"/ui/sessions/{session_id}")).text
    assert "worker" in page and "step" in page and "out.json" in page
    assert 'data-live="/ui/sessions/' in page
    assert page.count('<td class="n">') >= 3
    entries = (await client.get(f"/ui/sessions/{session_id}/timeline.json?after=0")).json()
    last = entries[-1]["seq"]
    await rt.sessions.set_state(session_id, "step", 2)
    fresh = (await client.get(f"/ui/sessions/{session_id}/timeline.json?after={last}")).json()
    assert [e["seq"] for e in fresh] == [last + 1]
    assert '"step"' in fresh[0]["data"] or "step" in fresh[0]["data"]


async def test_the_list_filters_and_pages(ui: Any) -> None:
    """The session list filters by status, tag, text and parent, and pages by 50."""
    rt, client = ui
    parent = await rt.sessions.create(name="parent-session")
    for n in range(60):
        await rt.sessions.create(name=f"child {n}", parent_session_id=parent, tags=["kid"])
    await rt.sessions.complete(parent)
    first = (await client.get(f"/ui/?parent={parent}")).text
    assert first.count('class="session-link"') == 50 and 'id="next"' in first
    second = (await client.get(f"/ui/?parent={parent}&offset=50")).text
    assert second.count('class="session-link"') == 10 and 'id="next"' not in second
    assert (await client.get("/ui/?status=completed")).text.count('class="session-link"') == 1
    assert "child 7" in (await client.get("/ui/?search=child%207")).text
    assert (await client.get("/ui/?tag=kid")).text.count('class="session-link"') == 50
    bad = await client.get("/ui/?offset=x")
    assert bad.status_code == 422 and "offset" in bad.text


async def test_previews_downloads_and_differences(ui: Any) -> None:
    """Text, JSON and Markdown preview as text (Markdown rendered without raw HTML), a PNG as
    an image under a sandbox, a download as an attachment, and two versions' difference."""
    rt, client = ui
    session_id = await rt.sessions.create()
    await rt.artifacts.store(session_id, "a.txt", b"one\ntwo\n", type="t")
    await rt.artifacts.store(session_id, "a.txt", b"one\nthree\n", type="t")
    await rt.artifacts.store(session_id, "d.json", b'{"b":[1,2]}', type="t")
    await rt.artifacts.store(session_id, "n.md", b"# Title\n[x](javascript:alert(1))", type="t")
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
    await rt.artifacts.store(session_id, "p.png", png, type="t")
    base = f"/ui/sessions/{session_id}/artifacts"
    assert "three" in (await client.get(f"{base}/a.txt")).text
    assert "two" in (await client.get(f"{base}/a.txt?version=1")).text
    assert "&#34;b&#34;: [" in (await client.get(f"{base}/d.json")).text
    markdown = (await client.get(f"{base}/n.md")).text
    assert "<h1>Title</h1>" in markdown and 'href="javascript' not in markdown
    image = await client.get(f"{base}/p.png/raw")
    assert image.content == png and image.headers["content-type"] == "image/png"
    assert "sandbox" in image.headers["content-security-policy"]
    download = await client.get(f"{base}/a.txt/download?version=1")
    assert download.content == b"one\ntwo\n"
    assert download.headers["content-disposition"].startswith("attachment;")
    assert download.headers["content-type"] == "application/octet-stream"
    difference = (await client.get(f"{base}/a.txt/diff?a=1&b=2")).text
    assert '<span class="removed">-two</span>' in difference
    assert '<span class="added">+three</span>' in difference


async def test_replay_and_fork_from_a_point(ui: Any) -> None:
    """A point of the timeline shows the state then; a debug replay lists a state per
    entry; a fork makes a session with that state and goes to it."""
    rt, client = ui
    session_id = await rt.sessions.create(name="origin")
    for n in range(3):
        await rt.sessions.set_state(session_id, "n", n)
    timeline = await rt.sessions.timeline(session_id)
    middle = next(e.seq for e in timeline if e.kind == "state_set" and e.data.get("value") == 1)
    point = (await client.get(f"/ui/sessions/{session_id}/at/{middle}")).text
    assert "<code>1</code>" in point
    replayed = await client.post(f"/ui/sessions/{session_id}/at/{middle}/replay", data=form())
    assert replayed.status_code == 200 and replayed.text.count('class="step"') == middle
    forked = await client.post(
        f"/ui/sessions/{session_id}/at/{middle}/fork", data=form(name="from the middle")
    )
    assert forked.status_code == 303
    new_id = forked.headers["location"].rsplit("/", 1)[1]
    assert await rt.sessions.get_state(new_id, "n") == 1
    assert (await rt.sessions.get(new_id)).name == "from the middle"


async def test_actions_need_the_csrf_field(ui: Any) -> None:
    """A fork, replay, logout or actor action without the page's CSRF field changes nothing."""
    rt, client = ui
    session_id = await rt.sessions.create()
    await rt.sessions.set_state(session_id, "k", 1)
    before = len(await rt.sessions.list())
    for path in (
        f"/ui/sessions/{session_id}/at/1/fork",
        f"/ui/sessions/{session_id}/at/1/replay",
        f"/ui/actors/session/{session_id}/passivate",
        "/ui/logout",
    ):
        assert (await client.post(path, data=form(csrf=False))).status_code == 403, path
        assert (await client.post(path, data={"csrf": "forged"})).status_code == 403, path
    assert len(await rt.sessions.list()) == before
    assert rt.supervisor.is_live("session", session_id)


async def test_live_actors_can_be_passivated_and_restarted(ui: Any) -> None:
    """The actors page lists a live session's actor, and its buttons passivate it."""
    rt, client = ui
    session_id = await rt.sessions.create()
    await rt.sessions.set_state(session_id, "k", 1)
    page = (await client.get("/ui/actors")).text
    assert f'data-actor="{session_id}"' in page
    restarted = await client.post(f"/ui/actors/session/{session_id}/restart", data=form())
    assert restarted.status_code == 303
    passivated = await client.post(f"/ui/actors/session/{session_id}/passivate", data=form())
    assert passivated.status_code == 303
    unknown = await client.post("/ui/actors/nope/x/passivate", data=form())
    assert unknown.status_code == 422


async def test_statistics_draw_a_chart_per_series() -> None:
    """With samples taken, the statistics page draws each series as an SVG polyline."""
    from satchel._ui_actors import StatisticsHistory, charts

    clock = iter(float(t) for t in range(0, 100, 5))
    async with open_runtime(store="memory") as rt:
        history = StatisticsHistory(rt, clock=lambda: next(clock))
        session_id = await rt.sessions.create()
        history.sample()
        for n in range(10):
            await rt.sessions.set_state(session_id, "k", n)
        await rt.artifacts.store(session_id, "a.txt", b"x" * 1000, type="t")
        history.sample()
        await rt.artifacts.store(session_id, "b.txt", b"x" * 1000, type="t")
        history.sample()
        drawn = charts(list(history.samples))
    assert [c.title for c in drawn] == [
        "operations a second",
        "live actors",
        "artifact bytes stored",
        "of which already stored (deduplicated)",
    ]
    assert (drawn[2].last, drawn[3].last) == (2000, 1000)
    rates = drawn[0]
    assert rates.high > 0 and len(rates.points.split()) == 2


async def test_a_login_link_logs_in_once_and_only_in_its_time() -> None:
    """The link ``satchel ui`` opens logs a browser in once; used again, too old, or
    forged, it does not."""
    async with open_runtime(store="memory") as rt:
        transport = httpx.ASGITransport(app=make_app(rt, TOKEN))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            link = login_link(TOKEN)
            first = await client.get(link)
            assert first.status_code == 303 and LOGIN in first.cookies
            client.cookies.clear()
            again = await client.get(link)
            assert again.status_code == 200 and 'id="login-failed"' in again.text
            for bad in (
                login_link(TOKEN, now=time.time() - 2 * LINK_S),
                login_link(TOKEN, now=time.time() + 2 * LINK_S),
                login_link("another-token-0123456789abcdef"),
                "/ui/login?once=x.y",
            ):
                answer = await client.get(bad)
                assert answer.status_code == 200 and LOGIN not in answer.cookies, bad


def next_json(lines: Any) -> Any:
    """The next JSON document a command printed (pretty-printed over several lines)."""
    text = ""
    for line in lines:
        text += line
        if line.rstrip() == "}":
            return json.loads(text)
    raise AssertionError(f"the command ended before a whole JSON document: {text!r}")


def test_satchel_ui_serves_the_folder_and_prints_a_login_link(tmp_path: Path) -> None:
    """``satchel ui --no-browser`` serves the data folder and prints a link that logs in."""
    command = [sys.executable, "-m", "satchel._cli", "ui", "--data", str(tmp_path / "data")]
    command += ["--json", "--no-browser", "--port", "0"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            served, opened = next_json(process.stdout), next_json(process.stdout)
            assert opened["url"] == served["url"] + "/ui/"
            answer = httpx.get(opened["login"])
            port = served["url"].rsplit(":", 1)[1]
            assert answer.status_code == 303 and f"{COOKIE}_{port}" in answer.cookies
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


async def test_a_replay_of_a_long_journal_shows_the_last_states_up_to_its_point(
    ui: Any,
) -> None:
    """Stepping through a replay of many entries shows the states of the last 50 entries up
    to the point, the last of them the state there."""
    rt, client = ui
    session_id = await rt.sessions.create()
    for n in range(80):
        await rt.sessions.set_state(session_id, "n", n)
    last = (await rt.sessions.replay_metadata(session_id)).total_events
    page = await client.post(f"/ui/sessions/{session_id}/at/{last}/replay", data=form())
    assert page.text.count('class="step"') == 50
    assert f'data-label="entry {last} (state_set)"' in page.text
    assert f'data-label="entry {last - 50} ' not in page.text


async def test_binary_and_image_versions_have_their_pages(ui: Any) -> None:
    """A binary version's page offers its download, and an image's shows it as an image."""
    rt, client = ui
    session_id = await rt.sessions.create()
    await rt.artifacts.store(session_id, "raw.bin", bytes(range(256)), type="t")
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
    await rt.artifacts.store(session_id, "p.png", png, type="t")
    binary = await client.get(f"/ui/sessions/{session_id}/artifacts/raw.bin")
    assert binary.status_code == 200 and "Binary content" in binary.text
    image = await client.get(f"/ui/sessions/{session_id}/artifacts/p.png")
    assert (
        image.status_code == 200 and f"/ui/sessions/{session_id}/artifacts/p.png/raw" in image.text
    )


async def test_an_unexpected_failure_is_shown_as_a_page(
    ui: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page whose code fails unexpectedly answers an error page with the error's type
    only, not the API's JSON."""
    rt, client = ui

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(rt.control, "actors", broken)
    answer = await client.get("/ui/actors")
    assert answer.status_code == 500 and answer.headers["content-type"].startswith("text/html")
    assert "RuntimeError" in answer.text and "secret detail" not in answer.text


async def test_forms_are_small_and_read_only_when_logged_in(
    ui: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A form past the size limit is refused, and a browser that is not logged in has its
    form refused before any of it is read."""
    rt, client = ui
    big = {"token": "x" * 20_000}
    assert (await client.post("/ui/login", data=big)).status_code == 413
    session_id = await rt.sessions.create()
    await rt.sessions.set_state(session_id, "k", 1)
    huge = form(name="y" * 20_000)
    assert (await client.post(f"/ui/sessions/{session_id}/at/1/fork", data=huge)).status_code == 403
    client.cookies.clear()

    async def unread(request: Any) -> Any:
        raise AssertionError("the form was read although the browser is not logged in")

    monkeypatch.setattr(ui_module, "small_form", unread)
    assert (await client.post("/ui/logout", data=form())).status_code == 403


async def test_a_login_cookie_is_this_ports_and_runs_out(ui: Any) -> None:
    """The login cookie is named for the server's port, and one older than a login's time,
    or from the future, or forged, does not log in."""
    _, client = ui
    (value,) = [v for k, v in client.cookies.items() if k == LOGIN]
    client.cookies.clear()
    for stale in (
        login_value(TOKEN, int(time.time()) - LOGIN_S - 5),
        login_value(TOKEN, int(time.time()) + 3600),
        login_value("another-token-0123456789abcdef", int(time.time())),
        "12x.abc",
    ):
        client.cookies.set(LOGIN, stale)
        assert (await client.get("/ui/")).status_code == 303, stale
    client.cookies.set(f"{COOKIE}_8470", value)
    assert (await client.get("/ui/")).status_code == 303
    client.cookies.set(LOGIN, value)
    assert (await client.get("/ui/")).status_code == 200


async def test_numbers_in_addresses_are_checked_not_crashed_on(ui: Any) -> None:
    """Digits other than ASCII ones, or too many, are refused with 422 (or no login), not
    a server error."""
    rt, client = ui
    session_id = await rt.sessions.create()
    await rt.artifacts.store(session_id, "a.txt", b"x", type="t")
    assert (await client.get("/ui/?offset=%C2%B2")).status_code == 422
    diff = f"/ui/sessions/{session_id}/artifacts/a.txt/diff?a=1&b=%C2%B9"
    assert (await client.get(diff)).status_code == 422
    client.cookies.clear()
    for once in ("%C2%B2.x", "9" * 5000 + ".x"):
        answer = await client.get(f"/ui/login?once={once}")
        assert answer.status_code == 200 and LOGIN not in answer.cookies


async def test_previews_and_differences_read_only_the_start_of_big_versions(ui: Any) -> None:
    """A big version's page reads its first part only, a difference compares at most so
    many lines, and a Markdown link to another site is dropped."""
    from satchel import _ui_artifacts

    rt, client = ui
    session_id = await rt.sessions.create()
    text = "".join(f"line {n}\n" for n in range(200_000)).encode()  # about 1.6 MB
    await rt.artifacts.store(session_id, "big.txt", text, type="t")
    await rt.artifacts.store(
        session_id, "big.txt", text.replace(b"line 7\n", b"LINE 7\n"), type="t"
    )
    read: list[int] = []
    original = rt.artifacts.get

    async def counted(*args: Any, **kwargs: Any) -> Any:
        read.append(1)
        return await original(*args, **kwargs)

    rt.artifacts.get = counted
    page = await client.get(f"/ui/sessions/{session_id}/artifacts/big.txt")
    assert page.status_code == 200 and "The first part only is shown" in page.text
    difference = await client.get(f"/ui/sessions/{session_id}/artifacts/big.txt/diff?a=1&b=2")
    assert "+LINE 7" in difference.text
    assert difference.text.count('class="same"') <= 2 * _ui_artifacts.DIFF_LINES
    assert not read  # whole versions are never read for a page
    await rt.artifacts.store(session_id, "n.md", b"[a](//evil.example) [b](/ui/)", type="t")
    markdown = (await client.get(f"/ui/sessions/{session_id}/artifacts/n.md")).text
    assert "//evil.example" not in markdown.replace(">[a](//evil.example)", "")
    assert 'href="/ui/"' in markdown


async def test_a_text_search_reads_a_window_of_sessions_at_a_time(
    ui: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A text search reads the newest sessions up to its window, and links to the next
    window until every session has been searched, each found once."""
    from satchel import _ui_sessions

    monkeypatch.setattr(_ui_sessions, "SEARCH_WINDOW", 5)
    rt, client = ui
    for n in range(12):
        await rt.sessions.create(name=f"needle {n}")
        await rt.sessions.create(name=f"hay {n}")
    seen: list[str] = []
    path = "/ui/?search=needle"
    for _ in range(10):
        page = (await client.get(path)).text
        seen += re.findall(r'class="session-link">needle (\d+)<', page)
        found = re.search(r'href="\?([^"]+)" id="earlier"', page)
        if found is None:
            break
        path = "/ui/?" + found.group(1).replace("&amp;", "&")
    assert sorted(seen, key=int) == [str(n) for n in range(12)]
    assert seen == sorted(seen, key=int, reverse=True)  # newest first, window by window


async def test_a_session_page_shows_its_place_in_the_tree(ui: Any) -> None:
    """A session's page names its ancestors, root first, and lists its children."""
    rt, client = ui
    root = await rt.sessions.create(name="root one")
    middle = await rt.sessions.create(name="middle one", parent_session_id=root)
    leaf = await rt.sessions.create(name="leaf one", parent_session_id=middle)
    page = (await client.get(f"/ui/sessions/{leaf}")).text
    chain = re.search(r'id="ancestors">(.*?)</p>', page, re.S)
    assert chain is not None and re.findall(r">([a-z ]+ one)</a>", chain.group(1)) == [
        "root one",
        "middle one",
    ]
    assert "leaf one" in (await client.get(f"/ui/sessions/{middle}")).text
