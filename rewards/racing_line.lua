-- racing_line.lua -- chicane's racing-line reward: drive the track's reference racing line at
-- the speed it allows there.
--
-- Uses chicane's params extension: params.racing_line, the minimum-curvature line inside the
-- borders ({x, y} points in driving order, 1-based), and params.racing_line_speed, the fastest
-- speed the car can hold at each point (m/s). Both are computed once per track and direction
-- (see rewards/README.md). Without them (empty lists) it rewards the centre line instead.
--
-- Per step: closeness to the line (1 on it, 0 half a track width away, squared so that small
-- errors still pay) times a speed term (1 at the line's speed, falling linearly to 0 at a
-- 2 m/s difference), plus a small floor. Off the track pays almost nothing.
--
-- Speed matters here (it runs every step of every car): the line is copied once into flat
-- coordinate arrays, and the nearest point is found by walking from the previous step's
-- answer, a few comparisons instead of a scan of the whole line (a new episode, steps == 1,
-- scans once). Each car has its own Lua state, so these locals belong to one car's episodes.

local xs, ys, vs, n = {}, {}, {}, 0
local source = nil -- the params.racing_line table the arrays were copied from
local last = 0     -- index of the line point nearest the car at the last step

local function prepare(line, speeds)
  source, n = line, #line
  for i = 1, n do
    xs[i], ys[i], vs[i] = line[i][1], line[i][2], speeds[i] or 0
  end
end

-- Index of the line point nearest (x, y): a full scan, or a walk downhill from hint.
local function nearest(x, y, hint)
  if hint < 1 or hint > n then
    local best, bd = 1, math.huge
    for i = 1, n do
      local dx, dy = xs[i] - x, ys[i] - y
      local d = dx * dx + dy * dy
      if d < bd then best, bd = i, d end
    end
    return best
  end
  local i = hint
  local dx, dy = xs[i] - x, ys[i] - y
  local d = dx * dx + dy * dy
  local step = 1
  for _ = 1, 2 do
    while true do
      local j = (i - 1 + step) % n + 1
      dx, dy = xs[j] - x, ys[j] - y
      local dj = dx * dx + dy * dy
      if dj >= d then break end
      i, d = j, dj
    end
    step = -1
  end
  return i
end

-- Distance from (x, y) to the segment from point a to point b.
local function segment_distance(a, b, x, y)
  local ax, ay = xs[a], ys[a]
  local vx, vy = xs[b] - ax, ys[b] - ay
  local len2 = vx * vx + vy * vy
  local t = 0
  if len2 > 0 then
    t = ((x - ax) * vx + (y - ay) * vy) / len2
    if t < 0 then t = 0 elseif t > 1 then t = 1 end
  end
  local dx, dy = ax + t * vx - x, ay + t * vy - y
  return dx * dx + dy * dy
end

function reward_function(params)
  if params.is_offtrack or not params.all_wheels_on_track then
    return 1e-3
  end
  local half_width = 0.5 * params.track_width
  local line = params.racing_line
  if line ~= source then prepare(line, params.racing_line_speed) end
  if n < 2 then
    local centred = math.max(0, 1 - params.distance_from_center / half_width)
    return 1e-3 + centred * centred
  end
  local x, y = params.x, params.y
  if params.steps <= 1 then last = 0 end
  local i = nearest(x, y, last)
  last = i
  local d = math.sqrt(math.min(segment_distance((i - 2) % n + 1, i, x, y),
                               segment_distance(i, i % n + 1, x, y)))
  local on_line = math.max(0, 1 - d / half_width)
  local speed_match = math.max(0, 1 - math.abs(params.speed - vs[i]) / 2)
  return 1e-3 + on_line * on_line * speed_match
end
