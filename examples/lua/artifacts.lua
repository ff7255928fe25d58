-- Artifacts: store, versions, binary content, metadata, query, deduplication, delete.
-- Run it with:  satchel run --memory examples/lua/artifacts.lua

local id = Session.create({name = "artifacts"})

local report = Artifact.store(id, "agent_output", "report.md", "# Draft\n",
  {mime_type = "text/markdown", tags = {"report"}, model = "small", tokens = {input = 12}})
Artifact.store(id, "agent_output", "report.md", "# Final\nAll done.\n", {tags = {"report"}})
print(string.format("report.md: version %d then %d", report.version,
  Artifact.get(id, "report.md").metadata.version))
print("first version still readable: " .. Artifact.get(id, "report.md", 1).content:gsub("\n", ""))

local meta = Artifact.get(id, report).metadata
print(string.format("metadata: type %s, mime %s, custom model %s, input tokens %d",
  meta.type, meta.mime_type, meta.custom.model, meta.custom.tokens.input))

-- Content is binary safe.
local png = string.char(0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0) .. string.rep("\255", 100)
local image = Artifact.store(id, "tool_result", "chart.png", png, {mime_type = "image/png"})
local back = Artifact.get(id, image)
print(string.format("binary round trip: %s (%d bytes)", tostring(back.content == png),
  back.metadata.size))

-- The same bytes anywhere share one blob: the content hash is the same.
local other = Session.create({name = "another"})
local copy = Artifact.store(other, "tool_result", "chart-copy.png", png)
print("same content, same hash: " .. tostring(copy.content_hash == image.content_hash))

-- Large, compressible content is compressed at rest.
local big = Artifact.store(id, "system_generated", "log.txt", string.rep("line of log\n", 10000))
local big_meta = Artifact.get(id, big).metadata
print(string.format("log.txt: %d bytes, compressed %s, smaller at rest %s", big_meta.size,
  tostring(big_meta.is_compressed), tostring(big_meta.stored_size < big_meta.size)))

-- Listing shows the latest version of each name; versions shows them all.
print("listed: " .. #Artifact.list(id) .. ", versions of report.md: "
  .. #Artifact.versions(id, "report.md"))
for _, m in ipairs(Artifact.query({session_id = id, tags = {"report"}, all_versions = true})) do
  print("query: " .. m.name .. " v" .. m.version)
end
print("larger than 1 KiB: " .. #Artifact.query({session_id = id, min_size = 1024}))

-- Delete one version, then a whole name.
Artifact.delete(id, report)
print("report.md versions left: " .. #Artifact.versions(id, "report.md"))
Artifact.delete(id, "report.md")
local ok, err = pcall(Artifact.get, id, "report.md")
print("after deleting the name: " .. err:match("^(%w+)"))
