/* bench_sac.c -- SAC updates per second with 64x64 mlp networks, batch 64; prints JSON. */
#include "plugin_open.h"
#include "policy.h"
#include "rng.h"
#include "sac.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
** USAGE: bench_algo_sac [obs_size (16)] [updates (3000)] [shared (true|false, default false)]
** Not a test: nothing is asserted about time. shared true gives every network one trunk (the
** actor never uses its value head nor a critic its policy head, so separate trunks only add
** parameters that Adam and Polyak walk over).
*/

enum { D = 2, B = 64 };

static void make_net(ch_net *n, const char *json) {
  ch_error err = {0, ""};
  n->vt = test_plugin_open("network_mlp.so");
  if (n->vt->create(json, &test_host, &n->h, &err) != CH_OK) {
    fprintf(stderr, "mlp create %s: %s\n", json, err.message);
    exit(1);
  }
  n->vt->spec(n->h, &n->spec);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Seconds for `updates` updates on a fixed random batch. */
static double run(ch_sac *s, int O, int updates) {
  uint64_t rng = 1;
  float *obs = malloc(sizeof(float) * B * O * 2), act[B * D], rew[B], done[B];
  if (!obs) exit(1);
  for (int i = 0; i < B * O * 2; i++) obs[i] = (float)(2 * ch_rng_uniform(&rng) - 1);
  for (int i = 0; i < B * D; i++) act[i] = (float)ch_policy_normal(&rng);
  for (int i = 0; i < B; i++) {
    rew[i] = (float)ch_rng_uniform(&rng);
    done[i] = i % 50 == 0;
  }
  ch_error err = {0, ""};
  double t0 = 0;
  for (int u = -100; u < updates; u++) { /* 100 to warm the buffers and BLAS first */
    if (u == 0) t0 = now();
    if (ch_sac_update(s, B, obs, act, rew, obs + B * O, done, &rng, NULL, &err) != CH_OK) {
      fprintf(stderr, "sac update: %s\n", err.message);
      exit(1);
    }
  }
  double dt = now() - t0;
  free(obs);
  return dt;
}

int main(int argc, char **argv) {
  int O = argc > 1 ? atoi(argv[1]) : 16, updates = argc > 2 ? atoi(argv[2]) : 3000;
  const char *shared = argc > 3 ? argv[3] : "false";
  if (O < 1 || updates < 1 || (strcmp(shared, "true") && strcmp(shared, "false"))) {
    fprintf(stderr, "usage: %s [obs_size >= 1] [updates >= 1] [true|false]\n", argv[0]);
    return 2;
  }
  char actor_json[256], critic_json[256];
  snprintf(actor_json, sizeof actor_json,
           "{\"input_size\":%d,\"num_actions\":%d,\"head\":\"gaussian\",\"hidden\":[64,64],"
           "\"shared\":%s}",
           O, D, shared);
  snprintf(critic_json, sizeof critic_json,
           "{\"input_size\":%d,\"num_actions\":1,\"hidden\":[64,64],\"shared\":%s}", O + D, shared);
  ch_net nets[5];
  make_net(&nets[0], actor_json);
  for (int k = 1; k < 5; k++) make_net(&nets[k], critic_json);
  ch_sac_config c;
  ch_sac_config_defaults(&c, D);
  c.batch_size = B;
  ch_sac *s;
  ch_error err = {0, ""};
  if (ch_sac_create(&c, &nets[0], &nets[1], &nets[2], &nets[3], &nets[4], (uint32_t)O, &s, &err) !=
      CH_OK) {
    fprintf(stderr, "%s\n", err.message);
    return 1;
  }
  double dt = run(s, O, updates);
  printf("{\"bench\":\"sac_update\",\"obs_size\":%d,\"action_dims\":%d,\"hidden\":[64,64],"
         "\"shared\":%s,\"batch\":%d,\"updates\":%d,\"seconds\":%.4f,\"updates_per_s\":%.1f,"
         "\"transitions_per_s\":%.0f}\n",
         O, D, shared, B, updates, dt, updates / dt, updates * (double)B / dt);
  ch_sac_free(s);
  for (int k = 0; k < 5; k++) nets[k].vt->destroy(nets[k].h);
  return 0;
}
