/*
 * mount / umount: mount(2) and umount2(2) for the snapshotters.
 *
 * Why not mount(8): an overlay with many layers has a lowerdir list longer than the one page
 * the kernel copies for mount options. Docker's answer is short links (l/ABC -> ../<id>/diff)
 * and a relative list "l/ABC:l/DEF" resolved against the mounting process's working
 * directory; mount(8) has no way to set that directory, so we chdir(--cwd) and mount here.
 *
 * Past roughly 128 layers even the short list does not fit. With --lowerdir (repeated) the
 * layers go one by one through the new mount API (fsopen + fsconfig "lowerdir+", Linux 6.8+),
 * which has no limit on the whole chain, up to overlayfs's own 500.
 */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
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
 * The next comma-separated option of *P, or NULL at the end. A comma preceded by a backslash
 * belongs to the value (overlay's escape for paths with commas) and is passed on as is.
 */
static const char *next_option(const char **p, size_t *len)
{
	while (**p == ',')
		(*p)++;
	if (**p == '\0')
		return NULL;
	const char *start = *p;
	while (**p && !(**p == ',' && (*p)[-1] != '\\'))
		(*p)++;
	*len = (size_t)(*p - start);
	return start;
}

/* Split OPTIONS into mount flags (the words above) and the filesystem's own options. */
static char *split_options(const char *options, unsigned long *flags)
{
	char *data = xmalloc(strlen(options) + 1);
	size_t n = 0, len;
	const char *p = options, *opt;
	while ((opt = next_option(&p, &len)) != NULL) {
		bool is_flag = false;
		for (size_t i = 0; i < sizeof flag_words / sizeof flag_words[0]; i++) {
			if (strlen(flag_words[i].name) == len && strncmp(opt, flag_words[i].name, len) == 0) {
				*flags = (*flags | flag_words[i].set) & ~flag_words[i].clear;
				is_flag = true;
				break;
			}
		}
		if (!is_flag) {
			if (n > 0)
				data[n++] = ',';
			memcpy(data + n, opt, len);
			n += len;
		}
	}
	data[n] = '\0';
	return data;
}

/* What the filesystem logged on its context ("e overlay: ..."): the real reason behind EINVAL. */
static const char *context_log(int fsfd)
{
	static char log[2048];
	size_t len = 0;
	char line[512];
	ssize_t n;
	log[0] = '\0';
	while ((n = read(fsfd, line, sizeof line - 1)) > 0 && len < sizeof log - 1) {
		line[n] = '\0';
		/* Each message starts with its severity letter and a space. */
		int m = snprintf(log + len, sizeof log - len, " (%s)", n > 2 ? line + 2 : line);
		len = m > 0 && (size_t)m < sizeof log - len ? len + (size_t)m : sizeof log - 1;
	}
	return log;
}

static void set_string(int fsfd, const char *key, const char *value)
{
	if (fsconfig(fsfd, FSCONFIG_SET_STRING, key, value, 0) < 0) {
		int errnum = errno;
		die("mount: overlay option %s=%s: %s%s", key, value, strerror(errnum), context_log(fsfd));
	}
}

/* Mount flags as attributes of a new-API mount; the rest has no meaning for a fresh overlay. */
static unsigned int mount_attributes(unsigned long flags)
{
	static const struct {
		unsigned long flag;
		unsigned int attr;
	} map[] = {
		{MS_RDONLY, MOUNT_ATTR_RDONLY},     {MS_NOSUID, MOUNT_ATTR_NOSUID},
		{MS_NODEV, MOUNT_ATTR_NODEV},       {MS_NOEXEC, MOUNT_ATTR_NOEXEC},
		{MS_NOATIME, MOUNT_ATTR_NOATIME},   {MS_NODIRATIME, MOUNT_ATTR_NODIRATIME},
		{MS_STRICTATIME, MOUNT_ATTR_STRICTATIME}, {MS_RELATIME, MOUNT_ATTR_RELATIME},
	};
	unsigned int attrs = 0;
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
		if (flags & map[i].flag) {
			attrs |= map[i].attr;
			flags &= ~map[i].flag;
		}
	}
	if (flags)
		die("mount: --lowerdir cannot be combined with bind, remount, sync or propagation options");
	return attrs;
}

/* An overlay with its lower layers passed one by one (top first), relative to the cwd. */
static void mount_layers(const char *source, const char *target, char **lowers, size_t nlowers,
			 const char *upper, const char *work, const char *data, unsigned long flags)
{
	unsigned int attrs = mount_attributes(flags);
	int fsfd = fsopen("overlay", FSOPEN_CLOEXEC);
	if (fsfd < 0)
		die_errno("mount: fsopen overlay");
	set_string(fsfd, "source", source);
	for (size_t i = 0; i < nlowers; i++) {
		if (fsconfig(fsfd, FSCONFIG_SET_STRING, "lowerdir+", lowers[i], 0) < 0) {
			int errnum = errno;
			const char *log = context_log(fsfd);
			die("mount: overlay lower layer %zu (%s): %s%s%s", i + 1, lowers[i], strerror(errnum), log,
			    errnum == EINVAL && !*log ? " (layer-by-layer lowerdir needs Linux 6.8 or later)" : "");
		}
	}
	if (upper)
		set_string(fsfd, "upperdir", upper);
	if (work)
		set_string(fsfd, "workdir", work);
	size_t len;
	const char *p = data, *opt;
	while ((opt = next_option(&p, &len)) != NULL) {
		char *kv = strndup(opt, len);
		if (!kv)
			die("out of memory");
		char *eq = strchr(kv, '=');
		if (eq) {
			*eq = '\0';
			set_string(fsfd, kv, eq + 1);
		} else if (fsconfig(fsfd, FSCONFIG_SET_FLAG, kv, NULL, 0) < 0) {
			int errnum = errno;
			die("mount: overlay option %s: %s%s", kv, strerror(errnum), context_log(fsfd));
		}
		free(kv);
	}
	if (fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
		int errnum = errno;
		die("mount overlay on %s: %s%s", target, strerror(errnum), context_log(fsfd));
	}
	int mfd = fsmount(fsfd, FSMOUNT_CLOEXEC, attrs);
	if (mfd < 0)
		die_errno("mount: fsmount overlay for %s", target);
	if (move_mount(mfd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		die_errno("mount overlay on %s", target);
	close(mfd);
	close(fsfd);
}

int cmd_mount(int argc, char **argv)
{
	static const struct option options[] = {
		{"type", required_argument, NULL, 't'},
		{"source", required_argument, NULL, 's'},
		{"options", required_argument, NULL, 'o'},
		{"cwd", required_argument, NULL, 'C'},
		{"lowerdir", required_argument, NULL, 'L'},
		{"upperdir", required_argument, NULL, 'U'},
		{"workdir", required_argument, NULL, 'W'},
		{0},
	};
	const char *type = NULL, *source = NULL, *opts = "", *cwd = NULL, *upper = NULL, *work = NULL;
	char **lowers = NULL;
	size_t nlowers = 0;
	int opt;
	while ((opt = getopt_long(argc, argv, "+", options, NULL)) != -1) {
		switch (opt) {
		case 't': type = optarg; break;
		case 's': source = optarg; break;
		case 'o': opts = optarg; break;
		case 'C': cwd = optarg; break;
		case 'L':
			lowers = xrealloc(lowers, (nlowers + 1) * sizeof *lowers);
			lowers[nlowers++] = optarg;
			break;
		case 'U': upper = optarg; break;
		case 'W': work = optarg; break;
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
	if ((upper || work) && !nlowers)
		die("mount: --upperdir and --workdir go with --lowerdir; otherwise put them in --options");
	if (nlowers && (!type || strcmp(type, "overlay") != 0))
		die("mount: --lowerdir is for --type overlay");

	if (cwd && chdir(cwd) < 0)
		die_errno("mount: chdir %s", cwd);
	if (nlowers) {
		mount_layers(source, target, lowers, nlowers, upper, work, data, flags);
		free(data);
		return 0;
	}

	/*
	 * The kernel copies at most one page of options and silently cuts the rest: a truncated
	 * lowerdir list would mount the wrong stack, so refuse instead.
	 */
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	if (strlen(data) >= page)
		die("mount %s: options are %zu bytes, more than the kernel accepts (%zu): use shorter "
		    "(relative) layer paths or --lowerdir", target, strlen(data), page - 1);

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
