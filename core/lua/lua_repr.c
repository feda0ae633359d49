/* lua_repr.c -- readable renderings of Lua values for the REPL: {k = v, ...}, nested, cycles. */
#include "lua_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Output bytes live in a userdata at a fixed stack slot, so a Lua error (from a __tostring)
** cannot leak them. */
typedef struct ch__repr {
  lua_State *L;
  int slot, seen, names; /* stack slots: the bytes, tables on the current path, function names */
  char *p;
  size_t n, cap;
  size_t bol; /* where the current line began */
  ch_lua_repr_options o;
} ch__repr;

enum { CH__FITS = 0, CH__TOO_LONG = 1 };

void ch_lua_repr_defaults(ch_lua_repr_options *o) {
  o->depth = 4;
  o->items = 30;
  o->width = 100;
}

static void ch__put(ch__repr *r, const char *s, size_t len) {
  if (r->n + len > r->cap) {
    size_t cap = r->cap * 2 > r->n + len ? r->cap * 2 : r->n + len + 64;
    char *np = lua_newuserdatauv(r->L, cap, 0);
    memcpy(np, r->p, r->n);
    lua_replace(r->L, r->slot);
    r->p = np;
    r->cap = cap;
  }
  memcpy(r->p + r->n, s, len);
  r->n += len;
}

static void ch__puts(ch__repr *r, const char *s) {
  ch__put(r, s, strlen(s));
}

static void ch__newline(ch__repr *r) {
  ch__put(r, "\n", 1);
  r->bol = r->n;
}

static void ch__indent(ch__repr *r, int n) {
  for (int i = 0; i < n; i++) ch__put(r, " ", 1);
}

static void ch__quote(ch__repr *r, const char *s, size_t len) {
  ch__put(r, "\"", 1);
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    char esc[8];
    if (c == '"' || c == '\\') {
      esc[0] = '\\', esc[1] = (char)c, esc[2] = '\0';
    } else if (c == '\n' || c == '\t' || c == '\r') {
      esc[0] = '\\', esc[1] = c == '\n' ? 'n' : c == '\t' ? 't' : 'r', esc[2] = '\0';
    } else if (c < 32 || c == 127) {
      snprintf(esc, sizeof esc, "\\%d", c);
    } else {
      ch__put(r, s + i, 1);
      continue;
    }
    ch__puts(r, esc);
  }
  ch__put(r, "\"", 1);
}

static int ch__is_identifier(const char *s, size_t len) {
  static const char *const keywords[] = {"and",   "break", "do",       "else",  "elseif", "end",
                                         "false", "for",   "function", "goto",  "if",     "in",
                                         "local", "nil",   "not",      "or",    "repeat", "return",
                                         "then",  "true",  "until",    "while", NULL};
  if (len == 0 || !(s[0] == '_' || ((s[0] | 32) >= 'a' && (s[0] | 32) <= 'z'))) return 0;
  for (size_t i = 1; i < len; i++)
    if (!(s[i] == '_' || ((s[i] | 32) >= 'a' && (s[i] | 32) <= 'z') ||
          (s[i] >= '0' && s[i] <= '9')))
      return 0;
  for (int i = 0; keywords[i]; i++)
    if (strlen(keywords[i]) == len && memcmp(keywords[i], s, len) == 0) return 0;
  return 1;
}

/* Name functions by where they are reachable: loaded modules first (string.format, not a global
** that holds it), then the chicane classes' methods, then the globals (print). */
/* Give each function of table tbl a name, unless an earlier table named it already. */
static void ch__add_names(lua_State *L, int names, int tbl, const char *prefix, const char *sep) {
  for (lua_pushnil(L); lua_next(L, tbl); lua_pop(L, 1)) {
    if (lua_type(L, -2) != LUA_TSTRING || !lua_isfunction(L, -1)) continue;
    lua_pushvalue(L, -1);
    if (lua_rawget(L, names) != LUA_TNIL) {
      lua_pop(L, 1);
      continue;
    }
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    if (*prefix)
      lua_pushfstring(L, "%s%s%s", prefix, sep, lua_tostring(L, -3));
    else
      lua_pushvalue(L, -3);
    lua_rawset(L, names);
  }
}

static void ch__build_names(ch__repr *r) {
  lua_State *L = r->L;
  static const char *const classes[] = {CH_LUA_TRACK, CH_LUA_ENV,   CH_LUA_REWARD,
                                        CH_LUA_MODEL, CH_LUA_IMAGE, NULL};
  int top = lua_gettop(L);
  lua_newtable(L);
  lua_replace(L, r->names);
  if (lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE) == LUA_TTABLE) {
    int loaded = lua_gettop(L);
    for (lua_pushnil(L); lua_next(L, loaded); lua_pop(L, 1))
      if (lua_type(L, -2) == LUA_TSTRING && lua_istable(L, -1) &&
          strcmp(lua_tostring(L, -2), "_G") != 0)
        ch__add_names(L, r->names, lua_gettop(L), lua_tostring(L, -2), ".");
  }
  lua_settop(L, top);
  for (int i = 0; classes[i]; i++) {
    if (luaL_getmetatable(L, classes[i]) == LUA_TTABLE &&
        lua_getfield(L, -1, "methods") == LUA_TTABLE)
      ch__add_names(L, r->names, lua_gettop(L), classes[i] + 8, ":");
    lua_settop(L, top);
  }
  lua_pushglobaltable(L);
  ch__add_names(L, r->names, lua_gettop(L), "", "");
  lua_settop(L, top);
}

static void ch__function(ch__repr *r, int idx) {
  lua_State *L = r->L;
  if (lua_isnil(L, r->names)) ch__build_names(r);
  lua_pushvalue(L, idx);
  if (lua_rawget(L, r->names) == LUA_TSTRING) {
    ch__puts(r, "<function ");
    ch__puts(r, lua_tostring(L, -1));
    ch__puts(r, ">");
    lua_pop(L, 1);
    return;
  }
  lua_pop(L, 1);
  lua_Debug ar;
  lua_pushvalue(L, idx);
  lua_getinfo(L, ">S", &ar);
  char buf[LUA_IDSIZE + 64];
  if (ar.what[0] == 'C')
    snprintf(buf, sizeof buf, "<function: builtin>");
  else
    snprintf(buf, sizeof buf, "<function %s:%d>", ar.short_src, ar.linedefined);
  ch__puts(r, buf);
}

/* luaL_tolstring's text for the value (through __tostring), as is or between < >. */
static void ch__tostring(ch__repr *r, int idx, int brackets) {
  size_t len;
  const char *s = luaL_tolstring(r->L, idx, &len);
  if (brackets && s[0] != '<') ch__put(r, "<", 1);
  ch__put(r, s, len);
  if (brackets && s[0] != '<') ch__put(r, ">", 1);
  lua_pop(r->L, 1);
}

static int ch__value(ch__repr *r, int idx, int indent, int depth, size_t limit);

/* Sortable view of one key of a table. */
typedef struct ch__key {
  int kind; /* 0 number, 1 string, 2 boolean, 3 other */
  lua_Number num;
  const char *s;
  size_t len;
  const void *ptr;
  int pos; /* index in the keys list */
} ch__key;

static int ch__key_cmp(const void *pa, const void *pb) {
  const ch__key *a = pa, *b = pb;
  if (a->kind != b->kind) return a->kind - b->kind;
  switch (a->kind) {
  case 0:
    return a->num < b->num ? -1 : a->num > b->num;
  case 1: {
    int c = memcmp(a->s, b->s, a->len < b->len ? a->len : b->len);
    return c ? c : (a->len > b->len) - (a->len < b->len);
  }
  case 2:
    return (int)a->num - (int)b->num;
  default:
    return (a->ptr > b->ptr) - (a->ptr < b->ptr);
  }
}

/* Push a list of the keys of table t not in 1..seq, and a sorted ch__key array for them. */
static int ch__sorted_keys(lua_State *L, int t, lua_Integer seq, ch__key **out) {
  lua_newtable(L);
  int keys = lua_gettop(L), n = 0;
  for (lua_pushnil(L); lua_next(L, t); lua_pop(L, 1)) {
    if (lua_isinteger(L, -2) && lua_tointeger(L, -2) >= 1 && lua_tointeger(L, -2) <= seq) continue;
    lua_pushvalue(L, -2);
    lua_rawseti(L, keys, ++n);
  }
  ch__key *k = lua_newuserdatauv(L, sizeof *k * (size_t)(n + 1), 0);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, keys, i + 1);
    int type = lua_type(L, -1);
    k[i] = (ch__key){3, 0, NULL, 0, lua_topointer(L, -1), i + 1};
    if (type == LUA_TNUMBER) k[i].kind = 0, k[i].num = lua_tonumber(L, -1);
    if (type == LUA_TSTRING) k[i].kind = 1, k[i].s = lua_tolstring(L, -1, &k[i].len);
    if (type == LUA_TBOOLEAN) k[i].kind = 2, k[i].num = lua_toboolean(L, -1);
    lua_pop(L, 1); /* the keys list keeps the strings alive */
  }
  qsort(k, (size_t)n, sizeof *k, ch__key_cmp);
  *out = k;
  return n;
}

static int ch__over(const ch__repr *r, size_t limit) {
  return r->n > limit;
}

/* One entry: the value at vidx, after `key = ` when kidx is not 0. */
static int ch__entry(ch__repr *r, int kidx, int vidx, int indent, int depth, size_t limit) {
  if (kidx) {
    size_t len;
    const char *s = lua_type(r->L, kidx) == LUA_TSTRING ? lua_tolstring(r->L, kidx, &len) : NULL;
    if (s && ch__is_identifier(s, len)) {
      ch__put(r, s, len);
    } else {
      ch__put(r, "[", 1);
      if (ch__value(r, kidx, indent, depth + 1, limit)) return CH__TOO_LONG;
      ch__put(r, "]", 1);
    }
    ch__put(r, " = ", 3);
  }
  return ch__value(r, vidx, indent, depth + 1, limit);
}

/* The entries of table t, each with a separator; multi puts each on its own line. */
static int ch__entries(ch__repr *r, int t, int indent, int depth, size_t limit, int multi) {
  lua_State *L = r->L;
  int top = lua_gettop(L), shown = 0, rc = CH__FITS;
  lua_Integer seq = 0;
  while (lua_rawgeti(L, t, seq + 1) != LUA_TNIL) lua_pop(L, 1), seq++;
  lua_pop(L, 1);
  ch__key *k;
  int nk = ch__sorted_keys(L, t, seq, &k), keys = top + 1;
  lua_Integer total = seq + nk;
  for (lua_Integer i = 0; i < total && rc == CH__FITS; i++) {
    if (shown == r->o.items) break;
    if (multi) ch__indent(r, indent + 2);
    if (i < seq) {
      lua_rawgeti(L, t, i + 1);
      rc = ch__entry(r, 0, lua_gettop(L), indent + 2, depth, limit);
    } else {
      lua_rawgeti(L, keys, k[i - seq].pos);
      lua_pushvalue(L, -1);
      lua_rawget(L, t);
      rc = ch__entry(r, lua_gettop(L) - 1, lua_gettop(L), indent + 2, depth, limit);
    }
    lua_settop(L, keys + 1);
    shown++;
    if (rc == CH__FITS && multi) ch__puts(r, ","), ch__newline(r);
    if (rc == CH__FITS && !multi && i + 1 < total) ch__puts(r, ", ");
    if (ch__over(r, limit)) rc = CH__TOO_LONG;
  }
  if (rc == CH__FITS && shown < total) {
    char more[64];
    if (multi) ch__indent(r, indent + 2);
    snprintf(more, sizeof more, "... (%lld more)", (long long)(total - shown));
    ch__puts(r, more);
    if (multi) ch__newline(r);
  }
  lua_settop(L, top);
  return rc == CH__FITS && ch__over(r, limit) ? CH__TOO_LONG : rc;
}

static int ch__table(ch__repr *r, int t, int indent, int depth, size_t limit) {
  lua_State *L = r->L;
  luaL_checkstack(L, 12, "table nested too deeply to show");
  lua_pushnil(L);
  int empty = !lua_next(L, t);
  lua_settop(L, lua_gettop(L) - (empty ? 0 : 2));
  if (empty) return ch__puts(r, "{}"), CH__FITS;
  if (depth >= r->o.depth) return ch__puts(r, "{...}"), CH__FITS;
  lua_pushvalue(L, t);
  if (lua_rawget(L, r->seen) != LUA_TNIL) return lua_pop(L, 1), ch__puts(r, "<cycle>"), CH__FITS;
  lua_pop(L, 1);
  lua_pushvalue(L, t);
  lua_pushboolean(L, 1);
  lua_rawset(L, r->seen);
  size_t start = r->n, bol = r->bol, eol = r->bol + (size_t)r->o.width;
  ch__put(r, "{", 1);
  int rc = ch__entries(r, t, indent, depth, eol < limit ? eol : limit, 0);
  if (rc == CH__FITS) ch__put(r, "}", 1);
  if ((rc != CH__FITS || ch__over(r, eol)) && limit == SIZE_MAX) {
    r->n = start; /* too long for one line: one entry per line */
    r->bol = bol;
    ch__puts(r, "{");
    ch__newline(r);
    rc = ch__entries(r, t, indent, depth, SIZE_MAX, 1);
    ch__indent(r, indent);
    ch__put(r, "}", 1);
  }
  lua_pushvalue(L, t);
  lua_pushnil(L);
  lua_rawset(L, r->seen);
  return rc != CH__FITS || ch__over(r, limit) ? CH__TOO_LONG : CH__FITS;
}

/* Render the value at idx. limit: the output may not grow past it (SIZE_MAX: no limit, so
** tables may take several lines); returns CH__TOO_LONG when it would. */
static int ch__value(ch__repr *r, int idx, int indent, int depth, size_t limit) {
  lua_State *L = r->L;
  switch (lua_type(L, idx)) {
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    ch__quote(r, s, len);
    break;
  }
  case LUA_TNUMBER:
  case LUA_TBOOLEAN:
  case LUA_TNIL:
    ch__tostring(r, idx, 0);
    break;
  case LUA_TTABLE:
    if (luaL_getmetafield(L, idx, "__tostring") != LUA_TNIL) {
      lua_pop(L, 1);
      ch__tostring(r, idx, 0);
      break;
    }
    return ch__table(r, idx, indent, depth, limit);
  case LUA_TFUNCTION:
    ch__function(r, idx);
    break;
  case LUA_TUSERDATA:
    if (luaL_getmetafield(L, idx, "__tostring") != LUA_TNIL) {
      lua_pop(L, 1);
      ch__tostring(r, idx, 1);
    } else if (luaL_getmetafield(L, idx, "__name") == LUA_TSTRING) {
      ch__puts(r, "<userdata ");
      ch__puts(r, lua_tostring(L, -1));
      ch__puts(r, ">");
      lua_pop(L, 1);
    } else {
      ch__puts(r, "<userdata>");
    }
    break;
  default:
    ch__puts(r, "<");
    ch__puts(r, luaL_typename(L, idx));
    ch__puts(r, ">");
  }
  return ch__over(r, limit) ? CH__TOO_LONG : CH__FITS;
}

const char *ch_lua_repr(lua_State *L, int idx, const ch_lua_repr_options *o) {
  idx = lua_absindex(L, idx);
  ch__repr r;
  memset(&r, 0, sizeof r);
  r.L = L;
  ch_lua_repr_defaults(&r.o);
  if (o) r.o = *o;
  if (r.o.items < 1) r.o.items = 1;
  luaL_checkstack(L, 8, "no room to show a value");
  r.cap = 256;
  r.p = lua_newuserdatauv(L, r.cap, 0);
  r.slot = lua_gettop(L);
  lua_newtable(L);
  r.seen = lua_gettop(L);
  lua_pushnil(L);
  r.names = lua_gettop(L);
  ch__value(&r, idx, 0, 0, SIZE_MAX);
  lua_pushlstring(L, r.p, r.n);
  lua_replace(L, r.slot);
  lua_settop(L, r.slot);
  return lua_tostring(L, -1);
}

/* Options from a table: depth, items, width. */
static void ch__options(lua_State *L, int idx, const char *fn, ch_lua_repr_options *o) {
  static const char *const keys[] = {"depth", "items", "width", NULL};
  ch_lua_repr_defaults(o);
  ch_lua_check_options(L, idx, fn, keys);
  o->depth = (int)ch_lua_opt_integer(L, idx, fn, "depth", o->depth);
  o->items = (int)ch_lua_opt_integer(L, idx, fn, "items", o->items);
  o->width = (int)ch_lua_opt_integer(L, idx, fn, "width", o->width);
}

/* chicane.repr(value[, {depth=, items=, width=}]) -> string */
static int ch__repr_fn(lua_State *L) {
  luaL_checkany(L, 1);
  ch_lua_repr_options o;
  ch__options(L, 2, "chicane.repr", &o);
  ch_lua_repr(L, 1, &o);
  return 1;
}

/* chicane.pp(...): print the values readably, separated by ", " */
static int ch__pp(lua_State *L) {
  int n = lua_gettop(L);
  for (int i = 1; i <= n; i++) {
    ch_lua_repr(L, i, NULL);
    fputs(lua_tostring(L, -1), stdout);
    fputs(i < n ? ", " : "", stdout);
    lua_pop(L, 1);
  }
  fputs("\n", stdout);
  fflush(stdout);
  return 0;
}

void ch_lua_open_repr(lua_State *L) {
  lua_pushcfunction(L, ch__repr_fn);
  lua_setfield(L, -2, "repr");
  lua_pushcfunction(L, ch__pp);
  lua_setfield(L, -2, "pp");
}
