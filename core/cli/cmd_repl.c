/* cmd_repl.c -- `chicane repl`: an interactive Lua prompt with the chicane module (readline). */
#include "chicane_lua.h"
#include "cli.h"
#include "commands.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

static const char repl_usage[] =
    "usage: chicane repl [options]\n"
    "\n"
    "An interactive Lua 5.4 prompt with every standard library and the chicane module loaded\n"
    "(the global `chicane`): load tracks, create an env and step it, call reward functions,\n"
    "load and drive models, look at the catalog. Expressions print their values readably\n"
    "(a leading `=` is optional); an unfinished statement continues on a `>>` line.\n"
    "\n"
    "  :help          the API, one line per function\n"
    "  :help NAME     one function (`:help track`, `:help env:step`)\n"
    "  :quit          leave (so does end of input, Ctrl-D)\n"
    "\n"
    "On a terminal: line editing and history (HOME/.chicane_history with --home or\n"
    "$CHICANE_HOME, else ~/.chicane_history), TAB completes names (`chicane.<TAB><TAB>` lists\n"
    "the API), Ctrl-C abandons the line or interrupts running Lua code. Otherwise lines are\n"
    "read from standard input without prompts, so input can be piped.\n"
    "\n"
    "options:\n" CH_CLI_COMMON_HELP;

#define CH__HISTORY_LINES 1000

/* readline's callbacks and signal handlers take no user pointer: what they need is here. */
static lua_State *ch__L;
static volatile sig_atomic_t ch__running;     /* Lua code is running */
static volatile sig_atomic_t ch__interrupted; /* Ctrl-C while reading */
static int ch__wake[2] = {-1, -1};            /* the handler writes here to end a wait */

typedef struct ch__repl {
  lua_State *L;
  int tty;
  char history[1100]; /* "" for none */
  char *chunk;        /* the statement being read, lines joined by "\n" */
  size_t len, cap;
} ch__repl;

/* ------------------------------------------------------------------------ signals */

static void ch__stop_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted!");
}

/* While Lua runs, Ctrl-C sets a hook that raises an error at the next instruction (as lua.c
** does); while reading, it abandons the line: the read in ch__getc fails and sees the flag. */
static void ch__on_sigint(int sig) {
  (void)sig;
  if (ch__running) {
    lua_sethook(ch__L, ch__stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
    return;
  }
  int saved = errno;
  ch__interrupted = 1;
  if (ch__wake[1] >= 0 && write(ch__wake[1], "", 1) < 0) {
    /* the pipe is full, so a wake-up is already pending */
  }
  errno = saved;
}

static void ch__drain_wake(void) {
  char buf[64];
  while (ch__wake[0] >= 0 && read(ch__wake[0], buf, sizeof buf) > 0) continue;
}

static void ch__signal(void (*fn)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = fn;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL); /* no SA_RESTART: the terminal read must stop */
}

/* readline's key reader, ending the line on Ctrl-C. It waits on the terminal and on the wake
** pipe, so that a Ctrl-C is seen however close it comes to the start of the wait. */
static int ch__getc(FILE *in) {
  for (;;) {
    if (ch__interrupted) {
      ch__drain_wake();
      rl_point = rl_end; /* the "^C" goes after what was typed */
      rl_redisplay();
      fputs("^C", rl_outstream);
      return '\n';
    }
    struct pollfd p[2] = {{fileno(in), POLLIN, 0}, {ch__wake[0], POLLIN, 0}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return EOF;
    }
    if (p[1].revents) ch__drain_wake();
    if (!p[0].revents) continue;
    unsigned char c;
    ssize_t n = read(fileno(in), &c, 1);
    if (n == 1) return c;
    if (n == 0 || errno != EINTR) return EOF;
  }
}

/* ------------------------------------------------------------------------ completion */

typedef struct ch__matches {
  char **v;
  size_t n, cap, next;
} ch__matches;

static ch__matches ch__found;

static void ch__collect(const char *candidate, void *user) {
  ch__matches *m = user;
  if (m->n == m->cap) {
    size_t cap = m->cap ? 2 * m->cap : 32;
    char **v = realloc(m->v, cap * sizeof *v);
    if (!v) return;
    m->v = v;
    m->cap = cap;
  }
  char *s = strdup(candidate);
  if (s) m->v[m->n++] = s;
}

/* readline takes each string it is given and frees it. */
static char *ch__generator(const char *text, int state) {
  ch__matches *m = &ch__found;
  if (state == 0) {
    while (m->next < m->n) free(m->v[m->next++]);
    m->n = m->next = 0;
    ch_lua_complete(ch__L, text, ch__collect, m);
  }
  return m->next < m->n ? m->v[m->next++] : NULL;
}

static char **ch__complete(const char *text, int start, int end) {
  (void)start;
  (void)end;
  rl_attempted_completion_over = 1; /* never fall back to file names */
  rl_completion_append_character = '\0';
  return rl_completion_matches(text, ch__generator);
}

/* List matches by their last name ("track(" rather than "chicane.track("). */
static void ch__display(char **matches, int num, int max) {
  (void)max;
  char **shown = malloc(((size_t)num + 2) * sizeof *shown);
  if (!shown) return;
  int width = 0;
  shown[0] = matches[0];
  for (int i = 1; i <= num; i++) {
    const char *s = matches[i], *dot = strrchr(s, '.'), *colon = strrchr(s, ':');
    const char *sep = dot > colon ? dot : colon;
    /* a table's trailing "." is its suffix, not a separator */
    if (sep && sep[1] == '\0' && sep > s) {
      const char *p = sep - 1;
      while (p > s && *p != '.' && *p != ':') p--;
      sep = (*p == '.' || *p == ':') ? p : NULL;
    }
    shown[i] = (char *)(sep ? sep + 1 : s);
    int w = (int)strlen(shown[i]);
    width = w > width ? w : width;
  }
  shown[num + 1] = NULL;
  rl_display_match_list(shown, num, width);
  rl_forced_update_display();
  free(shown);
}

/* ------------------------------------------------------------------------ reading */

static void ch__history_path(ch__repl *r, const ch_cli *cli, int home_given) {
  const char *env = getenv("CHICANE_HOME"), *home = getenv("HOME");
  r->history[0] = '\0';
  if (home_given || (env && *env))
    snprintf(r->history, sizeof r->history, "%s/.chicane_history", cli->home);
  else if (home && *home)
    snprintf(r->history, sizeof r->history, "%s/.chicane_history", home);
}

static void ch__start_terminal(ch__repl *r) {
  rl_readline_name = "chicane";
  rl_attempted_completion_function = ch__complete;
  rl_completion_display_matches_hook = ch__display;
  /* '.' and ':' are part of the word being completed: "chicane.tr", "env:st". */
  rl_completer_word_break_characters = " \t\n\"\\'`@$><=;|&{(,+-*/%^~#[]}";
  rl_getc_function = ch__getc;
  rl_catch_signals = 0; /* ch__getc handles Ctrl-C */
  if (pipe(ch__wake) == 0) {
    for (int i = 0; i < 2; i++) fcntl(ch__wake[i], F_SETFL, O_NONBLOCK);
    for (int i = 0; i < 2; i++) fcntl(ch__wake[i], F_SETFD, FD_CLOEXEC);
  }
  using_history();
  stifle_history(CH__HISTORY_LINES);
  if (r->history[0]) read_history(r->history);
  lua_getglobal(r->L, "chicane");
  lua_getfield(r->L, -1, "version");
  printf("chicane %s, %s -- :help for the API, :quit to leave\n", lua_tostring(r->L, -1),
         LUA_RELEASE);
  lua_pop(r->L, 2);
}

static void ch__stop_terminal(ch__repl *r) {
  if (r->history[0] && write_history(r->history) == 0)
    history_truncate_file(r->history, CH__HISTORY_LINES);
  clear_history();
  for (int i = 0; i < 2; i++) {
    if (ch__wake[i] >= 0) close(ch__wake[i]);
    ch__wake[i] = -1;
  }
  while (ch__found.next < ch__found.n) free(ch__found.v[ch__found.next++]);
  free(ch__found.v);
  memset(&ch__found, 0, sizeof ch__found);
}

/* One line without its newline (malloc'd), or NULL at the end of input. */
static char *ch__read_line(ch__repl *r, const char *prompt) {
  ch__interrupted = 0;
  ch__drain_wake();
  if (r->tty) return readline(prompt);
  char *line = NULL;
  size_t cap = 0;
  ssize_t n = getline(&line, &cap, stdin);
  if (n < 0) {
    free(line);
    return NULL;
  }
  if (n > 0 && line[n - 1] == '\n') line[n - 1] = '\0';
  return line;
}

static int ch__chunk_set(ch__repl *r, const char *text, int append) {
  size_t add = strlen(text), need = (append ? r->len + 1 : 0) + add + 1;
  if (need > r->cap) {
    char *c = realloc(r->chunk, need * 2);
    if (!c) return -1;
    r->chunk = c;
    r->cap = need * 2;
  }
  if (!append) r->len = 0;
  if (append) r->chunk[r->len++] = '\n';
  memcpy(r->chunk + r->len, text, add + 1);
  r->len += add;
  return 0;
}

/* ------------------------------------------------------------------------ running */

/* Protected: print the values on the stack readably, and keep the first as `_`. */
static int ch__print_values(lua_State *L) {
  int n = lua_gettop(L);
  for (int i = 1; i <= n; i++) {
    ch_lua_repr(L, i, NULL);
    fputs(lua_tostring(L, -1), stdout);
    fputs(i < n ? ", " : "\n", stdout);
    lua_pop(L, 1);
  }
  lua_pushvalue(L, 1);
  lua_setglobal(L, "_");
  return 0;
}

/* The error value as text, without a traceback: the REPL shows the message only. */
static int ch__message(lua_State *L) {
  if (!lua_isstring(L, 1) && !luaL_callmeta(L, 1, "__tostring"))
    lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  else if (!lua_isstring(L, -1))
    lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  return 1;
}

static void ch__print_error(lua_State *L) {
  fprintf(stderr, "%s\n", lua_tostring(L, -1) ? lua_tostring(L, -1) : "(error)");
  lua_pop(L, 1);
}

/* Call the function on top of the stack; print its results or its error. */
static void ch__execute(lua_State *L) {
  int base = lua_gettop(L);
  lua_pushcfunction(L, ch__message);
  lua_insert(L, base);
  ch__running = 1;
  int status = lua_pcall(L, 0, LUA_MULTRET, base);
  ch__running = 0;
  lua_sethook(L, NULL, 0, 0); /* a Ctrl-C that came as the code ended */
  lua_remove(L, base);
  if (status != LUA_OK) {
    ch__print_error(L);
  } else if (lua_gettop(L) >= base) {
    lua_pushcfunction(L, ch__print_values);
    lua_insert(L, base);
    if (lua_pcall(L, lua_gettop(L) - base, 0, 0) != LUA_OK) ch__print_error(L);
  }
  lua_settop(L, base - 1);
  fflush(stdout);
  fflush(stderr);
}

/* A syntax error at the end of the text: the statement goes on in the next line. */
static int ch__incomplete(lua_State *L, int status) {
  size_t len;
  const char *msg = status == LUA_ERRSYNTAX ? lua_tolstring(L, -1, &len) : NULL;
  return msg && len >= 5 && strcmp(msg + len - 5, "<eof>") == 0;
}

/* Compile the chunk as an expression ("return ...") or else as statements. Leaves the
** function, or an error message; returns 1 while the input looks unfinished. */
static int ch__compile(lua_State *L, const char *chunk, int *status) {
  /* no ";" after the chunk (lua.c adds one), so that "{" or "f(" reads as unfinished */
  lua_pushfstring(L, "return %s", chunk);
  *status = luaL_loadbuffer(L, lua_tostring(L, -1), lua_rawlen(L, -1), "=stdin");
  lua_remove(L, -2);
  if (*status == LUA_OK) return 0;
  int expr_open = ch__incomplete(L, *status);
  lua_pop(L, 1);
  *status = luaL_loadbuffer(L, chunk, strlen(chunk), "=stdin");
  return *status != LUA_OK && (expr_open || ch__incomplete(L, *status));
}

/* Read the rest of an unfinished statement; returns 0 when abandoned: Ctrl-C, or the end of
** the input (which reports the statement's syntax error). */
static int ch__read_statement(ch__repl *r, int *status) {
  while (ch__compile(r->L, r->chunk, status)) {
    char *more = ch__read_line(r, ">> ");
    if (!more) {
      if (r->tty) fputs("\n", stdout);
      ch__print_error(r->L);
      return 0;
    }
    lua_pop(r->L, 1);
    int ok = !ch__interrupted && ch__chunk_set(r, more, 1) == 0;
    free(more);
    if (!ok) return 0;
  }
  return 1;
}

/* ":help", ":help NAME", ":quit"; returns 1 to leave. */
static int ch__command(const char *line) {
  char cmd[32] = "", arg[128] = "";
  sscanf(line, ":%31s %127s", cmd, arg);
  if (strcmp(cmd, "quit") == 0 || strcmp(cmd, "q") == 0 || strcmp(cmd, "exit") == 0) return 1;
  if (strcmp(cmd, "help") == 0 || strcmp(cmd, "h") == 0 || strcmp(cmd, "?") == 0) {
    if (ch_lua_help_print(stdout, arg[0] ? arg : NULL) != 0)
      fprintf(stderr, "no help for '%s' (:help lists everything)\n", arg);
  } else {
    fprintf(stderr, "unknown command ':%s' (:help, :help NAME, :quit)\n", cmd);
  }
  fflush(stdout);
  fflush(stderr);
  return 0;
}

static void ch__remember(ch__repl *r, const char *entry) {
  if (r->tty && *entry) add_history(entry);
}

/* One entry of the user: a command, an expression or a statement. Returns 1 to leave. */
static int ch__handle(ch__repl *r, const char *line) {
  const char *p = line + strspn(line, " \t");
  if (*p == '\0') return 0;
  if (*p == ':') {
    ch__remember(r, p);
    return ch__command(p);
  }
  if (*p == '=') p++;
  if (ch__chunk_set(r, p, 0) != 0) return fputs("out of memory\n", stderr), 0;
  int status;
  int complete = ch__read_statement(r, &status);
  ch__remember(r, r->chunk);
  if (!complete) return 0;
  if (status == LUA_OK)
    ch__execute(r->L);
  else
    ch__print_error(r->L);
  return 0;
}

static void ch__loop(ch__repl *r) {
  for (;;) {
    char *line = ch__read_line(r, "> ");
    if (!line) {
      if (r->tty) fputs("\n", stdout);
      return;
    }
    int leave = ch__interrupted ? 0 : ch__handle(r, line);
    free(line);
    if (leave) return;
  }
}

/* ------------------------------------------------------------------------ the command */

static int ch__parse(int argc, char **argv, ch_cli *cli, int *home_given) {
  static const struct option opts[] = {CH_CLI_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (c == 'H') *home_given = 1;
    if (ch_cli_common_option(cli, c, optarg)) continue;
    if (c == 'h') return fputs(repl_usage, stdout), -1;
    return ch_cli_usage_error("repl", "unknown option");
  }
  if (optind != argc) return ch_cli_usage_error("repl", "takes no arguments");
  return 0;
}

const char ch_cmd_repl_summary[] = "repl\tan interactive Lua prompt with the chicane module";

int ch_cmd_repl(int argc, char **argv) {
  ch__repl r;
  memset(&r, 0, sizeof r);
  ch_cli cli;
  ch_cli_init(&cli);
  int home_given = 0, rc = ch__parse(argc, argv, &cli, &home_given);
  if (rc) return rc < 0 ? 0 : rc;
  ch_error err = {0, ""};
  r.L = ch__L = ch_lua_new_state(&err);
  if (!r.L) return ch_cli_fail(err.message);
  ch_lua_set_home(r.L, cli.home, cli.storage_root, cli.catalog);
  r.tty = isatty(STDIN_FILENO);
  ch__history_path(&r, &cli, home_given);
  if (r.tty) ch__start_terminal(&r);
  ch__signal(ch__on_sigint);
  ch__loop(&r);
  ch__signal(SIG_DFL);
  if (r.tty) ch__stop_terminal(&r);
  free(r.chunk);
  lua_close(r.L);
  ch__L = NULL;
  return 0;
}
