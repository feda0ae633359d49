/* bench.h -- the benchmarks of `chicane bench`: each prints one JSON object of measurements. */
#ifndef CHICANE_BENCH_H
#define CHICANE_BENCH_H

/*
** A benchmark is a file bench_NAME.c in core/cli defining int ch_bench_NAME(int argc, char
** **argv): argv[0] is "NAME", the options follow; it prints JSON to stdout and returns the exit
** status. cmd_bench.c lists the ones declared here; those not linked in are left out, so a new
** file needs no change elsewhere once its name is declared below.
*/
int ch_bench_env(int argc, char **argv);    /* bench_env.c: the env plugin's speed */
int ch_bench_train(int argc, char **argv);  /* bench_train.c: end-to-end training throughput */
int ch_bench_buffer(int argc, char **argv); /* bench_buffer.c: experience buffer throughput */

#endif
