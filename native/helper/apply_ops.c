/*
 * apply-ops: the filesystem operations Node has no call for (mknod, lsetxattr), in batches,
 * read from stdin. Used when unpacking layers: whiteouts (c 0/0), fifos, devices, the
 * overlay opaque marker, PAX xattrs.
 *
 * Input: a sequence of ops, every field terminated by a NUL byte, fixed arity per op:
 *   mknod    PATH TYPE(c|b|p) MODE MAJOR MINOR UID GID      numbers in decimal
 *   setxattr PATH NAME LENGTH  then exactly LENGTH raw bytes of value (binary-safe)
 *   copyxattr FROM PATH NAME   FROM's attribute NAME onto PATH, if FROM has it (COPY keeps
 *                              security.capability, as Docker's and BuildKit's COPY do)
 * Paths are used as given. The last component is never followed: mknod and lchown do not
 * follow, and lsetxattr sets the attribute on a symlink itself, not on its target.
 * The first failure stops the batch; earlier ops stay applied.
 */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

/* The kernel's limit on one xattr value (XATTR_SIZE_MAX in linux/limits.h). */
#define MAX_XATTR_VALUE 65536

static char *field_buf[8];
static size_t field_cap[8];
static unsigned long long op_index;

/* Field I of the current op. At an op boundary, EOF means "done" and returns NULL. */
static char *read_field(int i, const char *what, bool eof_ok)
{
	ssize_t n = getdelim(&field_buf[i], &field_cap[i], '\0', stdin);
	if (n < 0) {
		if (ferror(stdin))
			die_errno("apply-ops: read");
		if (eof_ok)
			return NULL;
		die("apply-ops: input ends in the middle of op #%llu (missing %s)", op_index, what);
	}
	if (n == 0 || field_buf[i][n - 1] != '\0')
		die("apply-ops: input ends in the middle of op #%llu (%s not NUL-terminated)", op_index, what);
	return field_buf[i];
}

static void apply_mknod(void)
{
	const char *path = read_field(1, "path", false);
	const char *type = read_field(2, "type", false);
	unsigned long long mode = parse_number(read_field(3, "mode", false), "apply-ops: mknod mode", 07777);
	unsigned long long maj = parse_number(read_field(4, "major", false), "apply-ops: mknod major", 0xfff);
	unsigned long long min = parse_number(read_field(5, "minor", false), "apply-ops: mknod minor", 0xfffff);
	uid_t uid = (uid_t)parse_number(read_field(6, "uid", false), "apply-ops: mknod uid", 4294967294ULL);
	gid_t gid = (gid_t)parse_number(read_field(7, "gid", false), "apply-ops: mknod gid", 4294967294ULL);

	mode_t fmt;
	if (strcmp(type, "c") == 0)
		fmt = S_IFCHR;
	else if (strcmp(type, "b") == 0)
		fmt = S_IFBLK;
	else if (strcmp(type, "p") == 0)
		fmt = S_IFIFO;
	else
		die("apply-ops: mknod %s: unknown type '%s' (expected c, b or p)", path, type);

	if (mknod(path, fmt | (mode_t)mode, makedev((unsigned)maj, (unsigned)min)) < 0)
		die_errno("apply-ops: mknod %s", path);
	if (lchown(path, uid, gid) < 0)
		die_errno("apply-ops: lchown %s", path);
	/* chown clears setuid/setgid on anything but a directory, even for root: put them back. */
	if ((mode & 06000) && fchmodat(AT_FDCWD, path, (mode_t)mode, 0) < 0)
		die_errno("apply-ops: chmod %s", path);
}

static void apply_setxattr(void)
{
	const char *path = read_field(1, "path", false);
	const char *name = read_field(2, "name", false);
	unsigned long long len = parse_number(read_field(3, "length", false), "apply-ops: setxattr length",
					      MAX_XATTR_VALUE);
	char *value = xmalloc((size_t)len);
	if (len > 0 && fread(value, 1, (size_t)len, stdin) != (size_t)len)
		die("apply-ops: input ends in the middle of op #%llu (value of %s)", op_index, name);
	if (lsetxattr(path, name, value, (size_t)len, 0) < 0)
		die_errno("apply-ops: setxattr %s %s", name, path);
	free(value);
}

static void apply_copyxattr(void)
{
	const char *from = read_field(1, "from", false);
	const char *path = read_field(2, "path", false);
	const char *name = read_field(3, "name", false);
	char value[MAX_XATTR_VALUE];
	ssize_t len = lgetxattr(from, name, value, sizeof value);
	if (len < 0) {
		if (errno == ENODATA || errno == ENOTSUP)
			return; /* nothing to copy */
		die_errno("apply-ops: getxattr %s %s", name, from);
	}
	if (lsetxattr(path, name, value, (size_t)len, 0) < 0)
		die_errno("apply-ops: setxattr %s %s", name, path);
}

int cmd_apply_ops(int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		die("apply-ops: takes no arguments; ops are read from stdin");
	/* Modes are applied exactly as given, not filtered by the caller's umask. */
	umask(0);
	for (op_index = 1;; op_index++) {
		const char *op = read_field(0, "op", true);
		if (!op)
			break;
		if (strcmp(op, "mknod") == 0)
			apply_mknod();
		else if (strcmp(op, "setxattr") == 0)
			apply_setxattr();
		else if (strcmp(op, "copyxattr") == 0)
			apply_copyxattr();
		else
			die("apply-ops: op #%llu: unknown op '%s'", op_index, op);
	}
	return 0;
}
