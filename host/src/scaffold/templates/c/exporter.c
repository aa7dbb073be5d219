// `{{name}}`: a lookout exporter. It reports the system's load averages
// from /proc/loadavg (node_exporter's names); change `collect` to gather
// what matters to you. Build: `make` (see README.md).
//
// Ownership: what an export returns is freed by the generated code after
// the call, so allocate it (malloc, *_string_dup) and let go.

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen/exporter.h"

void exports_exporter_describe(exporter_plugin_info_t *ret) {
  memset(ret, 0, sizeof *ret);
  exporter_string_dup(&ret->name, "{{name}}");
  exporter_string_dup(&ret->version, "0.1.0");
  exporter_string_dup(&ret->description, "Reports the load averages of the machine lookout runs on");
  // Read-only access to /proc; nothing else exists for the plugin.
  ret->capabilities.files.len = 1;
  ret->capabilities.files.ptr = malloc(sizeof(exporter_string_t));
  exporter_string_dup(&ret->capabilities.files.ptr[0], "/proc");
}

bool exports_exporter_collect(exporter_string_t *target, exporter_string_t *config, uint32_t timeout_ms,
                              exporter_list_sample_t *ret, exporter_plugin_error_t *err) {
  (void)timeout_ms;
  exporter_string_free(target);
  exporter_string_free(config);
  double loads[3];
  FILE *file = fopen("/proc/loadavg", "r");
  int read = file ? fscanf(file, "%lf %lf %lf", &loads[0], &loads[1], &loads[2]) : 0;
  if (file) fclose(file);
  if (read != 3) {
    err->tag = LOOKOUT_PLUGIN_TYPES_PLUGIN_ERROR_PERMANENT;
    exporter_string_dup(&err->val.permanent, "cannot read /proc/loadavg");
    return false;
  }
  static const char *names[3] = {"node_load1", "node_load5", "node_load15"};
  ret->len = 3;
  ret->ptr = calloc(3, sizeof(exporter_sample_t));
  for (int i = 0; i < 3; i++) {
    exporter_string_dup(&ret->ptr[i].name, names[i]);
    ret->ptr[i].value = loads[i];
  }
  return true;
}
