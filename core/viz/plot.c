/* plot.c -- `chicane plot`'s pictures of one model: training charts and the track map. */
#include "viz.h"

#include "paths.h"

#include <chicane/plugin_util.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Growable columns of per-iteration (or per-evaluation) numbers. */
typedef struct ch__columns {
  double *x, *a, *b, *c;
  int n, cap, oom;
} ch__columns;

static void ch__push(ch__columns *t, double x, double a, double b, double c) {
  if (t->n == t->cap) {
    int cap = t->cap ? 2 * t->cap : 64;
    double **cols[] = {&t->x, &t->a, &t->b, &t->c};
    for (int k = 0; k < 4; k++) {
      double *p = realloc(*cols[k], sizeof(double) * (size_t)cap);
      if (!p) {
        t->oom = 1;
        return;
      }
      *cols[k] = p;
    }
    t->cap = cap;
  }
  t->x[t->n] = x;
  t->a[t->n] = a;
  t->b[t->n] = b;
  t->c[t->n++] = c;
}

static void ch__columns_free(ch__columns *t) {
  free(t->x);
  free(t->a);
  free(t->b);
  free(t->c);
}

static double ch__metric(const cJSON *m, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, key);
  return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* Per checkpoint: mean reward, mean progress (%), completion rate (%). */
static int ch__add_checkpoint(const ch_checkpoint_info *c, void *user) {
  cJSON *m = cJSON_Parse(c->metrics_json ? c->metrics_json : "");
  ch__push(user, (double)c->iteration, ch__metric(m, "mean_reward"), ch__metric(m, "mean_progress"),
           100 * ch__metric(m, "completion_rate"));
  cJSON_Delete(m);
  return 0;
}

/* What the plot takes from the evaluations: progress and laps per evaluation, the last one. */
typedef struct ch__evals {
  ch__columns points; /* iteration, mean trial progress, % of trials completed */
  int64_t last_id;
  char *last_simtrace, *last_track;
  int last_laps, last_trials;
  double last_best;
} ch__evals;

static int ch__add_evaluation(const ch_evaluation_info *e, void *user) {
  ch__evals *v = user;
  double progress = 0;
  for (int64_t i = 0; i < e->num_trial_info; i++) progress += e->trial_info[i].progress;
  progress = e->num_trial_info ? progress / e->num_trial_info : NAN;
  double laps = e->trials ? 100.0 * e->completed_laps / e->trials : NAN;
  ch__push(&v->points, (double)e->iteration, progress, laps, 0);
  if (e->id >= v->last_id && e->simtrace_key) {
    free(v->last_simtrace);
    free(v->last_track);
    v->last_id = e->id;
    v->last_simtrace = strdup(e->simtrace_key);
    v->last_track = e->track ? strdup(e->track) : NULL;
    v->last_laps = (int)e->completed_laps;
    v->last_trials = (int)e->trials;
    v->last_best = e->best_lap_time;
  }
  return 0;
}

static int ch__charts(const char *model, const ch__columns *it, const ch__columns *ev,
                      ch_viz_plot_result *out, ch_error *err) {
  char title[512];
  snprintf(title, sizeof title, "%s: reward and progress per iteration", model);
  ch_viz_series s[3] = {{"mean reward (training)", it->x, it->a, it->n, 0x2ca02c, 0, it->n < 3},
                        {"mean progress % (training)", it->x, it->b, it->n, 0x1f77b4, 1, it->n < 3},
                        {"mean progress % (evaluation)", ev->x, ev->a, ev->n, 0xd62728, 1, 1}};
  ch_viz_chart c = {title, "iteration", "reward", "progress (%)", 0, 0, 0, 100, 0, 0};
  int rc = ch_viz_chart_png(&c, s, ev->n ? 3 : 2, out->reward_png, err);
  snprintf(title, sizeof title, "%s: laps completed per iteration", model);
  ch_viz_series l[2] = {
      {"episodes completing the lap % (training)", it->x, it->c, it->n, 0x1f77b4, 0, it->n < 3},
      {"trials completing the lap % (evaluation)", ev->x, ev->b, ev->n, 0xd62728, 0, 1}};
  ch_viz_chart cc = {title, "iteration", "completion rate (%)", NULL, 0, 100, 0, 0, 0, 0};
  if (rc == CH_OK) rc = ch_viz_chart_png(&cc, l, ev->n ? 2 : 1, out->completion_png, err);
  return rc;
}

static int ch__load_trace(ch_session *s, const char *key, ch_simtrace_row **rows, size_t *n,
                          ch_error *err) {
  void *data = NULL;
  size_t len = 0;
  int rc = s->st->get(s->st_h, key, &data, &len, err);
  if (rc != CH_OK) return rc;
  rc = ch_simtrace_parse(data, len, rows, n, err);
  s->st->free_data(s->st_h, data);
  if (rc != CH_OK && err) {
    char msg[CH_ERROR_MESSAGE_MAX];
    snprintf(msg, sizeof msg, "%s", err->message);
    ch_error_set(err, rc, "%s: %s", key, msg);
  }
  return rc;
}

static int ch__map(ch_session *s, const char *model, const char *track_name, const ch__evals *ev,
                   ch_viz_plot_result *out, ch_error *err) {
  char path[CH_PATH_MAX], title[512];
  ch_track *t = NULL;
  ch_simtrace_row *rows = NULL;
  size_t n = 0;
  int rc = ch_resolve_track(track_name, path, sizeof path, err);
  if (rc == CH_OK) rc = ch_track_load(path, &t, err);
  if (rc == CH_OK && ev->last_simtrace) rc = ch__load_trace(s, ev->last_simtrace, &rows, &n, err);
  ch_car_limits car;
  ch_car_limits_default(&car);
  ch_racing_line *line = NULL;
  if (rc == CH_OK && ch_track_racing_line(t, &car, &line, NULL) != CH_OK) line = NULL;
  if (ev->last_simtrace && ev->last_best > 0)
    snprintf(title, sizeof title, "%s on %s: last evaluation %d/%d laps, best %.2f s", model,
             track_name, ev->last_laps, ev->last_trials, ev->last_best);
  else if (ev->last_simtrace)
    snprintf(title, sizeof title, "%s on %s: last evaluation %d/%d laps", model, track_name,
             ev->last_laps, ev->last_trials);
  else
    snprintf(title, sizeof title, "%s on %s (not evaluated yet)", model, track_name);
  ch_viz_map o = {title, 0, line};
  if (rc == CH_OK) rc = ch_viz_track_png(t, rows, n, &o, out->track_png, err);
  for (size_t i = 0; i < n; i++)
    if (i == 0 || rows[i].episode != rows[i - 1].episode) out->laps_drawn++;
  ch_racing_line_free(line);
  ch_track_free(t);
  free(rows);
  return rc;
}

static int ch__mkdir(const char *dir, ch_error *err) {
  char p[CH_PATH_MAX];
  snprintf(p, sizeof p, "%s", dir);
  for (char *c = p + 1;; c++) {
    int last = *c == '\0';
    if (*c != '/' && !last) continue;
    *c = '\0';
    if (mkdir(p, 0777) != 0 && errno != EEXIST)
      return ch_error_set(err, CH_EIO, "%s: cannot create the directory: %s", p, strerror(errno));
    if (last) return CH_OK;
    *c = '/';
  }
}

int ch_viz_plot_model(ch_session *s, const char *model, const char *dir, ch_viz_plot_result *out,
                      ch_error *err) {
  memset(out, 0, sizeof *out);
  ch_model_info m;
  int rc = ch_catalog_get_model(s->cat, model, &m, err);
  if (rc != CH_OK) return rc;
  snprintf(out->reward_png, sizeof out->reward_png, "%s/%s-reward.png", dir, model);
  snprintf(out->completion_png, sizeof out->completion_png, "%s/%s-completion.png", dir, model);
  snprintf(out->track_png, sizeof out->track_png, "%s/%s-track.png", dir, model);
  ch__columns it = {0};
  ch__evals ev;
  memset(&ev, 0, sizeof ev);
  ev.last_id = -1;
  rc = ch__mkdir(dir, err);
  if (rc == CH_OK) rc = ch_catalog_list_checkpoints(s->cat, model, ch__add_checkpoint, &it, err);
  if (rc == CH_OK) rc = ch_catalog_list_evaluations(s->cat, model, ch__add_evaluation, &ev, err);
  if (rc == CH_OK && (it.oom || ev.points.oom)) rc = ch_error_set(err, CH_ENOMEM, "out of memory");
  if (rc == CH_OK) rc = ch__charts(model, &it, &ev.points, out, err);
  const char *track = ev.last_track ? ev.last_track : m.track ? m.track : "";
  if (rc == CH_OK) rc = ch__map(s, model, track, &ev, out, err);
  out->iterations = it.n;
  out->evaluations = ev.points.n;
  ch__columns_free(&it);
  ch__columns_free(&ev.points);
  free(ev.last_simtrace);
  free(ev.last_track);
  ch_model_info_free(&m);
  return rc;
}
