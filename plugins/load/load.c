// lookout exporter `load`, written in C: the machine's load averages
// (/proc/loadavg) and pressure stall information (/proc/pressure/*), under
// node_exporter's names, so dashboards made for node_exporter work.
//
// Built with clang (wasi-libc), wit-bindgen and wasm-tools: `make`
// (see docs/guide-c.md). /proc is reached through the `files` capability.

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen/exporter.h"

// The samples being collected; handed to the host, which frees them after
// the call (the generated post-return).
typedef struct {
  exporter_sample_t *items;
  size_t len, cap;
} samples_t;

static void push(samples_t *s, const char *name, double value) {
  if (s->len == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 16;
    s->items = realloc(s->items, s->cap * sizeof *s->items);
    if (!s->items) abort();
  }
  exporter_sample_t *sample = &s->items[s->len++];
  memset(sample, 0, sizeof *sample);
  exporter_string_dup(&sample->name, name);
  sample->value = value;
}

static void set_error(exporter_plugin_error_t *err, uint8_t tag, const char *message) {
  err->tag = tag;
  exporter_string_dup(&err->val.permanent, message);  // same layout for every case
}

static void list_of(exporter_list_string_t *list, const char *item) {
  list->len = item ? 1 : 0;
  list->ptr = item ? malloc(sizeof *list->ptr) : NULL;
  if (item) exporter_string_dup(&list->ptr[0], item);
}

void exports_exporter_describe(exporter_plugin_info_t *ret) {
  memset(ret, 0, sizeof *ret);
  exporter_string_dup(&ret->name, "load");
  exporter_string_dup(&ret->version, "0.1.0");
  exporter_string_dup(&ret->description,
                      "Load averages and pressure stall information under node_exporter's names; written in C");
  // Read-only /proc, nothing else.
  list_of(&ret->capabilities.files, "/proc");
}

// One /proc/pressure file: "some avg10=… total=<µs>" and, except for cpu on
// older kernels, "full …".
static void pressure(samples_t *s, const char *resource) {
  char path[64], line[256], name[96];
  snprintf(path, sizeof path, "/proc/pressure/%s", resource);
  FILE *file = fopen(path, "r");
  if (!file) return;  // a kernel without PSI: nothing to report
  while (fgets(line, sizeof line, file)) {
    char kind[8];
    double avg10, avg60, avg300;
    unsigned long long total;
    if (sscanf(line, "%7s avg10=%lf avg60=%lf avg300=%lf total=%llu", kind, &avg10, &avg60, &avg300, &total) != 5)
      continue;
    const char *what = strcmp(kind, "some") == 0 ? "waiting" : strcmp(kind, "full") == 0 ? "stalled" : NULL;
    if (!what) continue;
    snprintf(name, sizeof name, "node_pressure_%s_%s_seconds_total", resource, what);
    push(s, name, (double)total / 1e6);
  }
  fclose(file);
}

bool exports_exporter_collect(exporter_string_t *target, exporter_string_t *config, uint32_t timeout_ms,
                              exporter_list_sample_t *ret, exporter_plugin_error_t *err) {
  (void)timeout_ms;
  exporter_string_free(target);
  exporter_string_free(config);
  samples_t s = {0};
  double load1, load5, load15;
  FILE *file = fopen("/proc/loadavg", "r");
  if (!file) {
    set_error(err, LOOKOUT_PLUGIN_TYPES_PLUGIN_ERROR_PERMANENT,
              "cannot open /proc/loadavg (is the `files` capability for /proc granted?)");
    return false;
  }
  int read = fscanf(file, "%lf %lf %lf", &load1, &load5, &load15);
  fclose(file);
  if (read != 3) {
    set_error(err, LOOKOUT_PLUGIN_TYPES_PLUGIN_ERROR_PERMANENT, "/proc/loadavg has an unexpected format");
    return false;
  }
  push(&s, "node_load1", load1);
  push(&s, "node_load5", load5);
  push(&s, "node_load15", load15);
  pressure(&s, "cpu");
  pressure(&s, "io");
  pressure(&s, "memory");
  ret->ptr = s.items;
  ret->len = s.len;
  return true;
}
