/* cmd_bench.c -- `chicane bench NAME`: runs one of the benchmarks of bench.h, which print JSON. */
#include "bench.h"
#include "cli.h"

#include <stdio.h>
#include <string.h>

/* Benchmarks other files may not provide yet: weak, so a missing one is a NULL entry. */
#pragma weak ch_bench_train
#pragma weak ch_bench_buffer

typedef struct ch__bench {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} ch__bench;

static const ch__bench ch__benches[] = {
    {"env", ch_bench_env, "env steps/s per sensor and race type, Lua reward cost, 2-core scaling"},
    {"train", ch_bench_train, "end-to-end training: env steps/s through rollout and update"},
    {"buffer", ch_bench_buffer,
     "experience buffer throughput and rollout env steps/s, memory vs redis"},
};

#define CH__NBENCH (sizeof ch__benches / sizeof ch__benches[0])

const char ch_cmd_bench_summary[] = "bench NAME\tmeasure speed (env, ...) and print JSON";

static int ch__usage(FILE *out, int status) {
  fputs("usage: chicane bench NAME [options]\n"
        "\n"
        "Run a benchmark and print its results as one JSON object. Not a test: nothing fails\n"
        "when a target is missed; the JSON says whether each target was met.\n"
        "\n"
        "benchmarks:\n",
        out);
  for (size_t i = 0; i < CH__NBENCH; i++)
    if (ch__benches[i].run)
      fprintf(out, "  %-8s %s\n", ch__benches[i].name, ch__benches[i].summary);
  fputs("\n`chicane bench NAME --help` lists the options of each.\n", out);
  return status;
}

int ch_cmd_bench(int argc, char **argv) {
  if (argc < 2) return ch__usage(stderr, 2);
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) return ch__usage(stdout, 0);
  for (size_t i = 0; i < CH__NBENCH; i++)
    if (ch__benches[i].run && strcmp(argv[1], ch__benches[i].name) == 0)
      return ch__benches[i].run(argc - 1, argv + 1);
  fprintf(stderr, "chicane bench: no benchmark '%s'\n\n", argv[1]);
  return ch__usage(stderr, 2);
}
