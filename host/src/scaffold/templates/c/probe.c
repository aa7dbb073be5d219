// `{{name}}`: a lookout probe. The target is a file's absolute path (a
// heartbeat or the newest backup); the probe succeeds when the file exists
// and was modified less than `max_age_seconds` ago (config, default 3600).
// Change `probe` to check what matters to you. Build: `make` (README.md).
//
// The file's directory must be granted to the job:
//   grants = { files = ["/var/backups"] }
// Ownership: what an export returns is freed by the generated code after
// the call, so allocate it (malloc, *_string_dup) and let go.

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "gen/probe.h"

void exports_probe_describe(probe_plugin_info_t *ret) {
  memset(ret, 0, sizeof *ret);
  probe_string_dup(&ret->name, "{{name}}");
  probe_string_dup(&ret->version, "0.1.0");
  probe_string_dup(&ret->description, "Succeeds when the target file exists and is fresh");
}

// A copy of a WIT string as a C string.
static char *c_string(const probe_string_t *s) {
  char *copy = malloc(s->len + 1);
  memcpy(copy, s->ptr, s->len);
  copy[s->len] = '\0';
  return copy;
}

static void add_sample(probe_probe_result_t *ret, const char *name, double value) {
  lookout_plugin_types_list_sample_t *samples = &ret->samples;
  samples->ptr = realloc(samples->ptr, (samples->len + 1) * sizeof *samples->ptr);
  lookout_plugin_types_sample_t *sample = &samples->ptr[samples->len++];
  memset(sample, 0, sizeof *sample);
  probe_string_dup(&sample->name, name);
  sample->value = value;
}

bool exports_probe_probe(probe_string_t *target, probe_string_t *config, uint32_t timeout_ms,
                         probe_probe_result_t *ret, probe_plugin_error_t *err) {
  (void)timeout_ms;
  char *path = c_string(target);
  char *text = c_string(config);
  double max_age = 3600;
  // The config is JSON; one number is all this probe reads.
  const char *field = strstr(text, "\"max_age_seconds\"");
  if (field && sscanf(strchr(field, ':') ? strchr(field, ':') + 1 : "", "%lf", &max_age) != 1) {
    err->tag = LOOKOUT_PLUGIN_TYPES_PLUGIN_ERROR_CONFIG;
    probe_string_dup(&err->val.config, "`max_age_seconds` must be a number");
    free(path), free(text);
    return false;
  }
  memset(ret, 0, sizeof *ret);
  struct timespec started, finished;
  clock_gettime(CLOCK_MONOTONIC, &started);
  struct stat info;
  char message[512];
  if (stat(path, &info) != 0) {
    snprintf(message, sizeof message, "cannot stat %s (missing, or its directory not granted)", path);
    ret->failure_reason.is_some = true;
    ret->failure_reason.val = LOOKOUT_PLUGIN_TYPES_FAILURE_REASON_OTHER;
  } else {
    double age = difftime(time(NULL), info.st_mtime);
    add_sample(ret, "probe_file_age_seconds", age);
    ret->success = age <= max_age;
    snprintf(message, sizeof message, "modified %.0f s ago", age);
    if (!ret->success) {
      ret->failure_reason.is_some = true;
      ret->failure_reason.val = LOOKOUT_PLUGIN_TYPES_FAILURE_REASON_OTHER;
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &finished);
  ret->duration_seconds = (finished.tv_sec - started.tv_sec) + (finished.tv_nsec - started.tv_nsec) / 1e9;
  add_sample(ret, "probe_success", ret->success ? 1 : 0);
  probe_string_dup(&ret->message, message);
  free(path), free(text);
  probe_string_free(target);
  probe_string_free(config);
  return true;
}
