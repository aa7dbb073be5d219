// `{{name}}`: a lookout detector. It scores each point by how far it is
// from an exponentially weighted moving average, in units of the average's
// own deviation; change `observe` to judge points your way.
// Build: `make` (see README.md).
//
// Ownership: what an export returns is freed by the generated code after
// the call, so allocate it (malloc, *_string_dup) and let go.

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen/detector.h"

// Bumped whenever the saved state's layout changes: an older state is
// refused and lookout starts the series afresh.
#define STATE_VERSION 1

// One series. lookout restores it from `save`'s bytes for every batch.
struct exports_lookout_plugin_detection_detector_t {
  uint8_t version;
  double alpha, threshold;
  uint64_t points;
  double mean, deviation;
};
typedef exports_lookout_plugin_detection_detector_t detector_t;

void exports_detector_describe(detector_plugin_info_t *ret) {
  memset(ret, 0, sizeof *ret);
  detector_string_dup(&ret->name, "{{name}}");
  detector_string_dup(&ret->version, "0.1.0");
  detector_string_dup(&ret->description, "Scores points by their distance from a moving average");
}

// One number of the JSON config, or `fallback` when absent.
static double config_number(const detector_string_t *config, const char *name, double fallback) {
  char *text = malloc(config->len + 1);
  memcpy(text, config->ptr, config->len);
  text[config->len] = '\0';
  char key[64];
  snprintf(key, sizeof key, "\"%s\"", name);
  const char *field = strstr(text, key);
  double value = fallback;
  if (field && strchr(field, ':')) sscanf(strchr(field, ':') + 1, "%lf", &value);
  free(text);
  return value;
}

static bool configure(detector_string_t *config, detector_t *d, exports_lookout_plugin_detection_plugin_error_t *err) {
  d->version = STATE_VERSION;
  d->alpha = config_number(config, "alpha", 0.1);
  d->threshold = config_number(config, "threshold", 4.0);
  detector_string_free(config);
  if (!(d->alpha > 0 && d->alpha <= 1) || !(d->threshold > 0)) {
    err->tag = LOOKOUT_PLUGIN_TYPES_PLUGIN_ERROR_CONFIG;
    detector_string_dup(&err->val.config, "`alpha` must be in (0, 1] and `threshold` positive");
    return false;
  }
  return true;
}

bool exports_lookout_plugin_detection_static_detector_create(detector_string_t *config,
                                                             exports_lookout_plugin_detection_own_detector_t *ret,
                                                             exports_lookout_plugin_detection_plugin_error_t *err) {
  detector_t *d = calloc(1, sizeof *d);
  if (!configure(config, d, err)) {
    free(d);
    return false;
  }
  *ret = exports_lookout_plugin_detection_detector_new(d);
  return true;
}

bool exports_lookout_plugin_detection_static_detector_restore(detector_string_t *config, detector_list_u8_t *state,
                                                              exports_lookout_plugin_detection_own_detector_t *ret,
                                                              exports_lookout_plugin_detection_plugin_error_t *err) {
  detector_t *d = calloc(1, sizeof *d);
  bool ok = state->len == sizeof *d && state->ptr[0] == STATE_VERSION;
  if (ok) memcpy(d, state->ptr, sizeof *d);
  detector_list_u8_free(state);
  if (!ok) {
    detector_string_free(config);
    free(d);
    err->tag = LOOKOUT_PLUGIN_TYPES_PLUGIN_ERROR_CONFIG;
    detector_string_dup(&err->val.config, "state of another version");
    return false;
  }
  // The config may have changed since the state was saved.
  if (!configure(config, d, err)) {
    free(d);
    return false;
  }
  *ret = exports_lookout_plugin_detection_detector_new(d);
  return true;
}

void exports_lookout_plugin_detection_method_detector_observe(exports_lookout_plugin_detection_borrow_detector_t d,
                                                              exports_lookout_plugin_detection_list_point_t *points,
                                                              exports_lookout_plugin_detection_list_verdict_t *ret) {
  ret->len = points->len;
  ret->ptr = calloc(points->len ? points->len : 1, sizeof *ret->ptr);
  for (size_t i = 0; i < points->len; i++) {
    double value = points->ptr[i].value;
    // Learn from a few points before judging any.
    double score = d->points < 10 || d->deviation == 0 ? NAN : fabs(value - d->mean) / d->deviation;
    if (d->points == 0) {
      d->mean = value;
    } else {
      d->deviation = (1 - d->alpha) * d->deviation + d->alpha * fabs(value - d->mean);
      d->mean = (1 - d->alpha) * d->mean + d->alpha * value;
    }
    d->points++;
    ret->ptr[i].timestamp_ms = points->ptr[i].timestamp_ms;
    ret->ptr[i].score = score;
    ret->ptr[i].anomalous = score >= d->threshold;
  }
  exports_lookout_plugin_detection_list_point_free(points);
}

bool exports_lookout_plugin_detection_method_detector_forecast(exports_lookout_plugin_detection_borrow_detector_t d,
                                                               int64_t horizon_ms, double *maybe_threshold,
                                                               exports_lookout_plugin_detection_forecast_t *ret) {
  (void)d, (void)horizon_ms, (void)maybe_threshold, (void)ret;
  return false;  // this detector does not forecast
}

void exports_lookout_plugin_detection_method_detector_save(exports_lookout_plugin_detection_borrow_detector_t d,
                                                           detector_list_u8_t *ret) {
  ret->len = sizeof *d;
  ret->ptr = malloc(sizeof *d);
  memcpy(ret->ptr, d, sizeof *d);
}

void exports_lookout_plugin_detection_detector_destructor(detector_t *d) { free(d); }
