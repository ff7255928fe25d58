"""HTTP: changing a session after creation, importing under a new id, and backups."""

from __future__ import annotations

from pathlib import Path

from satchel import open_runtime, restore_backup

from .test_http import Server, kind, new_session, server  # noqa: F401 - the fixture


async def test_patch_changes_a_session(server: Server) -> None:  # noqa: F811
    """PATCH /sessions/{id} replaces the fields given and answers the session as it now is."""
    sid = await new_session(server, name="draft", tags=["a"])
    answer = await server.http.patch(
        f"/sessions/{sid}",
        json={
            "name": "final",
            "tags": ["b"],
            "metadata": {"k": 1},
            "config": {"idle_timeout_s": 60},
        },
    )
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert (found["name"], found["tags"], found["metadata"]) == ("final", ["b"], {"k": 1})
    assert found["config"]["idle_timeout_s"] == 60
    listed = (await server.http.get("/sessions", params={"tags": "b"})).json()
    assert [s["id"] for s in listed] == [sid]


async def test_bad_patches_are_typed(server: Server) -> None:  # noqa: F811
    """Unknown fields, quotas and empty updates are 422; a missing session is 404."""
    sid = await new_session(server, name="n")
    for body in ({"colour": "red"}, {"config": {"max_bytes": 1}}, {}):
        assert kind(await server.http.patch(f"/sessions/{sid}", json=body))[0] == 422
    missing = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
    assert kind(await server.http.patch(f"/sessions/{missing}", json={"name": "x"})) == (
        404,
        "SessionNotFound",
    )
    assert (await server.http.get(f"/sessions/{sid}")).json()["name"] == "n"


async def test_import_under_a_new_id(server: Server) -> None:  # noqa: F811
    """POST /import?new_id=true stores an exported session again beside its original."""
    sid = await new_session(server, name="orig")
    await server.http.put(f"/sessions/{sid}/state/k", json={"value": 7})
    archive = (await server.http.get(f"/sessions/{sid}/export")).content
    assert kind(await server.http.post("/import", content=archive))[0] == 409
    answer = await server.http.post("/import", params={"new_id": "true"}, content=archive)
    assert answer.status_code == 201, answer.text
    copy = answer.json()["session_id"]
    assert copy != sid
    assert (await server.http.get(f"/sessions/{copy}/state/k")).json()["value"] == 7


async def test_backup_over_http(server: Server, tmp_path: Path) -> None:  # noqa: F811
    """POST /control/backup writes a backup on the server's machine; it restores."""
    sid = await new_session(server, name="kept")
    relative = await server.http.post("/control/backup", json={"path": "backup"})
    assert kind(relative) == (422, "InvalidArgument")
    answer = await server.http.post("/control/backup", json={"path": str(tmp_path / "b")})
    assert answer.status_code == 201, answer.text
    assert answer.json()["path"] == str(tmp_path / "b")
    assert (await restore_backup(tmp_path / "b", tmp_path / "r")).clean
    async with open_runtime(tmp_path / "r") as restored:
        assert (await restored.sessions.get(sid)).name == "kept"
