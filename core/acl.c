/*
 * POSIX ACLs in their extended-attribute form.  See acl.h for the layout;
 * the rules are those of the kernel's fs/posix_acl.c, function by
 * function (posix_acl_valid, posix_acl_equiv_mode, __posix_acl_chmod,
 * posix_acl_create_masq).  Fields are read and written one at a time,
 * little-endian, never through a cast of the buffer.
 */
#include "core/acl.h"

#include <errno.h>
#include <sys/stat.h>

#define ACL_VERSION   2
#define HEADER        4
#define ENTRY         8

#define TAG_USER_OBJ  0x01
#define TAG_USER      0x02
#define TAG_GROUP_OBJ 0x04
#define TAG_GROUP     0x08
#define TAG_MASK      0x10
#define TAG_OTHER     0x20

#define RWX           07

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static size_t count(size_t size)
{
	return (size - HEADER) / ENTRY;
}

static uint16_t tag(const uint8_t *v, size_t i)
{
	return get16(v + HEADER + i * ENTRY);
}

static uint16_t perm(const uint8_t *v, size_t i)
{
	return get16(v + HEADER + i * ENTRY + 2);
}

static uint32_t id(const uint8_t *v, size_t i)
{
	return get32(v + HEADER + i * ENTRY + 4);
}

static void set_perm(uint8_t *v, size_t i, uint16_t p)
{
	put16(v + HEADER + i * ENTRY + 2, p);
}

int acl_check(const uint8_t *v, size_t size)
{
	/* Where in the kernel's order of entries the walk is. */
	enum { S_UOBJ, S_USER, S_GROUP, S_OTHER, S_DONE } state = S_UOBJ;
	bool needs_mask = false;

	if (size < HEADER || (size - HEADER) % ENTRY != 0)
		return -EINVAL;
	/* As posix_acl_from_xattr: a version it does not know is unsupported. */
	if (get32(v) != ACL_VERSION)
		return -EOPNOTSUPP;
	if (count(size) == 0)
		return 0;
	for (size_t i = 0; i < count(size); i++) {
		uint16_t t = tag(v, i);
		bool ok;

		switch (t) {
		case TAG_USER_OBJ:
			ok = state == S_UOBJ;
			state = S_USER;
			break;
		case TAG_USER:
		case TAG_GROUP:
			/* An id of -1 is no one: make_kuid() finds it unmapped. */
			ok = state == (t == TAG_USER ? S_USER : S_GROUP) && id(v, i) != UINT32_MAX;
			needs_mask = true;
			break;
		case TAG_GROUP_OBJ:
			ok = state == S_USER;
			state = S_GROUP;
			break;
		case TAG_MASK:
			ok = state == S_GROUP;
			state = S_OTHER;
			break;
		case TAG_OTHER:
			ok = state == S_OTHER || (state == S_GROUP && !needs_mask);
			state = S_DONE;
			break;
		default:
			ok = false;
			break;
		}
		if (!ok || (perm(v, i) & ~RWX))
			return -EINVAL;
	}
	return state == S_DONE ? 0 : -EINVAL;
}

bool acl_is_empty(const uint8_t *v, size_t size)
{
	(void)v;
	return count(size) == 0;
}

bool acl_equiv_mode(const uint8_t *v, size_t size, mode_t *mode)
{
	bool not_equiv = false;
	mode_t m = 0;

	for (size_t i = 0; i < count(size); i++) {
		mode_t p = perm(v, i) & RWX;

		switch (tag(v, i)) {
		case TAG_USER_OBJ:
			m |= p << 6;
			break;
		case TAG_GROUP_OBJ:
			m |= p << 3;
			break;
		case TAG_OTHER:
			m |= p;
			break;
		case TAG_MASK:
			/* The mask, which comes after GROUP_OBJ, is the group class. */
			m = (m & ~(mode_t)S_IRWXG) | p << 3;
			not_equiv = true;
			break;
		default:
			not_equiv = true;
			break;
		}
	}
	*mode = (*mode & ~(mode_t)(S_IRWXU | S_IRWXG | S_IRWXO)) | m;
	return !not_equiv;
}

/*
 * The entry that holds an ACL's group class: its mask when it has one,
 * else its owning group's entry (SIZE_MAX for neither).
 */
static size_t group_class(const uint8_t *v, size_t size)
{
	size_t g = SIZE_MAX;

	for (size_t i = 0; i < count(size); i++) {
		if (tag(v, i) == TAG_MASK)
			return i;
		if (tag(v, i) == TAG_GROUP_OBJ)
			g = i;
	}
	return g;
}

void acl_chmod(uint8_t *v, size_t size, mode_t mode)
{
	size_t g = group_class(v, size);

	for (size_t i = 0; i < count(size); i++) {
		if (tag(v, i) == TAG_USER_OBJ)
			set_perm(v, i, (uint16_t)((mode & S_IRWXU) >> 6));
		else if (tag(v, i) == TAG_OTHER)
			set_perm(v, i, (uint16_t)(mode & S_IRWXO));
	}
	if (g != SIZE_MAX)
		set_perm(v, g, (uint16_t)((mode & S_IRWXG) >> 3));
}

bool acl_create_masq(uint8_t *v, size_t size, mode_t *mode)
{
	size_t g = group_class(v, size);
	bool not_equiv = false;
	mode_t m = *mode;

	for (size_t i = 0; i < count(size); i++) {
		uint16_t p = perm(v, i);

		switch (tag(v, i)) {
		case TAG_USER_OBJ:
			p &= (uint16_t)((m >> 6) & RWX);
			set_perm(v, i, p);
			m &= (mode_t)(p << 6) | ~(mode_t)S_IRWXU;
			break;
		case TAG_OTHER:
			p &= (uint16_t)(m & RWX);
			set_perm(v, i, p);
			m &= (mode_t)p | ~(mode_t)S_IRWXO;
			break;
		case TAG_GROUP_OBJ:
			break;
		default:
			/* Named entries and a mask: a mode cannot say this. */
			not_equiv = true;
			break;
		}
	}
	/* The group class is masked last, as posix_acl_create_masq does. */
	if (g != SIZE_MAX) {
		uint16_t p = perm(v, g) & (uint16_t)((m >> 3) & RWX);

		set_perm(v, g, p);
		m &= (mode_t)(p << 3) | ~(mode_t)S_IRWXG;
	}
	*mode = (*mode & ~(mode_t)(S_IRWXU | S_IRWXG | S_IRWXO)) | (m & (S_IRWXU | S_IRWXG | S_IRWXO));
	return not_equiv;
}
