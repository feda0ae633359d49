/* cmd_worker.c -- `chicane worker`: a simulation worker process for distributed training. */
#include "cli.h"
#include "commands.h"
#include "worker.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static const char worker_usage[] =
    "usage: chicane worker --buffer redis://HOST:PORT --storage WHERE --model NAME [options]\n"
    "\n"
    "Run a simulation worker for a model that a trainer (`chicane train SCRIPT --buffer ...`)\n"
    "is training, on this or any other machine. The worker reads the model's setup (tracks,\n"
    "reward, action space, network) from storage, waits for the trainer to announce a policy\n"
    "in the buffer, drives episodes with it and pushes their segments to the buffer, and\n"
    "loads every new policy version the trainer announces. It leaves when training ends.\n"
    "\n"
    "options:\n"
    "  --buffer URL       redis://[:password@]host:port[/db]: the trainer's buffer (required)\n"
    "  --storage WHERE    s3://bucket[/prefix] or a directory: the trainer's storage (required)\n"
    "  --model NAME       the model being trained (required)\n"
    "  --track NAME       drive only this one of the model's tracks\n"
    "  --threads N        simulation threads in this process (default 1)\n"
    "  --id N             worker id, unique among the model's workers (default: from host, pid)\n"
    "  --wait S           seconds to wait for the trainer's first announcement (default 120)\n"
    "  --quiet            no log lines about policy versions\n"
    "  --parent PID       leave when process PID (the trainer that started this worker) ends\n"
    "  --help             this text\n"
    "\n"
    "Storage credentials for s3:// come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,\n"
    "AWS_REGION and CHICANE_S3_ENDPOINT (or AWS_ENDPOINT_URL) for S3-compatible servers.\n";

static void ch__on_signal(int sig) {
  (void)sig;
  ch_worker_request_stop();
}

static int ch__parse(int argc, char **argv, ch_worker_options *o, long *parent) {
  static const struct option opts[] = {{"buffer", required_argument, NULL, 'b'},
                                       {"storage", required_argument, NULL, 's'},
                                       {"model", required_argument, NULL, 'm'},
                                       {"track", required_argument, NULL, 't'},
                                       {"threads", required_argument, NULL, 'j'},
                                       {"id", required_argument, NULL, 'i'},
                                       {"wait", required_argument, NULL, 'w'},
                                       {"quiet", no_argument, NULL, 'q'},
                                       {"parent", required_argument, NULL, 'p'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'b':
      o->buffer = optarg;
      break;
    case 's':
      o->storage = optarg;
      break;
    case 'm':
      o->model = optarg;
      break;
    case 't':
      o->track = optarg;
      break;
    case 'j':
      o->threads = atoi(optarg);
      break;
    case 'i':
      o->id = (uint32_t)strtoul(optarg, NULL, 10);
      break;
    case 'w':
      o->wait_seconds = strtod(optarg, NULL);
      break;
    case 'q':
      o->quiet = 1;
      break;
    case 'p':
      *parent = strtol(optarg, NULL, 10);
      break;
    case 'h':
      fputs(worker_usage, stdout);
      return -1;
    default:
      return ch_cli_usage_error("worker", "unknown option");
    }
  }
  if (optind != argc) return ch_cli_usage_error("worker", "takes no arguments");
  if (!o->buffer || !o->storage || !o->model)
    return ch_cli_usage_error("worker", "needs --buffer, --storage and --model");
  if (o->threads < 0 || o->threads > 64)
    return ch_cli_usage_error("worker", "--threads must be 1..64");
  return 0;
}

const char ch_cmd_worker_summary[] =
    "worker --buffer URL --storage WHERE --model NAME\tsimulate for a trainer on any machine";

int ch_cmd_worker(int argc, char **argv) {
  ch_worker_options o;
  memset(&o, 0, sizeof o);
  long parent = 0;
  int rc = ch__parse(argc, argv, &o, &parent);
  if (rc) return rc < 0 ? 0 : rc;
  signal(SIGTERM, ch__on_signal);
  signal(SIGINT, ch__on_signal);
  /* Started by a trainer: its death (even SIGKILL) stops this worker cleanly, via SIGTERM. */
  if (parent > 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if ((long)getppid() != parent)
      return ch_cli_fail("worker: the trainer that started it is gone");
  }
  ch_error err = {0, ""};
  rc = ch_worker_run(&o, &err);
  return rc == CH_OK ? 0 : ch_cli_fail(err.message);
}
