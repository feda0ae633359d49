-- tour.lua -- a tour of the chicane Lua module: `chicane run scripts/repl/tour.lua [OUTDIR]`,
-- or paste its lines into `chicane repl` one at a time to see each value printed.
local out = arg and arg[1] or "."

-- Tracks: the ones shipped, then one loaded (a name, or the path of a .track file).
print(chicane.repr(chicane.tracks()))
local track = chicane.track("bayside")
print(track)

-- Drive a lap by hand: steer towards the centre line 0.6 m ahead of the car, at 1.5 m/s,
-- adding up what DeepRacer's first example reward function says of each step.
local env <close> = chicane.env{track = track}
local reward = chicane.reward("rewards/follow_center_line.lua", track)
local obs, params = env:reset{}
local total, status = 0, "in_progress"
while status == "in_progress" do
  local here = track:project(params.x, params.y)
  local tx, ty = track:point_at(here.s + 0.6)
  local off = (math.deg(math.atan(ty - params.y, tx - params.x)) - params.heading + 540) % 360 - 180
  obs, params, status = env:step(math.max(-30, math.min(30, 2 * off)), 1.5)
  total = total + reward(params)
end
print(string.format("%s after %d steps (%.1f s), progress %.1f%%, total reward %.1f", status,
                    params.steps, params.steps / 15, params.progress, total))

-- What a fast lap looks like: the racing line and its speed profile.
local line = track:racing_line()
print(string.format("racing line %.2f m: a flying lap in %.2f s, %.2f s from rest", line.length,
                    line.lap_time, line.standing_lap_time))

-- What the front camera sees 10% into the lap, and a map of the track.
print(chicane.render{track = track, sensor = "camera", progress = 10, out = out .. "/camera.png"})
print(chicane.render{track = track, sensor = "top", out = out .. "/track.png"})

-- The models trained so far (chicane train scripts/default.lua makes one).
for _, m in ipairs(chicane.models()) do
  print(chicane.repr(m))
end
