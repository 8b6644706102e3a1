-- wrk script: POST /api/v1/bets, each request a bettor's token (spread over every bettor) and a unique
-- Idempotency-Key.  wrk -s bench/bets.lua URL -- TOKENS_FILE RUN_ID
local threads = {}
local counter = 0
local tokens = {}
local run_id = "run"
local thread_id = 0

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(args[1]) do tokens[#tokens + 1] = line end
  run_id = args[2] or run_id
  thread_id = id
end

function request()
  counter = counter + 1
  local token = tokens[((counter * 7 + thread_id * 4999) % #tokens) + 1]
  local side = (counter % 5 < 3) and "UP" or "DOWN"
  local body = '{"side": "' .. side .. '", "stake_u": ' .. (1000000 + counter % 1000) .. '}'
  return wrk.format("POST", "/api/v1/bets", {
    ["Authorization"] = "Token " .. token,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = run_id .. "-" .. thread_id .. "-" .. counter,
  }, body)
end
