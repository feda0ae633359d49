-- racing_line_fast.lua -- a fast-lap reward: pay for progress, scaled by how well the car follows
-- the racing line at the line's speed (scripts/fast_lap.lua trains with it).
--
-- Why per progress and not per step: racing_line.lua pays every step, and an episode ends when
-- the lap is complete, so a car that crawls round the line collects more steps and earns more.
-- Here a step pays the percent of the lap it gained times a quality in [FLOOR, 1]: a whole lap
-- is worth at most 100 however long it takes, and the discount (scripts/fast_lap.lua uses
-- 0.99, a horizon of about one lap) makes the same lap in fewer steps worth more. The quality
-- says how to be fast: on the line (params.racing_line, chicane's extension; see
-- rewards/README.md) and at the speed it allows a little ahead (params.racing_line_speed), so
-- the car learns to brake before a corner instead of running wide through it.
--
-- Speed term: the commanded speed over the target, capped at 1, cubed, minus SPEED_OVER for each m/s
-- above the target (that much too fast in a corner runs wide). On a straight the target is
-- 4 m/s, the car's top speed, so only flat out pays in full there.
--
-- Without the racing line (empty lists) the quality is the centring alone. Each car has its
-- own Lua state: the locals below belong to one car's stream of episodes.

local FLOOR = 0.2      -- the share of the progress paid whatever the quality
local LOOKAHEAD = 3    -- line points (about 0.11 m each on bayside) ahead for the target speed
local SPEED_OVER = 0.5 -- quality lost per m/s commanded above the target speed
local SPEED_POWER = 3  -- (speed / target)^3: 10% too slow costs 27%, so flat out pays

local xs, ys, vs, n = {}, {}, {}, 0
local source = nil -- the params.racing_line table the arrays were copied from
local last = 0     -- index of the line point nearest the car at the last step
local last_progress = 0

local function prepare(line, speeds)
  source, n = line, #line
  for i = 1, n do
    xs[i], ys[i], vs[i] = line[i][1], line[i][2], speeds[i] or 0
  end
end

local function dist2(i, x, y)
  local dx, dy = xs[i] - x, ys[i] - y
  return dx * dx + dy * dy
end

-- Index of the line point nearest (x, y): a full scan when there is no hint, else a walk
-- downhill from the hint in both directions (a few comparisons per step).
local function nearest(x, y, hint)
  if hint < 1 or hint > n then
    local best, bd = 1, math.huge
    for i = 1, n do
      local d = dist2(i, x, y)
      if d < bd then best, bd = i, d end
    end
    return best
  end
  local i, d = hint, dist2(hint, x, y)
  for _, step in ipairs({ 1, -1 }) do
    while true do
      local j = (i - 1 + step) % n + 1
      local dj = dist2(j, x, y)
      if dj >= d then break end
      i, d = j, dj
    end
  end
  return i
end

-- Squared distance from (x, y) to the segment from line point a to line point b.
local function segment_distance2(a, b, x, y)
  local ax, ay = xs[a], ys[a]
  local vx, vy = xs[b] - ax, ys[b] - ay
  local len2 = vx * vx + vy * vy
  local t = 0
  if len2 > 0 then
    t = math.max(0, math.min(1, ((x - ax) * vx + (y - ay) * vy) / len2))
  end
  local dx, dy = ax + t * vx - x, ay + t * vy - y
  return dx * dx + dy * dy
end

-- Quality in [0, 1] of the car's position and commanded speed against the line.
local function line_quality(params, half_width)
  local x, y = params.x, params.y
  local i = nearest(x, y, last)
  last = i
  local d = math.sqrt(math.min(segment_distance2((i - 2) % n + 1, i, x, y),
                               segment_distance2(i, i % n + 1, x, y)))
  local on_line = math.max(0, 1 - d / half_width)
  local target = vs[(i - 1 + LOOKAHEAD) % n + 1]
  local v = params.speed
  local speed = math.min(1, v / target) ^ SPEED_POWER - SPEED_OVER * math.max(0, v - target)
  return on_line * math.max(0, speed)
end

function reward_function(params)
  if params.steps <= 1 then
    last_progress, last = 0, 0
  end
  local gained = math.max(0, params.progress - last_progress)
  last_progress = params.progress
  if params.is_offtrack or not params.all_wheels_on_track then
    return 0
  end
  local half_width = 0.5 * params.track_width
  local line = params.racing_line
  if line ~= source then prepare(line, params.racing_line_speed) end
  local quality
  if n < 2 then
    quality = math.max(0, 1 - params.distance_from_center / half_width)
  else
    quality = line_quality(params, half_width)
  end
  return gained * (FLOOR + (1 - FLOOR) * quality)
end
