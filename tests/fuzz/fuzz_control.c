/* Fuzz target: the control-request parser (one line of the control socket)
 * and the JSON writer that echoes what it parsed. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "appliance/control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json *req;
	struct json_buf out;
	char err[256];

	if (size > CTL_LINE_MAX)
		return 0;
	if (ctl_parse_request((const char *)data, size, &req, err, sizeof(err)))
		return 0;
	/* What was accepted must serialize and parse again. */
	json_buf_init(&out);
	json_value(&out, req);
	if (!out.oom) {
		struct json *again;
		if (json_parse(out.s, out.len, &again, err, sizeof(err)))
			__builtin_trap();
		json_free(again);
	}
	json_buf_free(&out);
	json_free(req);
	return 0;
}
