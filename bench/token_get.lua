-- wrk script: GET the path given, with a bettor's token (spread over every bettor).
-- wrk -s bench/token_get.lua URL -- TOKENS_FILE PATH
local counter = 0
local tokens = {}
local path = "/api/v1/me"

function init(args)
  for line in io.lines(args[1]) do tokens[#tokens + 1] = line end
  path = args[2] or path
  counter = math.random(1, #tokens)
end

function request()
  counter = counter + 1
  return wrk.format("GET", path, {["Authorization"] = "Token " .. tokens[(counter % #tokens) + 1]})
end
