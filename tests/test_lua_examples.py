"""The Lua examples run through `satchel run`; scripts written for rs-llmspell run unmodified."""

from __future__ import annotations

from pathlib import Path

import pytest

from satchel._cli import main

EXAMPLES = Path(__file__).parent.parent / "examples" / "lua"

EXPECTED = {
    "basic.lua": [
        'created "quarterly analysis" (active), tags analysis,sales, analyst ada',
        "child's parent is the first session: true",
        "write while suspended: SessionNotActive",
        "variables: progress, regions; progress 1/3",
        "sessions tagged analysis: 2",
        "active sessions: 1",
        "unknown id: InvalidArgument",
        "delete a parent: SessionHasChildren",
        "after cascade delete: 0 sessions",
    ],
    "artifacts.lua": [
        "report.md: version 1 then 2",
        "first version still readable: # Draft",
        "metadata: type agent_output, mime text/markdown, custom model small, input tokens 12",
        "binary round trip: true (109 bytes)",
        "same content, same hash: true",
        "log.txt: 120000 bytes, compressed true, smaller at rest true",
        "listed: 3, versions of report.md: 2",
        "query: report.md v1",
        "query: report.md v2",
        "report.md versions left: 1",
        "after deleting the name: ArtifactNotFound",
    ],
    "replay.lua": [
        "journal entries: 8",
        "  1 session_created",
        "replayable: true, 8 events",
        "simulate: 8 events, step = 3, 3 artifacts",
        "state after entry 4: step = 2",
        "modified: status = retry",
        "debug steps: 8",
        "exact: 0 recorded hook runs re-run, 0 mismatched",
        "session still says: done",
        "fork: step = 2, artifacts = 1",
        "original unchanged: step = 3",
    ],
    "advanced.lua": [
        "project with 4 tasks",
        "odd-ranked sources: 12",
        "rank 5 sources: 4",
        "  largest: source-5.txt (518 bytes)",
        "named like 'SOURCE-1': 4",
        "sources in all tasks: 20",
        "completed: 1, failed: 1, active: 2",
        "failure reason: source site unreachable",
        "first two by name: task: batteries, task: solar",
        "completed task still has 5 artifacts",
        "State remembers the project: true",
        "after cascade delete: 0 sessions",
    ],
}


@pytest.mark.parametrize("example", sorted(EXPECTED))
def test_example_prints_what_it_shows(
    example: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The example exits 0 and prints each line it is meant to show."""
    assert main(["--data", str(tmp_path), "run", str(EXAMPLES / example)]) == 0
    lines = capsys.readouterr().out.splitlines()
    for line in EXPECTED[example]:
        assert line in lines


def test_sandbox_example_passes_and_its_loop_is_stopped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every check of sandbox.lua prints ok; its loop is stopped by a limit pcall cannot catch."""
    script = str(EXAMPLES / "sandbox.lua")
    assert main(["--data", str(tmp_path), "run", script]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 14 and all(line.startswith("ok ") for line in lines)
    assert main(["--data", str(tmp_path), "run", script, "--", "loop"]) == 1
    captured = capsys.readouterr()
    assert "never printed" not in captured.out
    assert captured.err.startswith("ScriptLimitExceeded: instruction limit")


# Written the way rs-llmspell 0.6 (camelCase) scripts are: no arguments to list, errors
# reported by matching the text after the last colon, the current session set and cleared.
RS_LLMSPELL_06 = """
local session_id = Session.create({
  name = "Data Analysis", description = "Q4 numbers", tags = {"analysis", "q4"},
  metadata = {department = "sales", priority = "high"}
})
local child_id = Session.create({name = "Regional", parent_session_id = session_id})
print("sessions:", #Session.list())
Session.suspend(session_id)
print("status:", Session.get(session_id).status)
Session.resume(session_id)
Session.save(session_id)
Session.setCurrent(session_id)
print("current set:", Session.getCurrent() == session_id)
Session.setCurrent(nil)
print("current:", Session.getCurrent() or "none")
local filtered = Session.list({tags = {"analysis"}, status = "active", limit = 5})
print("filtered:", #filtered)
local success, err = pcall(Session.get, "invalid-session-id")
print("error caught:", not success and tostring(err):match("([^:]+)$") ~= nil)
Session.complete(child_id)
Session.complete(session_id)
print("completed still readable:", Session.get(session_id).metadata.department)
"""

# Written the way rs-llmspell 0.7+ (snake_case) scripts are: extra metadata keys, `sequence`,
# the current session through "", JSON.stringify/parse, os.date, temp files through io/os.
RS_LLMSPELL_07 = """
local session_id = Session.create({name = "Artifact Demo", tags = {"demo"}})
Session.set_current(session_id)
local text_id = Artifact.store(session_id, "tool_result", "analysis.txt", "growth 15%",
  {mime_type = "text/plain", tags = {"analysis"}, tool = "analyzer", execution_time = 2.5})
print("hash prefix:", #text_id.content_hash:sub(1, 16), "sequence:", text_id.sequence)
local json_id = Artifact.store(session_id, "agent_output", "metrics.json",
  JSON.stringify({metrics = {revenue = 1500000, regions = {"EMEA", "APAC"}},
    timestamp = os.date("!%Y-%m-%dT%H:%M:%SZ")}), {mime_type = "application/json"})
local decoded = JSON.parse(Artifact.get(session_id, json_id).content)
print("regions:", table.concat(decoded.metrics.regions, ", "))
for i, artifact in ipairs(Artifact.list(session_id)) do
  print(string.format("%d. %s (%s, %d bytes)", i, artifact.name, artifact.artifact_type,
    artifact.size))
end
print("current session artifacts:", #Artifact.list(""))
print("custom kept:", Artifact.get(session_id, text_id).metadata.custom.tool)
local path = os.tmpname()
local file = io.open(path, "w")
file:write("content from a file on disk")
file:close()
local file_id = Artifact.store_file(session_id, path, "user_input", {source = "filesystem"})
os.remove(path)
print("file stored:", Artifact.get(session_id, file_id).content)
Artifact.delete(session_id, text_id)
local ok, err = pcall(Artifact.get, session_id, text_id)
print("deleted:", not ok and err:find("^ArtifactNotFound") ~= nil)
Session.complete(session_id)
"""


def test_rs_llmspell_06_style_script_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A camelCase script in rs-llmspell 0.6's style runs as written, with the spec's fixes."""
    script = tmp_path / "basic.lua"
    script.write_text(RS_LLMSPELL_06)
    assert main(["--data", str(tmp_path / "data"), "run", str(script)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "sessions:\t2",
        "status:\tsuspended",
        "current set:\ttrue",
        "current:\tnone",
        "filtered:\t1",
        "error caught:\ttrue",
        "completed still readable:\tsales",
    ]


def test_rs_llmspell_07_style_script_runs_with_allow_io(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A snake_case script that writes a temp file runs with --allow-io, and not without."""
    script = tmp_path / "artifacts.lua"
    script.write_text(RS_LLMSPELL_07)
    data = str(tmp_path / "data")
    assert main(["--data", data, "run", "--allow-io", str(script)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "hash prefix:\t16\tsequence:\t1",
        "regions:\tEMEA, APAC",
        "1. analysis.txt (tool_result, 10 bytes)",
        "2. metrics.json (agent_output, 92 bytes)",
        "current session artifacts:\t2",
        "custom kept:\tanalyzer",
        "file stored:\tcontent from a file on disk",
        "deleted:\ttrue",
    ]
    assert main(["--data", data, "run", str(script)]) == 1
    assert "attempt to call a nil value (field 'tmpname')" in capsys.readouterr().err
