/* YAML (via libyaml) into the same DOM as JSON (core/json.h), keeping line:column of every
 * node so validation messages can say file:line:column. Plain scalars are typed with the YAML
 * 1.2 core schema (null, true/false, integers, floats); quoted scalars are strings.
 * Anchors/aliases are resolved; merge keys ("<<") are expanded; duplicate mapping keys are an
 * error; only one document per file. */
#ifndef MP_CORE_YAML_H
#define MP_CORE_YAML_H
#include "core/arena.h"
#include "core/json.h"
#include "mlxport.h"

mp_status mp_yaml_parse(const char *text, size_t n, const char *what, mp_arena *arena, mp_json **out);
mp_status mp_yaml_parse_file(const char *path, mp_arena *arena, mp_json **out);
#endif
