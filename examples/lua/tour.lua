-- A short tour of satchel from Lua: sessions, state, artifacts, versions, query, fork, replay.
-- Run it with:  satchel run examples/lua/tour.lua   (add --memory to keep nothing)

local id = Session.create({
  name = "tour",
  description = "a walk through satchel",
  tags = {"tour", "demo"},
  metadata = {owner = "you", attempt = 1},
})
print("created session " .. id)

-- Session variables: JSON-like values, journaled with every change.
Session.setState(id, "plan", {steps = {"search", "summarize"}, done = 0})
Session.setState(id, "plan", {steps = {"search", "summarize"}, done = 1})
print("plan progress: " .. Session.getState(id, "plan").done .. " of 2")

-- Artifacts: content-addressed, deduplicated, versioned per name.
local first = Artifact.store(id, "tool_result", "search.json", JSON.encode({hits = 3}),
  {mime_type = "application/json", tags = {"search"}})
local second = Artifact.store(id, "tool_result", "search.json", JSON.encode({hits = 5}),
  {tags = {"search"}, source = "web"})
print(string.format("stored %s version %d, then version %d", second.name, first.version,
  second.version))
local latest = Artifact.get(id, "search.json")
print("latest content: " .. latest.content .. " (" .. latest.metadata.size .. " bytes)")
print("versions kept: " .. #Artifact.versions(id, "search.json"))

-- Query across the session's artifacts.
Artifact.store(id, "agent_output", "summary.md", "# Summary\nThree, then five hits.")
for _, meta in ipairs(Artifact.query({session_id = id, tags = {"search"}})) do
  print("query found: " .. meta.name .. " v" .. meta.version .. " (" .. meta.type .. ")")
end

-- Fork: a new session with the state and artifacts as of a point in the journal.
local events = Session.timeline(id)
print("journal entries: " .. #events)
local fork = Session.fork(id, {at = 3, name = "tour, before the artifacts"})
print("fork sees plan progress " .. Session.getState(fork, "plan").done
  .. " and " .. #Artifact.list(fork) .. " artifacts")

-- Replay: rebuild the session from its journal without touching it.
local replay = Session.replay(id, {mode = "simulate"})
print("replayed " .. replay.events_replayed .. " events; plan done = " .. replay.state.plan.done)

-- Errors carry their kind, so pcall callers can tell them apart. Resuming a session that
-- is already active is refused on purpose here, to show one.
local ok, err = pcall(Session.resume, id)
assert(not ok)
print("resuming an active session is refused, as expected: " .. err:match("^%a+"))

Session.complete(id)
print("status now: " .. Session.get(id).status)
