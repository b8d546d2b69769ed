#include "core/name.h"

#include <errno.h>
#include <string.h>

int seg_name_check(const char *name, size_t *len)
{
	/* strnlen bounds the scan: a name one byte too long is enough to refuse. */
	size_t n = strnlen(name, SEG_NAME_MAX + 1);

	if (n == 0)
		return -EINVAL;
	if (n > SEG_NAME_MAX)
		return -ENAMETOOLONG;
	if (memchr(name, '/', n) != NULL)
		return -EINVAL;
	if (name[0] == '.' && (n == 1 || (n == 2 && name[1] == '.')))
		return -EINVAL;
	if (len != NULL)
		*len = n;
	return 0;
}
