/* lua_complete.c -- completion candidates for the REPL: globals, keywords, fields and methods. */
#include "lua_internal.h"

#include <string.h>

#define CH__MAX_WORD   512
#define CH__MAX_CHAIN  8 /* __index tables followed when looking up or listing */
#define CH__MAX_SUFFIX 2

typedef struct ch__complete {
  lua_State *L;
  const char *base; /* the text before the part being completed ("chicane.") */
  size_t base_len;
  const char *part; /* what is typed of the last name */
  size_t part_len;
  int methods_only; /* after ':' */
  void (*fn)(const char *candidate, void *user);
  void *user;
} ch__complete;

static int ch__is_name(const char *s, size_t len) {
  if (len == 0 || (s[0] >= '0' && s[0] <= '9')) return 0;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
      return 0;
  }
  return 1;
}

/* Offer base + name + (a function: "(", a table: "."), if name starts with what is typed. */
static void ch__offer(ch__complete *c, const char *name, size_t len, int type) {
  if (!ch__is_name(name, len) || len < c->part_len || memcmp(name, c->part, c->part_len) != 0)
    return;
  if (c->methods_only && type != LUA_TFUNCTION) return;
  if (c->base_len + len + CH__MAX_SUFFIX + 1 > CH__MAX_WORD) return;
  char word[CH__MAX_WORD];
  memcpy(word, c->base, c->base_len);
  memcpy(word + c->base_len, name, len);
  size_t n = c->base_len + len;
  if (type == LUA_TFUNCTION) word[n++] = '(';
  if (type == LUA_TTABLE) word[n++] = '.';
  word[n] = '\0';
  c->fn(word, c->user);
}

/* Offer the string keys of the table at idx. */
static void ch__offer_keys(ch__complete *c, int idx) {
  lua_State *L = c->L;
  for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1))
    if (lua_type(L, -2) == LUA_TSTRING) {
      size_t len;
      const char *k = lua_tolstring(L, -2, &len);
      ch__offer(c, k, len, lua_type(L, -1));
    }
}

/* Offer what v.name or v:name could be: own keys, then the metatable's methods and fields
** (chicane objects) or its __index table, following a few links. */
static void ch__offer_members(ch__complete *c, int idx) {
  lua_State *L = c->L;
  int top = lua_gettop(L);
  lua_pushvalue(L, idx);
  for (int depth = 0; depth < CH__MAX_CHAIN; depth++) {
    int v = lua_gettop(L);
    if (lua_istable(L, v)) ch__offer_keys(c, v);
    if (!lua_getmetatable(L, v)) break;
    int mt = lua_gettop(L);
    if (lua_getfield(L, mt, "methods") == LUA_TTABLE) ch__offer_keys(c, lua_gettop(L));
    lua_pop(L, 1);
    if (lua_getfield(L, mt, "fields") == LUA_TTABLE) {
      for (lua_Integer i = 1; lua_rawgeti(L, -1, i) == LUA_TSTRING; i++) {
        size_t len;
        const char *f = lua_tolstring(L, -1, &len);
        ch__offer(c, f, len, LUA_TNIL);
        lua_pop(L, 1);
      }
      lua_pop(L, 2);
      break; /* a chicane object: its __index is code, not a table */
    }
    lua_pop(L, 1);
    if (lua_getfield(L, mt, "__index") != LUA_TTABLE) break;
  }
  lua_settop(L, top);
}

/* Push t[key] without metamethods other than __index tables; nil when not found. */
static void ch__lookup(lua_State *L, const char *key, size_t len) {
  int t = lua_gettop(L);
  for (int depth = 0; depth < CH__MAX_CHAIN; depth++) {
    int v = lua_gettop(L);
    if (lua_istable(L, v)) {
      lua_pushlstring(L, key, len);
      if (lua_rawget(L, v) != LUA_TNIL) break;
      lua_pop(L, 1);
    }
    if (!lua_getmetatable(L, v)) {
      lua_pushnil(L);
      break;
    }
    if (lua_getfield(L, -1, "methods") == LUA_TTABLE) {
      lua_pushlstring(L, key, len);
      if (lua_rawget(L, -2) != LUA_TNIL) break;
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    if (lua_getfield(L, -1, "__index") != LUA_TTABLE) {
      lua_pushnil(L);
      break;
    }
  }
  lua_replace(L, t);
  lua_settop(L, t);
}

/* Push the value the dotted names of base (without the final separator) lead to, or nil. */
static void ch__resolve(lua_State *L, const char *base, size_t len) {
  lua_pushglobaltable(L);
  size_t start = 0;
  for (size_t i = 0; i <= len; i++) {
    if (i < len && base[i] != '.') continue;
    if (!ch__is_name(base + start, i - start)) {
      lua_pop(L, 1);
      lua_pushnil(L);
      return;
    }
    ch__lookup(L, base + start, i - start);
    if (lua_isnil(L, -1)) return;
    start = i + 1;
  }
}

void ch_lua_complete(lua_State *L, const char *text, void (*fn)(const char *candidate, void *user),
                     void *user) {
  static const char *const keywords[] = {"and",   "break", "do",       "else",  "elseif", "end",
                                         "false", "for",   "function", "goto",  "if",     "in",
                                         "local", "nil",   "not",      "or",    "repeat", "return",
                                         "then",  "true",  "until",    "while", NULL};
  int top = lua_gettop(L);
  if (!lua_checkstack(L, 12)) return;
  const char *sep = NULL;
  for (const char *p = text; *p; p++)
    if (*p == '.' || *p == ':') sep = p;
  ch__complete c = {L, text, 0, text, strlen(text), 0, fn, user};
  if (!sep) {
    for (int i = 0; keywords[i]; i++) ch__offer(&c, keywords[i], strlen(keywords[i]), LUA_TNIL);
    lua_pushglobaltable(L);
    ch__offer_members(&c, lua_gettop(L));
    lua_settop(L, top);
    return;
  }
  c.base_len = (size_t)(sep - text) + 1;
  c.part = sep + 1;
  c.part_len = strlen(c.part);
  c.methods_only = *sep == ':';
  ch__resolve(L, text, (size_t)(sep - text));
  if (!lua_isnil(L, -1)) ch__offer_members(&c, lua_gettop(L));
  lua_settop(L, top);
}
