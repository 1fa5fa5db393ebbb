/*
 * mount / umount: mount(2) and umount2(2) for the snapshotters.
 *
 * Why not mount(8): an overlay with many layers has a lowerdir list longer than the one page
 * the kernel copies for mount options. Docker's answer is short links (l/ABC -> ../<id>/diff)
 * and a relative list "l/ABC:l/DEF" resolved against the mounting process's working
 * directory; mount(8) has no way to set that directory, so we chdir(--cwd) and mount here.
 */
#include "helper.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

/* The generic words mount(8) turns into flags; every other option goes to the filesystem. */
static const struct {
	const char *name;
	unsigned long set, clear;
} flag_words[] = {
	{"ro", MS_RDONLY, 0},         {"rw", 0, MS_RDONLY},
	{"nosuid", MS_NOSUID, 0},     {"suid", 0, MS_NOSUID},
	{"nodev", MS_NODEV, 0},       {"dev", 0, MS_NODEV},
	{"noexec", MS_NOEXEC, 0},     {"exec", 0, MS_NOEXEC},
	{"noatime", MS_NOATIME, 0},   {"relatime", MS_RELATIME, 0},
	{"nodiratime", MS_NODIRATIME, 0}, {"strictatime", MS_STRICTATIME, 0},
	{"sync", MS_SYNCHRONOUS, 0},  {"dirsync", MS_DIRSYNC, 0},
	{"bind", MS_BIND, 0},         {"rbind", MS_BIND | MS_REC, 0},
	{"remount", MS_REMOUNT, 0},
	{"private", MS_PRIVATE, 0},   {"rprivate", MS_PRIVATE | MS_REC, 0},
	{"slave", MS_SLAVE, 0},       {"rslave", MS_SLAVE | MS_REC, 0},
	{"shared", MS_SHARED, 0},     {"rshared", MS_SHARED | MS_REC, 0},
};

/*
 * Split OPTIONS at commas into flags and filesystem data. A comma preceded by a backslash
 * belongs to the value (overlay's escape for paths with commas) and is passed on as is.
 */
static char *split_options(const char *options, unsigned long *flags)
{
	char *data = xmalloc(strlen(options) + 1);
	size_t n = 0;
	const char *p = options;
	while (*p) {
		const char *start = p;
		while (*p && !(*p == ',' && (p == start || p[-1] != '\\')))
			p++;
		size_t len = (size_t)(p - start);
		bool is_flag = false;
		for (size_t i = 0; i < sizeof flag_words / sizeof flag_words[0]; i++) {
			if (strlen(flag_words[i].name) == len && strncmp(start, flag_words[i].name, len) == 0) {
				*flags = (*flags | flag_words[i].set) & ~flag_words[i].clear;
				is_flag = true;
				break;
			}
		}
		if (!is_flag && len > 0) {
			if (n > 0)
				data[n++] = ',';
			memcpy(data + n, start, len);
			n += len;
		}
		if (*p == ',')
			p++;
	}
	data[n] = '\0';
	return data;
}

int cmd_mount(int argc, char **argv)
{
	static const struct option options[] = {
		{"type", required_argument, NULL, 't'},
		{"source", required_argument, NULL, 's'},
		{"options", required_argument, NULL, 'o'},
		{"cwd", required_argument, NULL, 'C'},
		{0},
	};
	const char *type = NULL, *source = NULL, *opts = "", *cwd = NULL;
	int opt;
	while ((opt = getopt_long(argc, argv, "+", options, NULL)) != -1) {
		switch (opt) {
		case 't': type = optarg; break;
		case 's': source = optarg; break;
		case 'o': opts = optarg; break;
		case 'C': cwd = optarg; break;
		default: die("mount: invalid option (try --help)");
		}
	}
	if (optind != argc - 1)
		die("mount: expected exactly one TARGET");
	const char *target = argv[optind];
	if (!source)
		die("mount: --source is required");

	unsigned long flags = 0;
	char *data = split_options(opts, &flags);
	if (!type && !(flags & (MS_BIND | MS_REMOUNT)))
		die("mount: --type is required");

	/*
	 * The kernel copies at most one page of options and silently cuts the rest: a truncated
	 * lowerdir list would mount the wrong stack, so refuse instead.
	 */
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	if (strlen(data) >= page)
		die("mount %s: options are %zu bytes, more than the kernel accepts (%zu): use shorter "
		    "(relative) layer paths", target, strlen(data), page - 1);

	if (cwd && chdir(cwd) < 0)
		die_errno("mount: chdir %s", cwd);
	if (mount(source, target, type, flags, *data ? data : NULL) < 0) {
		int errnum = errno;
		/* Overlay explains EINVAL only in the kernel log. */
		const char *hint = errnum == EINVAL && type && strcmp(type, "overlay") == 0 ? " (see dmesg)" : "";
		die("mount %s on %s (type %s): %s%s", source, target, type ? type : "bind", strerror(errnum), hint);
	}
	/* As mount(8): a bind ignores MS_RDONLY, so make it read-only with a remount. */
	if ((flags & MS_BIND) && (flags & MS_RDONLY) && !(flags & MS_REMOUNT)) {
		if (mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | (flags & ~MS_REC), NULL) < 0)
			die_errno("mount: make %s read-only", target);
	}
	free(data);
	return 0;
}

int cmd_umount(int argc, char **argv)
{
	static const struct option options[] = {
		{"detach", no_argument, NULL, 'l'},
		{0},
	};
	int flags = UMOUNT_NOFOLLOW;
	int opt;
	while ((opt = getopt_long(argc, argv, "+", options, NULL)) != -1) {
		switch (opt) {
		case 'l': flags |= MNT_DETACH; break;
		default: die("umount: invalid option (try --help)");
		}
	}
	if (optind != argc - 1)
		die("umount: expected exactly one TARGET");
	if (umount2(argv[optind], flags) < 0)
		die_errno("umount %s", argv[optind]);
	return 0;
}
