/*
 * reap --into DIR --leases DIR PATH...: remove directory trees after the caller has exited.
 *
 * A build interrupted by Ctrl-C must give the terminal back at once, but removing the files a
 * half-done step made (200,000 of them take a second and a half of kernel time on ext4) cannot be
 * made fast. So tsbuild hands them to this process, started in its own session, and exits:
 *
 *   1. an empty lease `DIR/<our pid>-<our start time>` says that we hold store files: if we are
 *      killed, the next tsbuild command finds our dead lease and repairs, removing what is left;
 *   2. each PATH is renamed to `<--into>/removing-<our pid>-<n>` (the store's tmp/, on the same
 *      filesystem): the store's convention for temporary names (src/store/leases.ts ownerPid),
 *      so it now names us as its owner and no one takes it for a snapshot (if one cannot be
 *      moved, those moved go back, the lease goes, and we fail: the caller removes them itself);
 *   3. "ok" on stdout tells the caller the paths are ours (it waits for nothing else) and stdout
 *      is closed;
 *   4. the trees are removed (never crossing into another filesystem, never following a
 *      symlink), then the lease. A tree that cannot be removed keeps the lease, for the repair.
 */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *reap_usage = "reap --into DIR --leases DIR PATH...";

/* Field 22 of /proc/self/stat, as src/store/leases.ts reads it for every lease. */
static unsigned long long start_time(void)
{
	char buf[1024];
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die_errno("reap: /proc/self/stat");
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		die("reap: /proc/self/stat is empty");
	buf[n] = '\0';
	/* The command name (field 2) may hold spaces and parentheses: count from the last ')'. */
	char *p = strrchr(buf, ')');
	if (p == NULL)
		die("reap: /proc/self/stat has no command name");
	p++;
	for (int field = 2; field < 22; field++) {
		p = strchr(p + 1, ' ');
		if (p == NULL)
			die("reap: /proc/self/stat is short");
	}
	return strtoull(p + 1, NULL, 10);
}

/* Whether every entry went; nftw goes on past a failure, so that as much as possible goes. */
static bool removed_all = true;

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DNR) /* a directory we may not read: make it readable, then try again */
		chmod(path, 0700);
	if (remove(path) != 0 && errno != ENOENT)
		removed_all = false;
	return 0;
}

int cmd_reap(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"into", required_argument, NULL, 'i'}, {"leases", required_argument, NULL, 'l'}, {NULL, 0, NULL, 0}};
	const char *leases = NULL, *into = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
		if (c == 'l')
			leases = optarg;
		else if (c == 'i')
			into = optarg;
		else
			die("usage: %s", reap_usage);
	}
	if (leases == NULL || into == NULL || optind >= argc)
		die("usage: %s", reap_usage);

	/* The caller's Ctrl-C or hangup is not ours: we exist to finish after it. */
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);

	/* The lease first: from the first rename on, what we hold is ours to answer for. */
	char lease[4096];
	snprintf(lease, sizeof lease, "%s/%ld-%llu", leases, (long)getpid(), start_time());
	int fd = open(lease, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		die_errno("reap: lease %s", lease);
	close(fd);

	int count = argc - optind;
	char **owned = xmalloc((size_t)count * sizeof *owned);
	for (int i = 0; i < count; i++) {
		size_t len = strlen(into) + 64;
		owned[i] = xmalloc(len);
		snprintf(owned[i], len, "%s/removing-%ld-%06d", into, (long)getpid(), i);
		if (rename(argv[optind + i], owned[i]) != 0) {
			/* Another filesystem, say: give back what we took, and the caller removes it all. */
			int saved = errno;
			for (int k = i - 1; k >= 0; k--)
				rename(owned[k], argv[optind + k]);
			unlink(lease);
			errno = saved;
			die_errno("reap: rename %s to %s", argv[optind + i], owned[i]);
		}
	}

	if (puts("ok") == EOF || fflush(stdout) != 0)
		die_errno("reap: stdout");
	fclose(stdout);

	for (int i = 0; i < count; i++) {
		if (nftw(owned[i], remove_entry, 64, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) != 0)
			removed_all = false;
		free(owned[i]);
	}
	free(owned);
	if (removed_all)
		unlink(lease);
	return removed_all ? 0 : EXIT_HELPER;
}
