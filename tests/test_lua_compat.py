"""What rs-llmspell's example scripts and bridge tests expect of the Lua API."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from satchel import Runtime, SessionNotFoundError, open_runtime


async def lua(rt: Runtime, source: str) -> list[Any]:
    """Run a host script, printing nothing; what it returned."""
    return await rt.run_lua(source, output=lambda _: None)


async def test_session_table_has_custom_metadata(rt: Runtime) -> None:
    """``custom_metadata`` is the very table ``metadata`` is, from get and from list."""
    found = await lua(
        rt,
        """
        local id = Session.create({name = "n", metadata = {model = "m-1"}})
        local s = Session.get(id)
        local listed = Session.list({})[1]
        return s.custom_metadata.model, rawequal(s.custom_metadata, s.metadata),
          rawequal(listed.custom_metadata, listed.metadata), listed.custom_metadata.model
        """,
    )
    assert found == ["m-1", True, True, "m-1"]


async def test_empty_metadata_tables_are_empty_maps(rt: Runtime) -> None:
    """An empty ``metadata`` or ``custom_metadata`` table creates a session with no metadata."""
    ids = await lua(
        rt,
        """
        return Session.create({metadata = {}}), Session.create({custom_metadata = {}}),
          Session.create({metadata = {}, custom_metadata = {}})
        """,
    )
    for sid in ids:
        assert (await rt.sessions.get(sid)).metadata == {}
    by_alias = await lua(rt, 'return Session.create({custom_metadata = {k = "v"}})')
    assert (await rt.sessions.get(by_alias[0])).metadata == {"k": "v"}


async def test_metadata_and_custom_metadata_must_agree(rt: Runtime) -> None:
    """Two different metadata tables are an InvalidArgument, and no session is created."""
    found = await lua(
        rt,
        """
        local ok, err = pcall(Session.create, {metadata = {a = 1}, custom_metadata = {a = 2}})
        return ok, err
        """,
    )
    assert found[0] is False and found[1].startswith("InvalidArgument: ")
    assert await rt.sessions.list() == []


async def test_error_messages_carry_rs_llmspell_wording(rt: Runtime) -> None:
    """Errors keep their kind prefix and carry rs-llmspell's phrase right after it."""
    found = await lua(
        rt,
        """
        local id = Session.create({})
        local out = {}
        for _, call in ipairs({
          function() return Session.get("not-an-id") end,
          function() return Session.get("aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa") end,
          function() return Artifact.get(id, "missing.txt") end,
        }) do
          local ok, err = pcall(call)
          out[#out + 1] = err
        end
        return table.unpack(out)
        """,
    )
    assert found[0].startswith("InvalidArgument: Invalid session ID: ")
    assert found[1] == "SessionNotFound: Session not found: aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
    assert found[2].startswith("ArtifactNotFound: Artifact not found: 'missing.txt'")


@pytest.mark.parametrize(
    "session_id",
    [
        "00000000-0000-0000-0000-000000000000",
        str(uuid.uuid1()),
        str(uuid.uuid3(uuid.NAMESPACE_DNS, "x")),
        str(uuid.uuid5(uuid.NAMESPACE_DNS, "x")),
        "ffffffff-ffff-ffff-ffff-ffffffffffff",
        str(uuid.uuid4()).upper(),
    ],
)
async def test_any_uuid_is_a_well_formed_session_id(rt: Runtime, session_id: str) -> None:
    """A UUID of any version (nil included) names no session rather than being malformed."""
    with pytest.raises(SessionNotFoundError, match=r"^Session not found: "):
        await rt.sessions.get(session_id)
    found = await lua(rt, f'local ok, e = pcall(Session.get, "{session_id}") return e')
    assert found[0].startswith("SessionNotFound: Session not found: ")


@settings(max_examples=50, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.uuids())
async def test_uuid_ids_round_trip_canonically(raw: uuid.UUID) -> None:
    """Every UUID, in either case, is accepted and named by its canonical lowercase form."""
    async with open_runtime(store="memory") as rt:
        for text in (str(raw), str(raw).upper()):
            with pytest.raises(SessionNotFoundError) as caught:
                await rt.sessions.get(text)
            assert str(raw) in str(caught.value).lower()


async def test_an_uppercase_id_names_its_session(rt: Runtime) -> None:
    """A session id in capitals finds the session, which answers with its canonical id."""
    sid = await rt.sessions.create()
    assert (await rt.sessions.get(sid.upper())).id == sid


@pytest.mark.parametrize("bad", ["", "nope", "0" * 32, "{" + str(uuid.uuid4()) + "}"])
async def test_malformed_session_ids_are_invalid(rt: Runtime, bad: str) -> None:
    """In Lua, text that is not a UUID's 36-character form is an InvalidArgument naming the
    id (the Python API takes such text as a session key)."""
    found = await lua(rt, f"local ok, e = pcall(Session.get, {bad!r}) return e")
    assert found[0].startswith("InvalidArgument: Invalid session ID: ")


async def test_id_tables_without_id_name_artifacts(rt: Runtime) -> None:
    """``{content_hash, session_id, sequence}`` works wherever an artifact id does."""
    found = await lua(
        rt,
        """
        local id = Session.create({})
        local other = Session.create({})
        local ref = Artifact.store(id, "tool_result", "r.txt", "first")
        Artifact.store(id, "tool_result", "r.txt", "second")
        local bare = {content_hash = ref.content_hash, session_id = ref.session_id,
          sequence = ref.sequence}
        local got = Artifact.get(id, bare)
        Artifact.share(id, bare, other, "read")
        local log = Artifact.auditLog(id, bare)
        local wrong = {content_hash = ref.content_hash, session_id = id, sequence = 2}
        local ok, err = pcall(Artifact.get, id, wrong)
        Artifact.delete(id, bare)
        local versions = Artifact.versions(id, "r.txt")
        return got.content, got.metadata.version, ok, err, #versions, versions[1].version, #log
        """,
    )
    assert found[:3] == ["first", 1, False]
    assert found[3].startswith("ArtifactNotFound: Artifact not found: ")
    assert found[4:6] == [1, 2]


async def test_ambiguous_id_tables_are_refused(rt: Runtime) -> None:
    """Two names holding the same content at one version cannot be told apart by hash."""
    found = await lua(
        rt,
        """
        local id = Session.create({})
        local a = Artifact.store(id, "tool_result", "a.txt", "same")
        Artifact.store(id, "tool_result", "b.txt", "same")
        local ok, err = pcall(Artifact.get, id,
          {content_hash = a.content_hash, session_id = id, sequence = 1})
        return ok, err
        """,
    )
    assert found[0] is False and found[1].startswith("InvalidArgument: ")


async def test_id_tables_tell_a_stranger_nothing(rt: Runtime) -> None:
    """A session script without a grant gets the same AccessDenied for a right and a wrong
    id table of another session: whether that content is there stays hidden."""
    victim = await rt.sessions.create()
    ref = await rt.artifacts.store(victim, "secret.txt", b"s3cret", type="tool_result")
    attacker = await rt.sessions.create()
    found = await rt.run_lua(
        f"""
        local out = {{}}
        for _, hash in ipairs({{"{ref.content_hash}", string.rep("0", 64)}}) do
          local ok, err = pcall(Artifact.get, "",
            {{content_hash = hash, session_id = "{victim}", sequence = 1}})
          out[#out + 1] = err
        end
        return table.unpack(out)
        """,
        session_id=attacker,
        output=lambda _: None,
    )
    assert found[0] == found[1] and found[0].startswith("AccessDenied: ")
    assert ref.id not in found[0]
