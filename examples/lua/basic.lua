-- Sessions: create with metadata, a child, the lifecycle, variables, listing and errors.
-- Run it with:  satchel run --memory examples/lua/basic.lua

local id = Session.create({
  name = "quarterly analysis",
  description = "sales figures, Q4",
  tags = {"analysis", "sales"},
  metadata = {analyst = "ada", priority = 2},
})
local child = Session.create({name = "EMEA drill-down", parent_session_id = id,
  tags = {"analysis"}})
local s = Session.get(id)
print(string.format("created %q (%s), tags %s, analyst %s", s.name, s.status,
  table.concat(s.tags, ","), s.metadata.analyst))
print("child's parent is the first session: " .. tostring(Session.get(child).parent_session_id == id))

-- Lifecycle: only the allowed transitions pass.
Session.suspend(id)
print("after suspend: " .. Session.get(id).status)
local ok, err = pcall(Session.setState, id, "k", 1)
print("write while suspended: " .. err:match("^(%w+)"))
Session.resume(id)
print("after resume: " .. Session.get(id).status)

-- Variables: JSON-like values, kept with the session.
Session.setState(id, "regions", {"EMEA", "APAC"})
Session.setState(id, "progress", {done = 1, total = 3})
local keys = Session.listState(id)
table.sort(keys)
print("variables: " .. table.concat(keys, ", ") .. "; progress "
  .. Session.getState(id, "progress").done .. "/" .. Session.getState(id, "progress").total)

-- The current session, for scripts that work on one session at a time.
Session.setCurrent(child)
print("current is the child: " .. tostring(Session.getCurrent() == child))
Session.setCurrent(nil)

-- Listing with filters.
print("sessions tagged analysis: " .. #Session.list({tags = {"analysis"}}))
print("children of the first: " .. #Session.list({parent_session_id = id}))
Session.complete(child)
print("active sessions: " .. #Session.list({status = "active"}))

-- Errors name their kind.
local ok2, err2 = pcall(Session.get, "not-a-session-id")
print("unknown id: " .. err2:match("^(%w+)"))
local ok3, err3 = pcall(Session.delete, id)
print("delete a parent: " .. err3:match("^(%w+)"))
Session.delete(id, {cascade = true})
print("after cascade delete: " .. #Session.list() .. " sessions")
