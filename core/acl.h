/*
 * POSIX ACLs in their extended-attribute form (system.posix_acl_access and
 * system.posix_acl_default), and the rules that tie them to a mode, as the
 * kernel's fs/posix_acl.c applies them for tmpfs.
 *
 * The form (all fields little-endian):
 *
 *   u32 version = 2
 *   then entries of 8 bytes: u16 tag, u16 perm (rwx: 4 2 1), u32 id
 *
 *   tag  USER_OBJ 0x01  USER 0x02  GROUP_OBJ 0x04  GROUP 0x08
 *        MASK 0x10  OTHER 0x20          (id is -1 but for USER and GROUP)
 *
 * e.g. "u::rw-,u:65534:r--,g::r--,m::r--,o::---" is
 *
 *   02 00 00 00 | 01 00 06 00 ff ff ff ff | 02 00 04 00 fe ff 00 00 |
 *   04 00 04 00 ff ff ff ff | 10 00 04 00 ff ff ff ff | 20 00 00 00 ff ff ff ff
 *
 * The kernel checks what it hands us, but the checks here do not rely on
 * it.  Functions that change an ACL do so in place: a mode never changes
 * its size.
 */
#ifndef SEGFS_CORE_ACL_H
#define SEGFS_CORE_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ACL_XATTR_ACCESS  "system.posix_acl_access"
#define ACL_XATTR_DEFAULT "system.posix_acl_default"

/*
 * 0 for a well-formed ACL (version 2, whole entries, the entries in the
 * kernel's order, one of each *_OBJ and OTHER, a MASK when there are
 * USER or GROUP entries, no id -1 in those), -EOPNOTSUPP for another
 * version, -EINVAL otherwise: what setxattr(2) answers on tmpfs.  An ACL
 * with no entries (a version alone) is well-formed: it stands for "none".
 */
int acl_check(const uint8_t *v, size_t size);

/* Whether a well-formed ACL has no entries. */
bool acl_is_empty(const uint8_t *v, size_t size);

/*
 * The permission bits an ACL gives, into *mode's 0777 (the rest kept), as
 * posix_acl_equiv_mode: true when the ACL says nothing a mode cannot (only
 * USER_OBJ, GROUP_OBJ and OTHER): it need not be kept then.  With a MASK
 * the group bits are the mask's.
 */
bool acl_equiv_mode(const uint8_t *v, size_t size, mode_t *mode);

/* chmod of a file with this access ACL (posix_acl_chmod), in place. */
void acl_chmod(uint8_t *v, size_t size, mode_t mode);

/*
 * A new inode's access ACL from its directory's default ACL
 * (posix_acl_create_masq), in place: the entries are masked by *mode,
 * and *mode's 0777 becomes what the ACL then gives.  Returns true when
 * the result must be kept as an ACL (false: the mode says it all).
 */
bool acl_create_masq(uint8_t *v, size_t size, mode_t *mode);

#endif
