/* YAML into the JSON DOM: typing, positions, anchors/merge keys, errors. */
#include "core/arena.h"
#include "core/error.h"
#include "core/yaml.h"
#include "testlib.h"

static mp_json *parse(mp_arena *a, const char *t, mp_status *st) {
  mp_json *j = NULL;
  *st = mp_yaml_parse(t, strlen(t), "cfg.yaml", a, &j);
  return j;
}

static void test_types_and_marks(void) {
  mp_arena a;
  mp_arena_init(&a, 0);
  mp_status st;
  const char *t = "models:\n  - name: mini\n    bits: 8\n    drop: 0.02\n    q: '8'\n    on: true\n    none: ~\n";
  mp_json *j = parse(&a, t, &st);
  REQUIRE(st == MP_OK && j && j->type == MP_JSON_OBJECT);
  const mp_json *ms = mp_json_get(j, "models");
  REQUIRE(ms && ms->type == MP_JSON_ARRAY && ms->len == 1);
  const mp_json *m = ms->items[0];
  CHECK_STREQ(mp_json_get_str(m, "name", ""), "mini");
  CHECK(mp_json_get_int(m, "bits", 0) == 8);
  CHECK(mp_json_get_num(m, "drop", 0) == 0.02);
  CHECK(mp_json_get(m, "q")->type == MP_JSON_STRING);
  CHECK(mp_json_get_bool(m, "on", 0) == 1);
  CHECK(mp_json_get(m, "none")->type == MP_JSON_NULL);
  CHECK(mp_json_get(m, "bits")->line == 3 && mp_json_get(m, "bits")->col == 11);
  mp_arena_free(&a);
}

static void test_anchors(void) {
  mp_arena a;
  mp_arena_init(&a, 0);
  mp_status st;
  const char *t = "base: &b {bits: 8, group_size: 64}\nx:\n  <<: *b\n  bits: 4\ny: *b\n";
  mp_json *j = parse(&a, t, &st);
  REQUIRE(st == MP_OK);
  CHECK(mp_json_get_int(mp_json_get(j, "x"), "bits", 0) == 4);
  CHECK(mp_json_get_int(mp_json_get(j, "x"), "group_size", 0) == 64);
  CHECK(mp_json_get_int(mp_json_get(j, "y"), "bits", 0) == 8);
  mp_arena_free(&a);
}

static void test_errors(void) {
  const char *bad[] = {"a: [1, 2\n", "a: 1\na: 2\n", "a: *nope\n", "--- 1\n--- 2\n", "a:\n\t- x\n", "{[1]: 2}\n"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    mp_arena a;
    mp_arena_init(&a, 0);
    mp_status st;
    parse(&a, bad[i], &st);
    CHECKF(st == MP_ERR_FORMAT, "case %zu accepted", i);
    CHECKF(strstr(mp_last_error(), "cfg.yaml:") != NULL, "case %zu: %s", i, mp_last_error());
    mp_arena_free(&a);
  }
  mp_arena a;
  mp_arena_init(&a, 0);
  mp_status st;
  parse(&a, "a: 1\na: 2\n", &st);
  CHECKF(strstr(mp_last_error(), "cfg.yaml:2:1: duplicate key \"a\"") != NULL, "%s", mp_last_error());
  mp_arena_free(&a);
}

int main(void) {
  RUN(test_types_and_marks);
  RUN(test_anchors);
  RUN(test_errors);
  return mp_test_done();
}
