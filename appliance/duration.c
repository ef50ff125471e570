/* Durations (duration.h). */
#include <errno.h>
#include <stddef.h>

#include "appliance/duration.h"

static uint64_t unit_seconds(char unit)
{
	switch (unit) {
	case 0:
	case 's': return 1;
	case 'm': return 60;
	case 'h': return 3600;
	case 'd': return 86400;
	default: return 0;
	}
}

int duration_parse(const char *text, uint64_t max_seconds, uint64_t *seconds)
{
	uint64_t value = 0, unit;
	const char *p = text;

	if (!p || *p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (value > (UINT64_MAX - 9) / 10)
			return -ERANGE;
		value = value * 10 + (uint64_t)(*p - '0');
	}
	unit = unit_seconds(*p);
	if (!unit || (*p && p[1]))
		return -EINVAL;
	if (!value)
		return -EINVAL;
	if (value > max_seconds / unit)
		return -ERANGE;
	*seconds = value * unit;
	return 0;
}
