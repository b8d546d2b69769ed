/*
 * libFuzzer target: sl_decode on arbitrary segment bytes.
 *
 * Whatever it accepts must be a list CPython could read, so: its text
 * parses back to the same values, and it encodes and decodes to the same
 * values.  Storing it in place into its own bytes succeeds exactly when
 * every value fits its slot (another writer can leave a None in a slot
 * too small to store one), reads back the same when it does, and writes
 * nothing when it does not.  Everything else must be -EBADMSG, never a
 * crash or a read out of bounds (ASan and UBSan watch).
 */
#include <errno.h>
#include <stdint.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sl_list *l, *back;
	uint8_t *copy;
	bool fit = true;
	int rc = sl_decode(data, size, &l);

	REQUIRE(rc == 0 || rc == -EBADMSG);
	if (rc != 0)
		return 0;
	check_round_trips(l);
	copy = malloc(size ? size : 1);
	REQUIRE(copy != NULL);
	memcpy(copy, data, size);
	for (size_t i = 0; i < l->n; i++)
		fit = fit && sl_fits(&l->v[i], l->slot[i]);
	rc = sl_assign_all(copy, size, l);
	if (fit) {
		REQUIRE(rc == 0);
		REQUIRE(sl_decode(copy, size, &back) == 0);
		REQUIRE(same_list(l, back));
		sl_list_free(back);
	} else {
		REQUIRE(rc == -ENOSPC);
		REQUIRE(memcmp(copy, data, size) == 0);
	}
	free(copy);
	sl_list_free(l);
	return 0;
}
