/* Durations as operators write them: `90`, `90s`, `10m`, `1h`, `1d`. A bare
 * number is seconds. Digits only (no sign, no space, no fraction), then at
 * most one unit letter; 0 is not a duration. One parser for the whole
 * appliance: the CLI checks a duration before it sends it and the daemon
 * checks it again.
 *
 * Error convention: 0 or negative errno (-EINVAL for garbage or 0, -ERANGE
 * above max_seconds). Thread-safe.
 */
#ifndef HVGATE_APPLIANCE_DURATION_H
#define HVGATE_APPLIANCE_DURATION_H

#include <stdint.h>

/* Parses `text` into *seconds (1..max_seconds); *seconds is untouched on error. */
int duration_parse(const char *text, uint64_t max_seconds, uint64_t *seconds);

#endif
