/*
 * Extended attributes of one inode.  See xattr.h.
 */
#include "core/xattr.h"

#include "core/alloc.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

struct seg_xattr {
	struct seg_xattr *next;
	size_t size;        /* of the value */
	char *value;        /* points into name[], after the name's NUL */
	char name[];
};

/*
 * What tmpfs's simple_xattr_space() charges an attribute beside its name
 * and value: a fixed 40 (its struct simple_xattr, rounded the same on
 * every architecture).  Measured: on a tmpfs of 2048 bytes of inode space,
 * 41 empty attributes of 9-byte names fit, 42 do not.
 */
#define XATTR_BOOKKEEPING 40

struct seg_xattr *xa_new(const char *name, const void *value, size_t size)
{
	size_t nlen = strlen(name);
	struct seg_xattr *x;

	if (size > SIZE_MAX - sizeof(*x) - nlen - 1)
		return NULL;
	x = seg_malloc(sizeof(*x) + nlen + 1 + size);
	if (x == NULL)
		return NULL;
	x->next = NULL;
	x->size = size;
	memcpy(x->name, name, nlen + 1);
	x->value = x->name + nlen + 1;
	if (size && value != NULL)
		memcpy(x->value, value, size);
	return x;
}

void *xa_data(struct seg_xattr *x)
{
	return x->value;
}

void *xa_value(struct seg_xattr *head, const char *name, size_t *size)
{
	for (; head != NULL; head = head->next)
		if (strcmp(head->name, name) == 0) {
			*size = head->size;
			return head->value;
		}
	return NULL;
}

void xa_free(struct seg_xattr *x)
{
	seg_free(x);
}

size_t xa_space(const char *name, size_t size)
{
	return XATTR_BOOKKEEPING + strlen(name) + size;
}

size_t xa_size(const struct seg_xattr *x)
{
	return xa_space(x->name, x->size);
}

static struct seg_xattr **find(struct seg_xattr **head, const char *name)
{
	while (*head != NULL && strcmp((*head)->name, name) != 0)
		head = &(*head)->next;
	return head;
}

int xa_set(struct seg_xattr **head, struct seg_xattr *x, int flags, struct seg_xattr **old)
{
	struct seg_xattr **pp = find(head, x->name);

	if (*pp != NULL && (flags & XA_CREATE))
		return -EEXIST;
	if (*pp == NULL && (flags & XA_REPLACE))
		return -ENODATA;
	*old = *pp;
	x->next = *pp != NULL ? (*pp)->next : NULL;
	*pp = x;
	return 0;
}

int xa_remove(struct seg_xattr **head, const char *name, struct seg_xattr **old)
{
	struct seg_xattr **pp = find(head, name);

	if (*pp == NULL)
		return -ENODATA;
	*old = *pp;
	*pp = (*pp)->next;
	(*old)->next = NULL;
	return 0;
}

int xa_get(const struct seg_xattr *head, const char *name, void *buf, size_t size,
	   size_t *len)
{
	const struct seg_xattr *x = head;

	while (x != NULL && strcmp(x->name, name) != 0)
		x = x->next;
	if (x == NULL)
		return -ENODATA;
	if (size != 0 && size < x->size)
		return -ERANGE;
	if (size != 0 && x->size != 0)
		memcpy(buf, x->value, x->size);
	*len = x->size;
	return 0;
}

int xa_list(const struct seg_xattr *head, char *buf, size_t size, size_t *len,
	    bool (*show)(const char *name, void *arg), void *arg)
{
	size_t at = 0;

	for (const struct seg_xattr *x = head; x != NULL; x = x->next) {
		size_t n = strlen(x->name) + 1;

		if (show != NULL && !show(x->name, arg))
			continue;
		if (size != 0) {
			if (n > size - at)
				return -ERANGE;
			memcpy(buf + at, x->name, n);
		}
		at += n;
	}
	*len = at;
	return 0;
}

struct seg_xattr *xa_take_all(struct seg_xattr **head)
{
	struct seg_xattr *all = *head;

	*head = NULL;
	return all;
}

void xa_free_all(struct seg_xattr *head)
{
	while (head != NULL) {
		struct seg_xattr *next = head->next;

		seg_free(head);
		head = next;
	}
}

size_t xa_space_all(const struct seg_xattr *head, bool (*charged)(const char *name))
{
	size_t n = 0;

	for (; head != NULL; head = head->next)
		if (charged == NULL || charged(head->name))
			n += xa_size(head);
	return n;
}

const struct seg_xattr *xa_next(const struct seg_xattr *x)
{
	return x != NULL ? x->next : NULL;
}

const char *xa_name(const struct seg_xattr *x)
{
	return x->name;
}

const void *xa_bytes(const struct seg_xattr *x)
{
	return x->value;
}

size_t xa_value_size(const struct seg_xattr *x)
{
	return x->size;
}
