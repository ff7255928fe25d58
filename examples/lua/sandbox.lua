-- What a script may and may not do. Every line prints "ok" when the sandbox behaves.
-- Run it with:  satchel run --memory examples/lua/sandbox.lua

local function check(what, passed) print((passed and "ok   " or "FAIL ") .. what) end

-- Removed: files, processes, the debug library, modules, bytecode.
check("no io library", io == nil)
check("no os.execute, os.getenv, os.remove", os.execute == nil and os.getenv == nil
  and os.remove == nil)
check("no debug library", debug == nil)
check("no require, package, dofile, loadfile", require == nil and package == nil
  and dofile == nil and loadfile == nil)
check("no string.dump", string.dump == nil)
check("load refuses bytecode", load(string.char(27) .. "Lua") == nil)
check("the string metatable is hidden", getmetatable("") == false)
check("collectgarbage cannot stop the collector", not pcall(collectgarbage, "stop"))

-- Kept: the safe parts of os, the standard libraries, JSON, load for text.
check("os.time, os.clock, os.date", type(os.time()) == "number" and type(os.clock()) == "number"
  and os.date("!%Y", 0) == "1970")
check("string, table, math, utf8", ("abc"):upper() == "ABC" and math.max(1, 2) == 2
  and utf8.char(228) == "ä")
check("JSON round trip", JSON.decode(JSON.encode({a = {1, 2}})).a[2] == 2)
check("load runs text in the sandbox", load("return io")() == nil)
check("coroutines work", coroutine.wrap(function() coroutine.yield(7) end)() == 7)

-- API errors are catchable and carry their kind.
local ok, err = pcall(Session.get, "00000000-0000-4000-8000-000000000000")
check("errors start with their kind", not ok and err:find("^SessionNotFound") ~= nil)

-- Limits (memory, instructions, wall time) stop the whole run: pcall cannot catch them.
-- Try:  satchel run --memory examples/lua/sandbox.lua -- loop
if ARGS[1] == "loop" then
  pcall(function() while true do end end)
  print("never printed")
end
