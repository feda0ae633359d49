-- make_tracks.lua -- generates the project's own tracks (tracks/*.track) from arcs and straights.
--
-- Usage: lua5.4 scripts/tools/make_tracks.lua [output-dir]     (default: tracks)
--
-- Each track is a list of pieces driven from the start line: straights {"S", length} and arcs
-- {"A", radius, degrees} (+ = left). Up to two straights are {"F", guess}: their lengths are
-- solved so that the loop closes. The curvature profile is smoothed with a moving average
-- (so corners ease in as on a real track, like a short clothoid), integrated into a centre
-- line, and resampled at equal arc-length spacing. A track with `loop = false` is open (a
-- straight): it is not closed and keeps its last point. A track with `narrow = {first, last,
-- width, taper}` narrows to `width` over pieces first..last, easing in and out over `taper`
-- metres on either side, and is written with explicit border points. The output is
-- deterministic.

local PI = math.pi

local tracks = {
  {
    name = "bayside",
    comment = "the default track: a 2018-style loop with a chicane on the back straight",
    width = 0.76,
    spacing = 0.12,
    smooth = 0.4,
    pieces = {
      { "S", 2.45 },      -- start line to the end of the main straight
      { "A", 0.8, 90 },   -- sharp left, up the east side
      { "F", 0.6 },       -- east straight (solved)
      { "A", 1.2, 90 },   -- gentle left onto the back straight
      { "S", 0.5 },
      { "A", 1.0, 45 },   -- chicane: in,
      { "A", 0.9, -90 },  -- across,
      { "A", 1.4, 45 },   -- and out
      { "F", 0.8 },       -- back straight (solved)
      { "A", 1.3, 90 },   -- long gentle left down the west side
      { "S", 0.8 },
      { "A", 0.85, 90 },  -- sharp left onto the main straight
      { "S", 2.45 },      -- main straight up to the start line
    },
  },
  {
    name = "oval",
    comment = "a plain oval for first experiments",
    width = 1.067,
    spacing = 0.12,
    smooth = 0.4,
    pieces = {
      { "S", 2.0 },
      { "A", 1.5, 180 },
      { "S", 4.0 },
      { "A", 1.5, 180 },
      { "S", 2.0 },
    },
  },
  {
    name = "straight",
    comment = "a straight for acceleration and braking checks (not a loop)",
    loop = false,
    width = 1.067,
    spacing = 0.12,
    smooth = 0.4,
    pieces = {
      { "S", 8.0 },
    },
  },
  {
    name = "narrows",
    comment = "a 2019-style loop whose back section narrows to 0.9 m through an S-kink",
    width = 1.067,
    spacing = 0.12,
    smooth = 0.4,
    narrow = { first = 5, last = 8, width = 0.9, taper = 0.8 },
    pieces = {
      { "S", 2.0 },       -- start line to the first corner
      { "A", 0.9, 90 },   -- sharp left, up the east side
      { "F", 1.0 },       -- east straight (solved)
      { "A", 1.5, 90 },   -- wide left onto the back straight
      { "S", 1.0 },       -- the narrows begin
      { "A", 1.0, -45 },  -- kink right,
      { "A", 1.0, 45 },   -- and back left
      { "F", 0.7 },       -- back straight (solved), the narrows end
      { "A", 1.2, 90 },   -- left down the west side
      { "S", 2.5 },
      { "A", 0.9, 90 },   -- sharp left onto the main straight
      { "S", 2.0 },       -- main straight up to the start line
    },
  },
}

-- Piece lengths and curvatures, with free lengths taken from `free`.
local function profile(pieces, free)
  local out, f = {}, 0
  for _, p in ipairs(pieces) do
    if p[1] == "S" then
      out[#out + 1] = { len = p[2], k = 0 }
    elseif p[1] == "F" then
      f = f + 1
      out[#out + 1] = { len = free[f], k = 0 }
    else
      local r, deg = p[2], p[3]
      local sign = deg >= 0 and 1 or -1
      out[#out + 1] = { len = r * math.abs(deg) * PI / 180, k = sign / r }
    end
  end
  return out
end

-- Curvature at `n` equal steps over the track (each the exact mean over its cell, so the
-- shape moves smoothly with the piece lengths), smoothed by a moving average: circular for a
-- loop, with the end values repeated past the ends of an open track.
local function sampled_curvature(prof, n, smooth, loop)
  local total = 0
  for _, p in ipairs(prof) do total = total + p.len end
  local ds, raw, piece, start = total / n, {}, 1, 0
  for i = 1, n do
    local a, b, acc = (i - 1) * ds, i * ds, 0
    while true do
      local e = start + prof[piece].len
      acc = acc + prof[piece].k * (math.min(b, e) - math.max(a, start))
      if e >= b or piece == #prof then break end
      start, piece = e, piece + 1
    end
    raw[i] = acc / ds
  end
  local half = math.max(0, math.floor(smooth / ds / 2))
  local function at(j)
    if loop then return raw[(j - 1) % n + 1] end
    return raw[math.min(n, math.max(1, j))]
  end
  local k, sum = {}, 0
  for j = -half, half do sum = sum + at(j) end
  for i = 1, n do
    k[i] = sum / (2 * half + 1)
    sum = sum - at(i - half) + at(i + half + 1)
  end
  return k, total, ds
end

-- Integrate heading and position; returns points (n + 1 of them, the last closes the loop).
local function integrate(k, ds)
  local x, y, th, pts = 0, 0, 0, { { 0, 0 } }
  for i = 1, #k do
    local mid = th + 0.5 * k[i] * ds
    x, y, th = x + math.cos(mid) * ds, y + math.sin(mid) * ds, th + k[i] * ds
    pts[#pts + 1] = { x, y }
  end
  return pts, th
end

local FINE = 40 -- integration steps per output point

local function build(tr, free)
  local prof = profile(tr.pieces, free)
  local total = 0
  for _, p in ipairs(prof) do total = total + p.len end
  local n = math.floor(total / tr.spacing + 0.5)
  local k, _, ds = sampled_curvature(prof, n * FINE, tr.smooth, tr.loop ~= false)
  local pts, turn = integrate(k, ds)
  local gap = { pts[#pts][1], pts[#pts][2] }
  return { pts = pts, k = k, ds = ds, n = n, length = total, turn = turn, gap = gap }
end

-- Newton's method on the free straights so that the end meets the start.
local function solve(tr)
  local free = {}
  for _, p in ipairs(tr.pieces) do
    if p[1] == "F" then free[#free + 1] = p[2] end
  end
  assert(#free == 0 or #free == 2, tr.name .. ": use zero or two free straights")
  for _ = 1, 30 do
    local b = build(tr, free)
    if #free == 0 or math.abs(b.gap[1]) + math.abs(b.gap[2]) < 1e-9 then return b, free end
    local h, J = 1e-6, {}
    for j = 1, 2 do
      local f2 = { free[1], free[2] }
      f2[j] = f2[j] + h
      local g = build(tr, f2).gap
      J[j] = { (g[1] - b.gap[1]) / h, (g[2] - b.gap[2]) / h }
    end
    local det = J[1][1] * J[2][2] - J[2][1] * J[1][2]
    assert(math.abs(det) > 1e-12, tr.name .. ": free straights are parallel")
    free[1] = free[1] - (b.gap[1] * J[2][2] - b.gap[2] * J[2][1]) / det
    free[2] = free[2] - (J[1][1] * b.gap[2] - J[1][2] * b.gap[1]) / det
  end
  error(tr.name .. ": the loop does not close")
end

local function check(tr, b, free)
  if tr.loop == false then return end
  assert(math.abs(b.turn - 2 * PI) < 1e-9, tr.name .. ": pieces must turn +360 degrees")
  assert(math.abs(b.gap[1]) + math.abs(b.gap[2]) < 1e-6, tr.name .. ": loop does not close")
  for i, f in ipairs(free) do
    assert(f > 0.05, string.format("%s: free straight %d solved to %.3f m", tr.name, i, f))
  end
end

-- Arc positions where the pieces start, and the total.
local function piece_starts(prof)
  local starts, s = {}, 0
  for i, p in ipairs(prof) do
    starts[i] = s
    s = s + p.len
  end
  return starts, s
end

-- Width at arc position s: the track's width, eased (by a cosine) down to the narrow width
-- over `taper` metres before the narrow pieces and back up over `taper` metres after them.
local function width_at(tr, prof, s)
  local nw = tr.narrow
  if not nw then return tr.width end
  local starts = piece_starts(prof)
  local a = starts[nw.first]
  local b = starts[nw.last] + prof[nw.last].len
  local f
  if s >= a and s <= b then
    f = 1
  elseif s < a and s > a - nw.taper then
    f = 0.5 - 0.5 * math.cos(PI * (s - (a - nw.taper)) / nw.taper)
  elseif s > b and s < b + nw.taper then
    f = 0.5 + 0.5 * math.cos(PI * (s - b) / nw.taper)
  else
    f = 0
  end
  return tr.width + (nw.width - tr.width) * f
end

-- Output points (every FINE-th integration point; a loop does not repeat its first point, an
-- open track keeps its last) and borders.
local function resample(tr, b, prof)
  local out, m = {}, b.n * FINE
  local last = tr.loop == false and b.n or b.n - 1
  for i = 0, last do
    local j = i * FINE + 1
    local p, q, r
    if tr.loop == false then
      p, q, r = b.pts[j], b.pts[math.min(j + 1, m + 1)], b.pts[math.max(j - 1, 1)]
    else
      p, q, r = b.pts[j], b.pts[(j + 1 - 1) % m + 1], b.pts[(j - 2) % m + 1]
    end
    local tx, ty = q[1] - r[1], q[2] - r[2]
    local tl = math.sqrt(tx * tx + ty * ty)
    local nx, ny = -ty / tl, tx / tl
    local hw = width_at(tr, prof, i * b.length / b.n) / 2
    out[#out + 1] = { x = p[1], y = p[2], lx = p[1] + nx * hw, ly = p[2] + ny * hw,
                      rx = p[1] - nx * hw, ry = p[2] - ny * hw }
  end
  return out
end

-- Shift so the borders' bounding box starts at (0.5, 0.5), like a mat on a floor.
local function place(pts)
  local x0, y0, x1, y1 = math.huge, math.huge, -math.huge, -math.huge
  for _, p in ipairs(pts) do
    x0, x1 = math.min(x0, p.lx, p.rx), math.max(x1, p.lx, p.rx)
    y0, y1 = math.min(y0, p.ly, p.ry), math.max(y1, p.ly, p.ry)
  end
  for _, p in ipairs(pts) do
    p.x, p.y = p.x - x0 + 0.5, p.y - y0 + 0.5
    p.lx, p.ly, p.rx, p.ry = p.lx - x0 + 0.5, p.ly - y0 + 0.5, p.rx - x0 + 0.5, p.ry - y0 + 0.5
  end
  return x1 - x0, y1 - y0
end

local function max_abs(k)
  local m = 0
  for _, v in ipairs(k) do m = math.max(m, math.abs(v)) end
  return m
end

-- Length of the polyline through the output points (closed for a loop), as a reader of the
-- file sees it.
local function polyline_length(tr, pts)
  local len = 0
  for i = 1, tr.loop == false and #pts - 1 or #pts do
    local p, q = pts[i], pts[i % #pts + 1]
    len = len + math.sqrt((q.x - p.x) ^ 2 + (q.y - p.y) ^ 2)
  end
  return len
end

local function describe_width(tr)
  if not tr.narrow then return string.format("width %.3f m", tr.width) end
  return string.format("width %.3f m narrowing to %.3f m", tr.width, tr.narrow.width)
end

local function describe_shape(tr, b)
  if tr.loop == false then return "straight, not a loop" end
  return string.format("min centre radius %.2f m", 1 / max_abs(b.k))
end

local function write(dir, tr, b, pts, w, h)
  local path = dir .. "/" .. tr.name .. ".track"
  local f = assert(io.open(path, "w"))
  f:write(string.format("# %s.track -- %s.\n", tr.name, tr.comment))
  f:write("# Generated by scripts/tools/make_tracks.lua; edit that script, not this file.\n")
  f:write(string.format("# centre length %.3f m, %s, %s,\n", polyline_length(tr, pts),
    describe_width(tr), describe_shape(tr, b)))
  f:write(string.format("# %d points, footprint %.2f x %.2f m, %s.\n", #pts, w, h,
    tr.loop == false and "driven from its first point to its last" or "driven counter-clockwise"))
  f:write("chicane-track 1\n")
  f:write("name " .. tr.name .. "\n")
  f:write(tr.loop == false and "loop no\n" or "loop yes\n")
  if tr.narrow then
    f:write("# x y left-x left-y right-x right-y\n")
    for _, p in ipairs(pts) do
      f:write(string.format("%.4f %.4f %.4f %.4f %.4f %.4f\n", p.x, p.y, p.lx, p.ly, p.rx, p.ry))
    end
  else
    f:write(string.format("width %.3f\n", tr.width))
    for _, p in ipairs(pts) do f:write(string.format("%.4f %.4f\n", p.x, p.y)) end
  end
  f:close()
  return path
end

local dir = arg[1] or "tracks"
for _, tr in ipairs(tracks) do
  local b, free = solve(tr)
  check(tr, b, free)
  local pts = resample(tr, b, profile(tr.pieces, free))
  local w, h = place(pts)
  local path = write(dir, tr, b, pts, w, h)
  local fl = {}
  for i, f in ipairs(free) do fl[i] = string.format("%.3f", f) end
  print(string.format("%s: length %.3f m, %s, %s, %d points, %.2f x %.2f m, free straights {%s}",
    path, polyline_length(tr, pts), describe_width(tr), describe_shape(tr, b), #pts, w, h,
    table.concat(fl, ", ")))
end
