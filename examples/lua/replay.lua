-- Timeline, replay in every mode, time travel by fork, and replay metadata.
-- Run it with:  satchel run --memory examples/lua/replay.lua

local id = Session.create({name = "pipeline"})
for step = 1, 3 do
  Session.setState(id, "step", step)
  Artifact.store(id, "tool_result", "step-" .. step .. ".json", JSON.encode({step = step}))
end
Session.setState(id, "status", "done")

local events = Session.timeline(id)
print("journal entries: " .. #events)
for i = 1, 3 do print(string.format("  %d %s", events[i].seq, events[i].kind)) end

local meta = Session.getReplayMetadata(id)
print(string.format("replayable: %s, %d events", tostring(meta.can_replay), meta.total_events))

-- simulate: rebuild the state from the journal.
local sim = Session.replay(id, {mode = "simulate"})
print(string.format("simulate: %d events, step = %d, %d artifacts", sim.events_replayed,
  sim.state.step, #sim.artifacts))

-- Up to a point in the journal.
local halfway = Session.replay(id, {at = events[4].seq})
print("state after entry " .. events[4].seq .. ": step = " .. halfway.state.step)

-- modified: what if a variable had another value?
local what_if = Session.replay(id, {mode = "modified", modifications = {status = "retry"}})
print("modified: status = " .. what_if.state.status)

-- debug: the state after each step.
local dbg = Session.replay(id, {mode = "debug"})
print("debug steps: " .. #dbg.steps)

-- exact: re-run the recorded hooks and compare.
local exact = Session.replay(id, {mode = "exact"})
print(string.format("exact: %d recorded hook runs re-run, %d mismatched", exact.hooks_replayed,
  exact.mismatched))

-- Replay never changes the session.
print("session still says: " .. Session.getState(id, "status"))

-- fork: a new session as the original was at a point; content is shared, not copied.
local fork = Session.fork(id, {at = events[4].seq, name = "pipeline, retry from step 2"})
print(string.format("fork: step = %d, artifacts = %d", Session.getState(fork, "step"),
  #Artifact.list(fork)))
Session.setState(fork, "step", 20)
print("original unchanged: step = " .. Session.getState(id, "step"))
