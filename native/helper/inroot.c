/*
 * Paths inside a root filesystem, resolved as the container would see them.
 *
 * The rootfs comes from image layers, which anyone can write: /etc may be a symlink to
 * "/../../host", a mount point may be a dangling link. Before pivot_root such links would
 * resolve against the host. openat2(RESOLVE_IN_ROOT) makes the kernel treat the rootfs fd
 * as "/" for every step of the lookup, so "..", absolute links and races cannot leave it
 * (runc reaches the same end with securejoin). Mounts are then made on /proc/self/fd/N,
 * the exact inode we resolved, not on a path that could be swapped afterwards.
 */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* "a//b/./c/../d/" -> "/a/b/d". Lexical, like Docker's filepath.Clean of container paths. */
char *clean_path(const char *path)
{
	size_t len = strlen(path);
	char *out = xmalloc(len + 2);
	size_t n = 0;
	const char *p = path;
	while (*p) {
		while (*p == '/')
			p++;
		const char *start = p;
		while (*p && *p != '/')
			p++;
		size_t clen = (size_t)(p - start);
		if (clen == 0 || (clen == 1 && start[0] == '.'))
			continue;
		if (clen == 2 && start[0] == '.' && start[1] == '.') {
			while (n > 0 && out[n - 1] != '/')
				n--;
			if (n > 0)
				n--; /* drop the separator too */
			continue;
		}
		out[n++] = '/';
		memcpy(out + n, start, clen);
		n += clen;
	}
	if (n == 0)
		out[n++] = '/';
	out[n] = '\0';
	return out;
}

int open_in_root(int rootfd, const char *path, int flags)
{
	struct open_how how = {
		.flags = (unsigned long long)(flags | O_CLOEXEC),
		/* No /proc/self/fd style jumps either: they are not symlinks RESOLVE_IN_ROOT can scope. */
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	return (int)syscall(SYS_openat2, rootfd, path, &how, sizeof how);
}

/* Split a clean absolute path into its parent (allocated) and last component (inside path). */
static char *split_parent(const char *path, const char **base)
{
	const char *slash = strrchr(path, '/');
	*base = slash + 1;
	size_t plen = slash == path ? 1 : (size_t)(slash - path); /* the parent of "/a" is "/" */
	char *parent = xmalloc(plen + 1);
	memcpy(parent, path, plen);
	parent[plen] = '\0';
	return parent;
}

/*
 * BASE exists in PARENT but does not resolve: a dangling symlink (say /var/run -> /run with
 * no /run). Create what it points to, resolved inside the root as the container will see it,
 * like runc's securejoin does. Anything else that exists but does not resolve is left for
 * the caller's reopen to report.
 */
static void create_link_target(int rootfd, int pfd, const char *parent, const char *base, bool directory,
			       mode_t mode)
{
	static int hops;
	char target[4096];
	ssize_t n = readlinkat(pfd, base, target, sizeof target - 1);
	if (n < 0)
		return;
	target[n] = '\0';
	if (++hops > 40)
		die("%s/%s in the root filesystem: too many levels of symbolic links", parent, base);
	char *joined = xmalloc(strlen(parent) + (size_t)n + 2);
	sprintf(joined, "%s/%s", target[0] == '/' ? "" : parent, target);
	char *resolved = clean_path(joined);
	close(ensure_in_root(rootfd, resolved, directory, mode));
	free(resolved);
	free(joined);
	hops--;
}

/*
 * Open PATH (clean, absolute, inside the root) as O_PATH, creating it and its missing
 * parents (directories 0755) when absent: a directory with MODE, or an empty file with MODE.
 * This is what Docker's init layer provides for mount points; here it is done lazily.
 */
int ensure_in_root(int rootfd, const char *path, bool directory, mode_t mode)
{
	int fd = open_in_root(rootfd, path, O_PATH);
	if (fd < 0) {
		if (errno != ENOENT)
			die_errno("%s in the root filesystem", path);
		const char *base;
		char *parent = split_parent(path, &base);
		int pfd = ensure_in_root(rootfd, parent, true, 0755);
		int rc;
		if (directory) {
			rc = mkdirat(pfd, base, mode);
		} else {
			/* O_EXCL|O_NOFOLLOW: never write through a link that appeared meanwhile. */
			rc = openat(pfd, base, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, mode);
			if (rc >= 0)
				rc = close(rc);
		}
		if (rc < 0 && errno != EEXIST)
			die_errno("create %s in the root filesystem", path);
		if (rc < 0)
			create_link_target(rootfd, pfd, parent, base, directory, mode);
		close(pfd);
		free(parent);
		fd = open_in_root(rootfd, path, O_PATH);
		if (fd < 0)
			die_errno("%s in the root filesystem", path);
	}
	struct stat st;
	if (fstat(fd, &st) < 0)
		die_errno("stat %s in the root filesystem", path);
	if (directory && !S_ISDIR(st.st_mode))
		die("%s in the root filesystem is not a directory", path);
	if (!directory && S_ISDIR(st.st_mode))
		die("%s in the root filesystem is a directory", path);
	return fd;
}

/*
 * Mount stubs: the files and directories created only to serve as bind-mount targets
 * (/etc/hosts when the image has none). BuildKit removes them after the step so they do
 * not end up in the layer; so do we. The parent records which components are missing
 * before the container starts and removes those still empty after it ends.
 */
struct stubs {
	char **paths; /* shallowest first */
	size_t n;
};

struct stubs *stubs_record(struct stubs *s, int rootfd, const char *path)
{
	if (!s) {
		s = xmalloc(sizeof *s);
		s->paths = NULL;
		s->n = 0;
	}
	char *p = xstrdup(path);
	for (char *c = p + 1;; c++) {
		if (*c != '/' && *c != '\0')
			continue;
		char saved = *c;
		*c = '\0';
		int fd = open_in_root(rootfd, p, O_PATH);
		if (fd >= 0) {
			close(fd);
		} else if (errno == ENOENT) {
			s->paths = xrealloc(s->paths, (s->n + 1) * sizeof *s->paths);
			s->paths[s->n++] = xstrdup(p);
		} else {
			die_errno("%s in the root filesystem", p);
		}
		*c = saved;
		if (saved == '\0')
			break;
	}
	free(p);
	return s;
}

void stubs_remove(struct stubs *s, int rootfd)
{
	if (!s)
		return;
	for (size_t i = s->n; i-- > 0;) {
		const char *base;
		char *parent = split_parent(s->paths[i], &base);
		int pfd = open_in_root(rootfd, parent, O_PATH | O_DIRECTORY);
		free(parent);
		if (pfd < 0)
			continue; /* the step removed or replaced the parent: nothing of ours is left */
		struct stat st;
		int rc = 0;
		if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			/* Only what is still exactly a stub: the step may have reused the path. */
			if (S_ISREG(st.st_mode) && st.st_size == 0)
				rc = unlinkat(pfd, base, 0);
			else if (S_ISDIR(st.st_mode))
				rc = unlinkat(pfd, base, AT_REMOVEDIR);
		}
		if (rc < 0 && errno != ENOENT && errno != ENOTEMPTY && errno != EEXIST)
			fprintf(stderr, "%s: warning: could not remove mount point stub %s: %s\n", PROGNAME,
				s->paths[i], strerror(errno));
		close(pfd);
	}
}
