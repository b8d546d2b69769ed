/*
 * libFuzzer target: sl_parse on arbitrary text.
 *
 * Whatever it accepts must render and parse back to the same values, and
 * encode and decode to the same values; everything else must be -EINVAL
 * with a line number inside the text, never a crash.
 */
#include <errno.h>
#include <stdint.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sl_list *l;
	size_t bad = 0, lines = 1;
	int rc = sl_parse((const char *)data, size, &l, &bad);

	REQUIRE(rc == 0 || rc == -EINVAL);
	if (rc != 0) {
		for (size_t i = 0; i < size; i++)
			lines += data[i] == '\n';
		REQUIRE(bad >= 1 && bad <= lines);
		return 0;
	}
	check_round_trips(l);
	sl_list_free(l);
	return 0;
}
