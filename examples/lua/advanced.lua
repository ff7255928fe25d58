-- Hierarchies, bulk work and queries across sessions.
-- Run it with:  satchel run --memory examples/lua/advanced.lua

-- A project with one child session per task, each with a few artifacts.
local project = Session.create({name = "research project", tags = {"project"}})
local tasks = {}
for i, topic in ipairs({"batteries", "solar", "wind", "storage"}) do
  local task = Session.create({name = "task: " .. topic, parent_session_id = project,
    tags = {"task", topic}, metadata = {index = i}})
  tasks[#tasks + 1] = task
  for n = 1, 5 do
    Artifact.store(task, "tool_result", "source-" .. n .. ".txt",
      topic .. " source " .. n .. string.rep(".", n * 100),
      {tags = {topic, n % 2 == 0 and "even" or "odd"}, rank = n})
  end
  Session.setState(task, "sources", 5)
end
print(string.format("project with %d tasks", #Session.list({parent_session_id = project})))

-- Queries across every session the script may read.
print("odd-ranked sources: " .. #Artifact.query({tags = {"odd"}}))
print("rank 5 sources: " .. #Artifact.query({metadata = {rank = 5}}))
local largest = Artifact.query({order_by = "size", descending = true, limit = 3})
for _, m in ipairs(largest) do print(string.format("  largest: %s (%d bytes)", m.name, m.size)) end
print("named like 'SOURCE-1': " .. #Artifact.query({name_pattern = "SOURCE-1"}))

-- Bulk state: totals over the children.
local total = 0
for _, task in ipairs(tasks) do total = total + Session.getState(task, "sources") end
print("sources in all tasks: " .. total)

-- Close the finished tasks and look at the project by status.
Session.complete(tasks[1])
Session.fail(tasks[2], "source site unreachable")
print("completed: " .. #Session.list({parent_session_id = project, status = "completed"})
  .. ", failed: " .. #Session.list({parent_session_id = project, status = "failed"})
  .. ", active: " .. #Session.list({parent_session_id = project, status = "active"}))
print("failure reason: " .. Session.get(tasks[2]).failure_reason)
local by_name = Session.list({parent_session_id = project, order_by = "name", limit = 2})
print("first two by name: " .. by_name[1].name .. ", " .. by_name[2].name)

-- Completed sessions stay readable.
print("completed task still has " .. #Artifact.list(tasks[1]) .. " artifacts")

-- Share one child's artifact with another (a session script of the grantee can read it).
Artifact.share(tasks[3], "source-1.txt", tasks[4], "read")
print("audit entries for the share: " .. #Artifact.auditLog(tasks[3], "source-1.txt"))

-- Runtime-wide script state, kept in the data folder.
State.set("last_project", project)
print("State remembers the project: " .. tostring(State.get("last_project") == project))

Session.delete(project, {cascade = true})
print("after cascade delete: " .. #Session.list() .. " sessions")
