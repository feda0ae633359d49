/* train_log.c -- what training writes beside the checkpoints: sim-traces and metrics lines. */
#include "train_log.h"

#include "simtrace.h"

#include <chicane/plugin_util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ch_train_log {
  ch_session *s;
  char model[128];
  ch_simtrace *csv;
  uint64_t *episodes; /* (worker, episode) keys of this iteration, in order of appearance */
  int n, cap;
  int64_t base;
  char *lines; /* every iteration's metrics line so far */
  size_t len;
};

static void ch__metrics_key(const ch_train_log *l, char *key, size_t cap) {
  snprintf(key, cap, "models/%s/metrics/training.jsonl", l->model);
}

/* The lines an earlier run stored, so that a resumed run adds to them. */
static int ch__read_lines(ch_train_log *l) {
  char key[256];
  void *data = NULL;
  size_t len = 0;
  ch__metrics_key(l, key, sizeof key);
  if (l->s->st->get(l->s->st_h, key, &data, &len, NULL) != CH_OK) return CH_OK; /* none yet */
  l->lines = malloc(len + 1);
  if (l->lines) {
    memcpy(l->lines, data, len);
    l->lines[len] = 0;
    l->len = len;
  }
  l->s->st->free_data(l->s->st_h, data);
  return l->lines ? CH_OK : CH_ENOMEM;
}

int ch_train_log_open(ch_session *s, const char *model, int resume, ch_train_log **out,
                      ch_error *err) {
  ch_train_log *l = calloc(1, sizeof *l);
  *out = l;
  if (!l || !(l->csv = ch_simtrace_new())) return ch_error_set(err, CH_ENOMEM, "out of memory");
  l->s = s;
  snprintf(l->model, sizeof l->model, "%s", model);
  if (resume && ch__read_lines(l) != CH_OK) return ch_error_set(err, CH_ENOMEM, "out of memory");
  return CH_OK;
}

void ch_train_log_begin(ch_train_log *l, int64_t first_episode) {
  ch_simtrace_clear(l->csv);
  l->n = 0;
  l->base = first_episode;
}

/* The number of segment s's episode in this iteration's sim-trace (< 0: out of memory). */
static int64_t ch__episode(ch_train_log *l, const ch_segment *s) {
  uint64_t key = ((uint64_t)s->worker_id << 40) ^ s->episode_id;
  for (int i = l->n - 1; i >= 0; i--)
    if (l->episodes[i] == key) return l->base + i;
  if (l->n == l->cap) {
    int cap = l->cap ? 2 * l->cap : 256;
    uint64_t *e = realloc(l->episodes, sizeof *e * (size_t)cap);
    if (!e) return -1;
    l->episodes = e;
    l->cap = cap;
  }
  l->episodes[l->n++] = key;
  return l->base + l->n - 1;
}

int ch_train_log_segment(ch_train_log *l, const ch_segment *s, int segment_steps, int continuous,
                         double track_length, double step_seconds) {
  int64_t episode = ch__episode(l, s);
  if (episode < 0) return CH_ENOMEM;
  for (uint32_t i = 0; i < s->num_steps; i++) {
    const float *tr = s->trace + (size_t)i * CH_TRACE_FLOATS;
    int32_t step = (int32_t)(s->seq * (uint32_t)segment_steps + i + 1);
    int32_t status = (int32_t)tr[CH_TRACE_STATUS];
    ch_simtrace_row r = {episode,
                         step,
                         tr[CH_TRACE_X],
                         tr[CH_TRACE_Y],
                         tr[CH_TRACE_YAW],
                         tr[CH_TRACE_STEER],
                         tr[CH_TRACE_THROTTLE],
                         continuous ? -1 : (int32_t)s->action[i],
                         s->reward[i],
                         status != CH_EPISODE_IN_PROGRESS,
                         tr[CH_TRACE_ON_TRACK] != 0,
                         tr[CH_TRACE_PROGRESS],
                         (int32_t)tr[CH_TRACE_WAYPOINT],
                         track_length,
                         step * step_seconds,
                         status,
                         0.0};
    if (ch_simtrace_add(l->csv, &r) == CH_ENOMEM) return CH_ENOMEM;
  }
  return CH_OK;
}

int ch_train_log_store(ch_train_log *l, int64_t iteration, int64_t total_episodes,
                       const char *metrics, ch_error *err) {
  char head[64], key[512];
  int n = snprintf(head, sizeof head, "{\"iteration\":%lld,\"total_episodes\":%lld%s",
                   (long long)iteration, (long long)total_episodes, metrics[1] == '}' ? "" : ",");
  size_t add = (size_t)n + strlen(metrics + 1) + 1;
  char *all = realloc(l->lines, l->len + add + 1);
  if (!all) return ch_error_set(err, CH_ENOMEM, "out of memory");
  l->lines = all;
  /* metrics is an object: its members follow ours */
  l->len += (size_t)snprintf(all + l->len, add + 1, "%s%s\n", head, metrics + 1);
  ch__metrics_key(l, key, sizeof key);
  int rc = l->s->st->put(l->s->st_h, key, all, l->len, err);
  if (rc != CH_OK) return rc;
  size_t len = 0;
  const char *csv = ch_simtrace_data(l->csv, &len);
  snprintf(key, sizeof key, "models/%s/training-simtrace/%lld-iteration.csv", l->model,
           (long long)iteration);
  return l->s->st->put(l->s->st_h, key, csv, len, err);
}

void ch_train_log_free(ch_train_log *l) {
  if (!l) return;
  ch_simtrace_free(l->csv);
  free(l->episodes);
  free(l->lines);
  free(l);
}
