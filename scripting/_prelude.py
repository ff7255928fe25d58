"""The Lua side of the sandbox: run once in each fresh Lua state, with the full standard
library, it captures what the sandbox needs, then builds the restricted environment scripts
run in and the functions the host drives a run with.

Why it is written this way:

* API calls yield. A script runs as a coroutine; each ``Session``/``Artifact``/``State`` call
  yields one request (tagged with a table no script can reach) to the Python driver, which
  awaits the operation and resumes the script with ``true, result`` or ``false, message``.
  A script's own coroutines pass such requests up through the wrapped ``coroutine.resume``.
* Limits are not catchable. A count hook (installed on every coroutine, since a Lua-level
  hook is per thread) counts instructions and reads the clock; past a limit it marks the run
  killed and raises. ``pcall``, ``xpcall`` and the coroutine functions re-raise once a run is
  killed, and the hook then fires on every instruction, so no handler can swallow it. A memory
  error caught by ``pcall`` kills the run the same way.
* C functions never fire the hook, so the pattern functions check the worst case of a
  pattern on its subject first (``pattern_weight`` on the host side).
"""

PRELUDE = rb"""
local host = ...
local pack, unpack, select, type, error, tostring, tonumber = table.pack, table.unpack, select,
  type, error, tostring, tonumber
local pairs, ipairs, next, rawget, rawset, rawequal, rawlen = pairs, ipairs, next, rawget, rawset,
  rawequal, rawlen
local setmetatable, getmetatable, load, assert = setmetatable, getmetatable, load, assert
local co_create, co_resume, co_status, co_yield = coroutine.create, coroutine.resume,
  coroutine.status, coroutine.yield
local co_running, co_close, co_isyieldable = coroutine.running, coroutine.close,
  coroutine.isyieldable
local sethook, traceback = debug.sethook, debug.traceback
local raw_pcall, raw_xpcall, gc = pcall, xpcall, collectgarbage
local s_find, s_match, s_gmatch, s_gsub = string.find, string.match, string.gmatch, string.gsub
local s_sub = string.sub
local clock, pattern_weight = host.clock, host.pattern_weight
local host_print, json_encode, json_decode = host.print, host.json_encode, host.json_decode
local concat = table.concat
-- lupa gives every Python object one shared metatable, which decides how they are called
-- (the clock and the pattern guard among them): no script may read or change it.
getmetatable(clock).__metatable = false

local REQUEST = setmetatable({}, {__metatable = false})
local STEP = 1000          -- instructions between two calls of the hook
local CLOCK_EVERY = 8      -- hook calls between two readings of the clock
local MEMORY = "not enough memory"
local run = nil            -- the run in progress: its limits and counters

local function kill(why)
  if run.killed == nil then
    run.killed = "ScriptLimitExceeded: " .. why
  end
  error(run.killed, 0)
end

local hook
hook = function()
  local r = run
  if r == nil then return end
  if r.killed then
    sethook(hook, "", 1)   -- from now on, every instruction raises again
    error(r.killed, 0)
  end
  local calls = r.calls + 1
  r.calls = calls
  if calls > r.max_calls then
    kill("instruction limit of " .. r.max_instructions .. " reached")
  end
  if calls % CLOCK_EVERY == 0 and clock() > r.deadline then
    kill("time limit of " .. r.max_seconds .. " s reached")
  end
end

local function check_killed(ok, ...)
  local r = run
  if r ~= nil then
    if r.killed then error(r.killed, 0) end
    if not ok and (...) == MEMORY then
      kill("memory limit of " .. r.max_memory .. " bytes reached")
    end
  end
  return ok, ...
end

-- coroutines -------------------------------------------------------------------------------
local main_thread = nil

local function create(f)
  local co = co_create(f)
  sethook(co, hook, "", STEP)
  return co
end

local function resume(co, ...)
  local r = pack(co_resume(co, ...))
  -- An API request from inside: pass it up, and its answer back down.
  while r[1] and r[2] == REQUEST and co_status(co) == "suspended" do
    r = pack(co_resume(co, co_yield(unpack(r, 2, r.n))))
  end
  return check_killed(unpack(r, 1, r.n))
end

local function wrap(f)
  local co = create(f)
  return function(...)
    local r = pack(resume(co, ...))
    if not r[1] then error(r[2], 0) end
    return unpack(r, 2, r.n)
  end
end

local function yield(...)
  if co_running() == main_thread then
    error("attempt to yield from outside a coroutine", 2)
  end
  return co_yield(...)
end

local function close(co)
  -- Lua 5.5 lets a coroutine close itself, which would unwind the driver's own thread.
  local status = co_status(co)
  if status ~= "suspended" and status ~= "dead" then
    error("cannot close a " .. status .. " coroutine", 2)
  end
  return check_killed(co_close(co))
end

local function is_yieldable()
  return co_running() ~= main_thread and co_isyieldable()
end

local function request(op, ...)
  local r = pack(co_yield(REQUEST, op, ...))
  if run and run.killed then error(run.killed, 0) end
  if not r[1] then error(r[2], 0) end
  return unpack(r, 2, r.n)
end

-- pcall and friends re-raise a killed run ----------------------------------------------------
local function pcall(f, ...)
  return check_killed(raw_pcall(f, ...))
end

local function xpcall(f, handler, ...)
  -- Lua calls the handler again for an error raised by the hook inside it, and then with
  -- hooks off: a killed run must never reach the script's handler.
  local function guarded(e)
    if run and run.killed then return run.killed end
    return handler(e)
  end
  return check_killed(raw_xpcall(f, guarded, ...))
end

local function safe_setmetatable(t, mt)
  -- Finalizers run with hooks off, where no limit could stop them.
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
    error("__gc metamethods are not allowed in the sandbox", 2)
  end
  return setmetatable(t, mt)
end

local function collectgarbage(what, ...)
  what = what or "collect"
  if what == "count" or what == "collect" or what == "step" or what == "isrunning" then
    return gc(what, ...)
  end
  error("collectgarbage('" .. tostring(what) .. "') is not allowed in the sandbox", 2)
end

-- patterns ---------------------------------------------------------------------------------
local weights, cached = {}, 0

local function guard(s, p, anchorable)
  if type(s) == "number" then s = tostring(s) end
  if type(p) == "number" then p = tostring(p) end
  if type(s) ~= "string" or type(p) ~= "string" then return end
  local w = weights[p]
  if w == nil then
    local q, halves, anchored = pattern_weight(p)
    w = {q, halves, anchored}
    if cached > 4096 then weights, cached = {}, 0 end
    weights[p], cached = w, cached + 1
  end
  if w[1] == 0 and w[2] == 0 then return end
  local n = #s + 1
  local cost = n ^ w[1] * 2 ^ w[2]
  if not (anchorable and w[3]) then cost = cost * n end
  local r = run
  if r ~= nil and cost > r.max_pattern_steps then
    kill(string.format("pattern %q may take about %.3g steps on a subject of %d bytes (limit %d)",
      #p > 60 and s_sub(p, 1, 60) .. "..." or p, cost, #s, r.max_pattern_steps))
  end
end

local function find(s, p, init, plain)
  if not plain then guard(s, p, true) end
  return s_find(s, p, init, plain)
end
local function match(s, p, init)
  guard(s, p, true)
  return s_match(s, p, init)
end
local function gmatch(s, p, init)
  guard(s, p, false)
  return s_gmatch(s, p, init)
end
local function gsub(s, p, repl, n)
  guard(s, p, true)
  return s_gsub(s, p, repl, n)
end

-- the sandbox environment ------------------------------------------------------------------
local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

local safe_string = copy(string)
safe_string.dump = nil
safe_string.find, safe_string.match = find, match
safe_string.gmatch, safe_string.gsub = gmatch, gsub
-- Methods on string values (s:find(...)) go through the same table; scripts cannot reach it.
local string_meta = getmetatable("")
string_meta.__index = safe_string
string_meta.__metatable = false

-- table.move copies in C, where no hook fires: each slot it would copy counts as one
-- instruction against the run's limit, checked before it starts.
local t_move = table.move
local safe_table = copy(table)
safe_table.move = function(a1, f, e, t, a2)
  local r = run
  local slots = type(f) == "number" and type(e) == "number" and e - f + 1 or 0
  if r ~= nil and slots > r.max_instructions then
    kill(string.format("table.move of %.0f slots is over the instruction limit (%d)", slots,
      r.max_instructions))
  end
  return t_move(a1, f, e, t, a2)
end

local safe_os = {time = os.time, clock = os.clock, date = os.date, difftime = os.difftime}
local full_os, full_io = os, io

local function new_env(allow_io)
  local env = {
    assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
    pcall = pcall, xpcall = xpcall, rawequal = rawequal, rawget = rawget, rawlen = rawlen,
    rawset = rawset, select = select, setmetatable = safe_setmetatable,
    getmetatable = function(v)
      if type(v) == "userdata" then return nil end  -- a host object: nothing to see
      return getmetatable(v)
    end,
    tonumber = tonumber, tostring = tostring, type = type, collectgarbage = collectgarbage,
    _VERSION = _VERSION,
    string = safe_string, table = safe_table, math = copy(math), utf8 = copy(utf8),
    coroutine = {
      create = create, resume = resume, wrap = wrap, yield = yield, status = co_status,
      running = co_running, isyieldable = is_yieldable, close = close,
    },
    os = allow_io and copy(full_os) or copy(safe_os),
    io = allow_io and copy(full_io) or nil,
  }
  env._G = env
  env.print = function(...)
    local parts = {}
    for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
    local refused = host_print(concat(parts, "\t"))
    if refused then kill(refused) end  -- past the output limit
  end
  local function json(f, v)
    local ok, result = f(v)
    if not ok then error(result, 0) end
    return result
  end
  local encode = function(v) return json(json_encode, v) end
  local decode = function(s) return json(json_decode, s) end
  env.JSON = {encode = encode, stringify = encode, decode = decode, parse = decode}
  env.load = function(chunk, name, mode, chunk_env)
    if type(chunk) == "string" and s_sub(chunk, 1, 1) == "\27" then
      return nil, "binary chunks are not allowed in the sandbox"
    end
    local f, err = load(chunk, name, "t", chunk_env == nil and env or chunk_env)
    check_killed(f ~= nil, err)  -- a limit hit in a reader function is not a load error
    return f, err
  end
  return env
end

-- running a script -------------------------------------------------------------------------
local function on_error(e)
  if run and run.killed then return run.killed end
  if e == MEMORY and run then
    run.killed = "ScriptLimitExceeded: memory limit of " .. run.max_memory .. " bytes reached"
    return run.killed
  end
  return {message = tostring(e), traceback = traceback(tostring(e), 2)}
end

local function start(env, source, name, limits, args)
  local chunk, problem = load(source, "=" .. name, "t", env)
  if chunk == nil then return nil, problem end
  local thread = create(function()
    return raw_xpcall(chunk, on_error, unpack(args, 1, args.n))
  end)
  main_thread = thread
  run = {
    calls = 0, killed = nil,
    max_calls = limits.max_instructions // STEP,
    max_instructions = limits.max_instructions,
    max_seconds = limits.max_seconds, deadline = limits.deadline,
    max_memory = limits.max_memory, max_pattern_steps = limits.max_pattern_steps,
  }
  return true, false
end

local function step(...)
  -- One resume of the run: ("request", op, args...), ("done", ok, results...).
  local thread = main_thread
  local r = pack(co_resume(thread, ...))
  if not r[1] then
    return "done", false, (run and run.killed) or r[2]
  end
  if co_status(thread) == "suspended" then
    return "request", unpack(r, 3, r.n)
  end
  if run and run.killed then return "done", false, run.killed end
  return "done", unpack(r, 2, r.n)
end

local function finish()
  local killed = run and run.killed
  run, main_thread = nil, nil
  return killed
end

local function killed_now(why)
  if run ~= nil and run.killed == nil then
    run.killed = "ScriptLimitExceeded: " .. why
  end
end

-- rs-llmspell scripts read a session's metadata as custom_metadata: the same table.
local function alias_metadata(info)
  if type(info) == "table" then info.custom_metadata = info.metadata end
  return info
end
local SESSION_TABLES = {
  ["Session.get"] = alias_metadata,
  ["Session.list"] = function(infos)
    for _, info in ipairs(infos) do alias_metadata(info) end
    return infos
  end,
}

local function define(env, global, name, op)
  local t = rawget(env, global)
  if t == nil then t = {}; rawset(env, global, t) end
  local shape = SESSION_TABLES[op]
  if shape ~= nil then
    t[name] = function(...) return shape(request(op, ...)) end
  else
    t[name] = function(...) return request(op, ...) end
  end
end

return {
  define = define, new_env = new_env, start = start, step = step, finish = finish,
  kill = killed_now,
}
"""
