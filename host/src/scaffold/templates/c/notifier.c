// `{{name}}`: a lookout notifier. It writes one line per alert to
// lookout's log (through the host's `log`); change `notify` to deliver
// where you need. Build: `make` (see README.md).
//
// Ownership: what an export returns is freed by the generated code after
// the call, so allocate it (malloc, *_string_dup) and let go.

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen/notifier.h"

void exports_notifier_describe(notifier_plugin_info_t *ret) {
  memset(ret, 0, sizeof *ret);
  notifier_string_dup(&ret->name, "{{name}}");
  notifier_string_dup(&ret->version, "0.1.0");
  notifier_string_dup(&ret->description, "Writes each alert of a notification to lookout's log");
}

// The value of label `name`, or an empty string.
static notifier_string_t label(const lookout_plugin_types_labels_t *labels, const char *name) {
  for (size_t i = 0; i < labels->len; i++) {
    const notifier_string_t *key = &labels->ptr[i].f0;
    if (key->len == strlen(name) && memcmp(key->ptr, name, key->len) == 0) return labels->ptr[i].f1;
  }
  return (notifier_string_t){0};
}

bool exports_notifier_notify(notifier_notification_t *notification, notifier_string_t *config, uint32_t timeout_ms,
                             notifier_delivery_t *ret, notifier_plugin_error_t *err) {
  (void)timeout_ms;
  (void)err;
  char line[1024];
  for (size_t i = 0; i < notification->alerts.len; i++) {
    const lookout_plugin_types_alert_t *alert = &notification->alerts.ptr[i];
    notifier_string_t name = label(&alert->labels, "alertname");
    snprintf(line, sizeof line, "[%.*s] %.*s (receiver %.*s)", (int)alert->status.len, (const char *)alert->status.ptr,
             (int)name.len, (const char *)name.ptr, (int)notification->receiver.len,
             (const char *)notification->receiver.ptr);
    notifier_string_t message;
    notifier_string_set(&message, line);
    lookout_plugin_host_log(LOOKOUT_PLUGIN_HOST_LEVEL_WARN, &message);
  }
  memset(ret, 0, sizeof *ret);
  snprintf(line, sizeof line, "logged %zu alert(s)", notification->alerts.len);
  notifier_string_dup(&ret->message, line);
  notifier_notification_free(notification);
  notifier_string_free(config);
  return true;
}
