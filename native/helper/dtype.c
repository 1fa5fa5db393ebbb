/*
 * supports-dtype DIR: exit 0 if readdir on DIR's filesystem fills in d_type, 1 if it
 * returns DT_UNKNOWN (xfs formatted with ftype=0, some network filesystems), 2 on error.
 *
 * Overlayfs needs d_type to find whiteouts without a stat per entry and misbehaves without
 * it; Docker checks this before choosing overlay2, and so does tsbuild.
 */
#include "helper.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cmd_supports_dtype(int argc, char **argv)
{
	die_to(STDERR_FILENO, 2);
	const char *dir = single_operand(argc, argv, "supports-dtype DIR");
	size_t len = strlen(dir);
	char *tmp = xmalloc(len + 32);
	snprintf(tmp, len + 32, "%s/.tsbuild-dtype-XXXXXX", dir);
	int fd = mkstemp(tmp);
	if (fd < 0)
		die_errno("supports-dtype: create a file in %s", dir);
	close(fd);
	const char *name = strrchr(tmp, '/') + 1;

	/* A regular file must read back as DT_REG; DT_UNKNOWN means the filesystem does not say. */
	int result = -1;
	int errnum = 0;
	DIR *d = opendir(dir);
	if (!d) {
		errnum = errno;
	} else {
		struct dirent *e;
		errno = 0;
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, name) == 0) {
				result = e->d_type != DT_UNKNOWN ? 0 : 1;
				break;
			}
		}
		errnum = errno;
		closedir(d);
	}
	if (unlink(tmp) < 0)
		die_errno("supports-dtype: remove %s", tmp);
	if (result < 0) {
		errno = errnum;
		if (errnum)
			die_errno("supports-dtype: read %s", dir);
		die("supports-dtype: %s: the test file did not show up in readdir", dir);
	}
	return result;
}
