/*
 * userns-exec: run a command as root of a new user namespace, in a new mount namespace of its
 * own. This is how tsbuild works for an ordinary user: the CLI re-executes itself through this
 * subcommand, and inside, every other subcommand (run, mount, apply-ops...) holds the
 * capabilities it needs over the namespace's own mounts and the files the user owns.
 *
 * The design is rootlesskit's and podman's (`unshare --user --map-root-user --mount`, done by
 * hand): the child unshares, the parent (still in the user's own namespace) writes the child's
 * ID maps, then the child execs. The maps come from the caller (--uid-map/--gid-map):
 *   - exactly one map of root to our own ID is written to /proc/PID/{uid,gid}_map directly,
 *     which the kernel allows an unprivileged process (for gid_map only after "deny" is written
 *     to /proc/PID/setgroups, so nobody can drop a group to gain access);
 *   - anything else (root to us, 1..N to the subordinate ranges of /etc/subuid and /etc/subgid)
 *     goes through newuidmap/newgidmap, the setuid programs of the uidmap package that check
 *     the ranges against those files. They are the system's, not ours: tsbuild ships none.
 *
 * Nothing here is privileged: a failure is the kernel refusing an ordinary user, reported as
 * one line naming what was refused.
 *
 * Signals: SIGTERM and SIGHUP are passed on to the child. SIGINT and SIGQUIT are ignored here:
 * they come from the terminal, which sends them to the child (same process group) itself.
 * Exit status: the command's; if a signal killed it, we die of the same signal.
 */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

struct id_map {
	unsigned long long inside, outside, count;
};

struct id_maps {
	struct id_map *maps;
	size_t n;
};

static volatile pid_t child_pid;

static void forward_signal(int sig)
{
	if (child_pid > 0)
		kill(child_pid, sig);
}

/* INSIDE:OUTSIDE:COUNT */
static void parse_map(struct id_maps *m, const char *spec, const char *what)
{
	char *s = xstrdup(spec), *rest = s;
	char *fields[3];
	size_t n = 0;
	while (rest && n < 3)
		fields[n++] = strsep(&rest, ":");
	if (n != 3 || rest)
		die("%s %s: expected INSIDE:OUTSIDE:COUNT", what, spec);
	m->maps = xrealloc(m->maps, (m->n + 1) * sizeof *m->maps);
	m->maps[m->n++] = (struct id_map){
		.inside = parse_number(fields[0], what, 4294967294ULL),
		.outside = parse_number(fields[1], what, 4294967294ULL),
		.count = parse_number(fields[2], what, 4294967295ULL),
	};
	if (m->maps[m->n - 1].count == 0)
		die("%s %s: COUNT must be at least 1", what, spec);
	free(s);
}

/* Exactly "root is me": the one map the kernel lets us write without newuidmap/newgidmap. */
static bool is_self_map(const struct id_maps *m, unsigned long long self)
{
	return m->n == 1 && m->maps[0].inside == 0 && m->maps[0].outside == self && m->maps[0].count == 1;
}

static void write_proc(pid_t pid, const char *file, const char *text)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		die_errno("open %s", path);
	size_t len = strlen(text);
	if (write(fd, text, len) != (ssize_t)len)
		die_errno("write %s", path);
	close(fd);
}

/* newuidmap PID INSIDE OUTSIDE COUNT...: run to completion, its own message on failure. */
static void run_idmap_tool(const char *tool, pid_t pid, const struct id_maps *m)
{
	char **argv = xmalloc((2 + 3 * m->n + 1) * sizeof *argv);
	size_t n = 0;
	argv[n++] = (char *)tool;
	char pidtext[32];
	snprintf(pidtext, sizeof pidtext, "%d", (int)pid);
	argv[n++] = pidtext;
	for (size_t i = 0; i < m->n; i++) {
		char *field;
		if (asprintf(&field, "%llu", m->maps[i].inside) < 0 || !(argv[n++] = field) ||
		    asprintf(&field, "%llu", m->maps[i].outside) < 0 || !(argv[n++] = field) ||
		    asprintf(&field, "%llu", m->maps[i].count) < 0 || !(argv[n++] = field))
			die("out of memory");
	}
	argv[n] = NULL;
	pid_t tool_pid = fork();
	if (tool_pid < 0)
		die_errno("fork");
	if (tool_pid == 0) {
		execvp(tool, argv);
		int err = errno;
		/* EPERM: the tool's file capability is not in our bounding set (a container that
		 * dropped SETUID/SETGID), and the kernel refuses to exec it without. */
		fprintf(stderr, "%s: exec %s: %s (%s)\n", PROGNAME, tool, strerror(err),
			err == EPERM ? "its file capability is not in the capability bounding set: in a container, add SETUID and SETGID"
				     : "install it with: apt-get install uidmap");
		_exit(EXIT_CANNOT_EXEC);
	}
	int status;
	while (waitpid(tool_pid, &status, 0) < 0) {
		if (errno != EINTR)
			die_errno("waitpid %s", tool);
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_CANNOT_EXEC)
		die("%s %d could not be run (see above)", tool, (int)pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		die("%s %d failed: the ranges must be the user's in /etc/sub%cid and mapped where tsbuild runs; "
		    "in a container, %s needs file capabilities, not the setuid bit (docs/rootless.md, Kubernetes)",
		    tool, (int)pid, tool[3] == 'u' ? 'u' : 'g', tool);
	for (size_t i = 2; i < n; i++)
		free(argv[i]);
	free(argv);
}

static void write_maps(pid_t pid, const struct id_maps *uids, const struct id_maps *gids)
{
	if (is_self_map(uids, getuid())) {
		char text[64];
		snprintf(text, sizeof text, "0 %u 1\n", (unsigned)getuid());
		write_proc(pid, "uid_map", text);
	} else {
		run_idmap_tool("newuidmap", pid, uids);
	}
	if (is_self_map(gids, getgid())) {
		char text[64];
		write_proc(pid, "setgroups", "deny");
		snprintf(text, sizeof text, "0 %u 1\n", (unsigned)getgid());
		write_proc(pid, "gid_map", text);
	} else {
		run_idmap_tool("newgidmap", pid, gids);
	}
}

/* The child: unshare, tell the parent, wait for the maps, become root, exec. */
static noreturn void child(int ready_fd, int mapped_fd, char **argv)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		die_errno("prctl(PR_SET_PDEATHSIG)");
	if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) {
		if (errno == EPERM || errno == ENOSPC)
			die_errno("unshare(CLONE_NEWUSER): this system does not let an ordinary user create a user "
				  "namespace (check sysctl kernel.unprivileged_userns_clone, user.max_user_namespaces "
				  "and AppArmor's kernel.apparmor_restrict_unprivileged_userns; in a container, its "
				  "seccomp profile: Docker's and containerd's default refuse it, see docs/rootless.md, Kubernetes)");
		die_errno("unshare(CLONE_NEWUSER|CLONE_NEWNS)");
	}
	char byte = 'u';
	if (write(ready_fd, &byte, 1) != 1)
		die_errno("tell the parent");
	close(ready_fd);
	ssize_t got;
	while ((got = read(mapped_fd, &byte, 1)) < 0 && errno == EINTR)
		;
	if (got != 1)
		_exit(EXIT_HELPER); /* the parent failed and said why */
	close(mapped_fd);
	/* Our IDs are now mapped: take root's (the maps make it us outside). */
	if (setresgid(0, 0, 0) < 0)
		die_errno("setresgid 0");
	if (setresuid(0, 0, 0) < 0)
		die_errno("setresuid 0");
	/* Changing credentials clears the parent-death signal: set it again. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		die_errno("prctl(PR_SET_PDEATHSIG)");
	/* Our mounts from here on stay ours, whatever the copied ones propagated before. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		die_errno("make all mounts private");
	reset_signals();
	execvp(argv[0], argv);
	fprintf(stderr, "%s: exec %s: %s\n", PROGNAME, argv[0], strerror(errno));
	_exit(errno == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC);
}

int cmd_userns_exec(int argc, char **argv)
{
	static const char usage[] = "userns-exec --uid-map IN:OUT:N... --gid-map IN:OUT:N... -- ARGV...";
	enum { O_UID_MAP = 256, O_GID_MAP };
	static const struct option options[] = {
		{"uid-map", required_argument, NULL, O_UID_MAP},
		{"gid-map", required_argument, NULL, O_GID_MAP},
		{0},
	};
	struct id_maps uids = {0}, gids = {0};
	int opt;
	while ((opt = getopt_long(argc, argv, "+", options, NULL)) != -1) {
		switch (opt) {
		case O_UID_MAP: parse_map(&uids, optarg, "--uid-map"); break;
		case O_GID_MAP: parse_map(&gids, optarg, "--gid-map"); break;
		default: die("usage: %s %s", PROGNAME, usage);
		}
	}
	if (optind >= argc || uids.n == 0 || gids.n == 0)
		die("usage: %s %s", PROGNAME, usage);

	/*
	 * Killed with the tsbuild that started us, kill -9 included, so that the build inside (our
	 * child dies with us) stops too. Without this a killed tsbuild left its build running.
	 */
	pid_t starter = getppid();
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		die_errno("prctl(PR_SET_PDEATHSIG)");
	if (getppid() != starter)
		_exit(EXIT_HELPER); /* it died before the signal was asked for */

	int ready[2], mapped[2];
	if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(mapped, O_CLOEXEC) < 0)
		die_errno("pipe");
	/* Until child_pid is set, a stop signal waits: the child must not miss it. */
	static const int forwarded[] = {SIGTERM, SIGHUP};
	sigset_t block, saved;
	sigemptyset(&block);
	for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
		sigaddset(&block, forwarded[i]);
	sigprocmask(SIG_BLOCK, &block, &saved);
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);

	pid_t pid = fork();
	if (pid < 0)
		die_errno("fork");
	if (pid == 0) {
		close(ready[0]);
		close(mapped[1]);
		child(ready[1], mapped[0], argv + optind);
	}
	child_pid = pid;
	struct sigaction sa = {.sa_handler = forward_signal, .sa_flags = SA_RESTART};
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
		sigaction(forwarded[i], &sa, NULL);
	sigprocmask(SIG_SETMASK, &saved, NULL);
	close(ready[1]);
	close(mapped[0]);

	char byte;
	ssize_t got;
	while ((got = read(ready[0], &byte, 1)) < 0 && errno == EINTR)
		;
	if (got == 1) {
		/* If this fails, die() exits and the child, reading EOF, exits too. */
		write_maps(pid, &uids, &gids);
		if (write(mapped[1], &byte, 1) != 1)
			die_errno("tell the child");
	}
	close(ready[0]);
	close(mapped[1]);

	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			die_errno("waitpid");
	}
	if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		signal(sig, SIG_DFL);
		sigset_t only;
		sigemptyset(&only);
		sigaddset(&only, sig);
		sigprocmask(SIG_UNBLOCK, &only, NULL);
		raise(sig);
		return 128 + sig;
	}
	return WEXITSTATUS(status);
}
