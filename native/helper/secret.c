/*
 * Secrets of a build step (RUN --mount=type=secret, and secrets as environment variables).
 *
 * Where a secret must never be: in an argv (/proc/PID/cmdline is readable by every user), in
 * the environment of a process other than the step's own (/proc/PID/environ, and every child
 * inherits it), in a file on the host's disk (it would outlive a crash and land in backups).
 * So tsbuild writes each secret into a pipe of its own that we inherit (--secret-file FD:...,
 * --secret-env FD:NAME); the container's init reads them all before it creates anything, and
 * the waiting parent never holds the bytes at all.
 *
 * A secret file lives on a tmpfs of its own, made with the new mount API (fsopen/fsmount): the
 * filesystem is created detached, with no path anywhere, the file is written into it while
 * detached, and only the file itself is bind-mounted at the target, read-only; the tmpfs's
 * root directory is never visible to the step. BuildKit (solver/llbsolver/mounts/mount.go,
 * secretMountInstance) makes the same file on a tmpfs it mounts under the host's temp dir;
 * ours exists only in the container's mount namespace and dies with it.
 */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

/* BuildKit's limit (session/secrets/secretsprovider: MaxSecretSize): a build that works there works here. */
#define MAX_SECRET_SIZE (500 * 1024)

/* Everything FD holds up to its end, then FD is closed. WHAT names the secret in errors, never its bytes. */
static char *read_secret(int fd, size_t *len, const char *what)
{
	/* One byte more than allowed tells "exactly the limit" from "over it". */
	char *buf = xmalloc(MAX_SECRET_SIZE + 1);
	size_t n = 0;
	for (;;) {
		ssize_t got = read(fd, buf + n, MAX_SECRET_SIZE + 1 - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			die_errno("read %s from descriptor %d", what, fd);
		if (got == 0)
			break;
		n += (size_t)got;
		if (n > MAX_SECRET_SIZE)
			die("%s is larger than 500 KiB, BuildKit's limit for a secret", what);
	}
	close(fd);
	*len = n;
	return buf;
}

/*
 * In the container's init, before anything else: read every secret. Files keep their bytes
 * in their mount until secret_file_tree writes them; environment values join cfg->env,
 * replacing a variable of the same name (BuildKit appends them after the step's environment,
 * and runc keeps the last of duplicate names).
 */
void load_secrets(struct run_config *cfg)
{
	char what[256];
	for (size_t i = 0; i < cfg->nmounts; i++) {
		struct step_mount *m = &cfg->mounts[i];
		if (m->type != STEP_SECRET)
			continue;
		snprintf(what, sizeof what, "the secret for %s", m->target);
		m->data = read_secret(m->fd, &m->len, what);
		m->fd = -1;
	}
	if (cfg->nsecret_env == 0)
		return;
	size_t nenv = 0;
	while (cfg->env[nenv])
		nenv++;
	cfg->env = xrealloc(cfg->env, (nenv + cfg->nsecret_env + 1) * sizeof *cfg->env);
	for (size_t i = 0; i < cfg->nsecret_env; i++) {
		const struct secret_env *e = &cfg->secret_env[i];
		snprintf(what, sizeof what, "secret environment variable %s", e->name);
		size_t len;
		char *value = read_secret(e->fd, &len, what);
		/* execve takes NUL-terminated strings: a NUL would silently cut the value short. */
		if (memchr(value, '\0', len))
			die("%s: the value contains a NUL byte, which no environment variable can hold", what);
		size_t nlen = strlen(e->name);
		char *entry = xmalloc(nlen + 1 + len + 1);
		memcpy(entry, e->name, nlen);
		entry[nlen] = '=';
		memcpy(entry + nlen + 1, value, len);
		entry[nlen + 1 + len] = '\0';
		explicit_bzero(value, len);
		free(value);
		size_t k = 0;
		while (k < nenv && !(strncmp(cfg->env[k], e->name, nlen) == 0 && cfg->env[k][nlen] == '='))
			k++;
		cfg->env[k] = entry;
		if (k == nenv)
			nenv++;
	}
	cfg->env[nenv] = NULL;
}

/* In the waiting parent after fork: our copies of the secret pipes; only the child reads them. */
void close_secret_fds(const struct run_config *cfg)
{
	for (size_t i = 0; i < cfg->nmounts; i++) {
		if (cfg->mounts[i].type == STEP_SECRET)
			close(cfg->mounts[i].fd);
	}
	for (size_t i = 0; i < cfg->nsecret_env; i++)
		close(cfg->secret_env[i].fd);
}

static void write_all(int fd, const char *data, size_t len, const char *target)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die_errno("write the secret for %s", target);
		data += n;
		len -= (size_t)n;
	}
}

/*
 * M's secret as a detached, read-only mount of a single file, for the caller to attach at
 * M's target. Its mode, owner and group are M's (the permission bits only, like BuildKit);
 * the mount is nosuid and nodev, and noexec unless the mode lets someone execute the file.
 *
 * STAGEFD is an empty directory on the container's own /dev tmpfs. Cloning a path inside a
 * detached mount (open_tree on the fsmount fd) needs Linux 6.15; before that the tmpfs must
 * be attached in our namespace first. It sits on STAGEFD only until the file is cloned, while
 * this process is the only one in the namespace, and is detached again before we return.
 */
int secret_file_tree(struct step_mount *m, int stagefd)
{
	int fsfd = fsopen("tmpfs", FSOPEN_CLOEXEC);
	if (fsfd < 0)
		die_errno("secret for %s: fsopen tmpfs", m->target);
	/* The root stays root's alone; it is never visible, but nothing needs more. */
	if (fsconfig(fsfd, FSCONFIG_SET_STRING, "source", "tmpfs", 0) < 0 ||
	    fsconfig(fsfd, FSCONFIG_SET_STRING, "mode", "0700", 0) < 0 ||
	    fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		die_errno("secret for %s: create a tmpfs", m->target);
	unsigned int attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | ((m->mode & 0111) ? 0 : MOUNT_ATTR_NOEXEC);
	int mnt = fsmount(fsfd, FSMOUNT_CLOEXEC, attrs);
	if (mnt < 0)
		die_errno("secret for %s: fsmount tmpfs", m->target);
	close(fsfd);

	int fd = openat(mnt, "secret", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		die_errno("create the secret for %s", m->target);
	write_all(fd, m->data, m->len, m->target);
	explicit_bzero(m->data, m->len);
	free(m->data);
	m->data = NULL;
	/* chown before chmod: chown clears set-id bits (we keep none, but the order is the safe one). */
	if (fchown(fd, m->uid, m->gid) < 0)
		die_errno("chown the secret for %s to %u:%u", m->target, (unsigned)m->uid, (unsigned)m->gid);
	if (fchmod(fd, m->mode & 0777) < 0)
		die_errno("chmod the secret for %s", m->target);
	close(fd);

	if (move_mount(mnt, "", stagefd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		die_errno("secret for %s: attach its tmpfs", m->target);
	int tree = open_tree(mnt, "secret", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (tree < 0)
		die_errno("secret for %s: clone its file", m->target);
	/* The fsmount fd names the attached tmpfs's root: detach exactly that mount. */
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", mnt);
	if (umount2(path, MNT_DETACH) < 0)
		die_errno("secret for %s: detach its tmpfs", m->target);
	close(mnt);

	struct mount_attr ro = {.attr_set = MOUNT_ATTR_RDONLY};
	if (mount_setattr(tree, "", AT_EMPTY_PATH, &ro, sizeof ro) < 0)
		die_errno("secret for %s: make it read-only", m->target);
	return tree;
}
