/*
 * run: one build step, the way `docker build` runs RUN.
 *
 * This process stays in the host's namespaces and only waits. It unshares the PID namespace
 * (which applies to children only) and forks; the child becomes PID 1 there, sets up the rest
 * (container.c) and execs the command. Because the command is PID 1, its exit ends the step:
 * the kernel kills whatever it left running.
 *
 * Exit status: the command's (128+N if a signal killed it), 128+N if we were told to stop by
 * signal N, or 125 if the container could not be set up; the reason is then one line on
 * --status-fd (stderr without it), so it cannot be mistaken for the command's own output.
 *
 * The command's stdin, stdout and stderr, and the pseudo-terminal of --tty, are stdio.c's.
 */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop_signal;
static volatile pid_t init_pid;

/*
 * SIGINT/SIGTERM/SIGHUP (tsbuild aborting the step) kill the namespace's PID 1, which takes
 * every process of the step with it. SIGKILL because PID 1 ignores signals it has no handler for.
 */
static void on_stop_signal(int sig)
{
	stop_signal = sig;
	if (init_pid > 0)
		kill(init_pid, SIGKILL);
}

static const int stop_signals[] = {SIGINT, SIGTERM, SIGHUP};

static void parse_groups(struct run_config *cfg, const char *list)
{
	cfg->ngroups = 0;
	if (*list == '\0')
		return;
	char *copy = xstrdup(list);
	char *save = NULL;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		cfg->groups = xrealloc(cfg->groups, (cfg->ngroups + 1) * sizeof *cfg->groups);
		cfg->groups[cfg->ngroups++] = (gid_t)parse_number(tok, "--groups", 4294967294ULL);
	}
	free(copy);
}

static struct step_mount *add_mount(struct run_config *cfg, enum step_mount_type type, const char *target)
{
	cfg->mounts = xrealloc(cfg->mounts, (cfg->nmounts + 1) * sizeof *cfg->mounts);
	struct step_mount *m = &cfg->mounts[cfg->nmounts++];
	*m = (struct step_mount){.type = type, .target = clean_path(target), .fd = -1};
	return m;
}

/* SRC:DST[:ro]. DST is a container path without ':'; SRC, a host path, may contain ':'. */
static void parse_bind(struct run_config *cfg, const char *spec)
{
	char *s = xstrdup(spec);
	bool readonly = false;
	size_t len = strlen(s);
	if (len > 3 && (strcmp(s + len - 3, ":ro") == 0 || strcmp(s + len - 3, ":rw") == 0)) {
		readonly = s[len - 2] == 'r' && s[len - 1] == 'o';
		s[len - 3] = '\0';
	}
	char *colon = strrchr(s, ':');
	if (!colon || colon == s || colon[1] != '/' || s[0] != '/')
		die("--bind %s: expected /SOURCE:/TARGET[:ro]", spec);
	*colon = '\0';
	struct step_mount *m = add_mount(cfg, STEP_BIND, colon + 1);
	m->source = s;
	m->readonly = readonly;
}

/* DST[:BYTES[:MODE]], MODE octal; BYTES may be empty before a MODE (the kernel's default size). */
static void parse_tmpfs(struct run_config *cfg, const char *spec)
{
	char *s = xstrdup(spec), *rest = s;
	char *target = strsep(&rest, ":");
	char *size = rest ? strsep(&rest, ":") : NULL;
	char *mode = rest ? strsep(&rest, ":") : NULL;
	if (target[0] != '/' || rest || (size && *size == '\0' && !mode))
		die("--tmpfs %s: expected /TARGET[:SIZE[:MODE]]", spec);
	struct step_mount *m = add_mount(cfg, STEP_TMPFS, target);
	/* tmpfs reads size=0 as "unlimited": refuse it rather than give the opposite of a limit. */
	if (size && *size != '\0') {
		m->size = parse_number(size, "--tmpfs size", ~0ULL);
		if (m->size == 0)
			die("--tmpfs %s: the size must be at least 1 byte", spec);
	}
	if (mode) {
		char *end;
		errno = 0;
		unsigned long v = strtoul(mode, &end, 8);
		if (mode[0] < '0' || mode[0] > '7' || *end != '\0' || errno != 0 || v > 07777)
			die("--tmpfs %s: MODE must be octal, at most 7777", spec);
		m->mode = (mode_t)v;
		m->mode_set = true;
	}
	free(s);
}

/*
 * A descriptor we inherited to read a secret from. Close-on-exec at once, so that nothing we
 * start could inherit it; the container's init reads it to the end, we close our copy.
 */
static int parse_secret_fd(const char *text, const char *what)
{
	int fd = (int)parse_number(text, what, INT_MAX);
	if (fd <= STDERR_FILENO)
		die("%s %d: a secret cannot come from stdin, stdout or stderr", what, fd);
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		die_errno("%s %d", what, fd);
	return fd;
}

/* FD:DST:MODE:UID:GID (MODE octal). DST is a container path without ':'. */
static void parse_secret_file(struct run_config *cfg, const char *spec)
{
	char *s = xstrdup(spec), *rest = s;
	char *fields[5];
	size_t n = 0;
	while (rest && n < 5)
		fields[n++] = strsep(&rest, ":");
	if (n != 5 || rest || fields[1][0] != '/')
		die("--secret-file %s: expected FD:/TARGET:MODE:UID:GID", spec);
	char *end;
	errno = 0;
	unsigned long mode = strtoul(fields[2], &end, 8);
	if (fields[2][0] < '0' || fields[2][0] > '7' || *end != '\0' || errno != 0 || mode > 07777)
		die("--secret-file %s: MODE must be octal, at most 7777", spec);
	struct step_mount *m = add_mount(cfg, STEP_SECRET, fields[1]);
	m->fd = parse_secret_fd(fields[0], "--secret-file");
	m->mode = (mode_t)mode;
	m->uid = (uid_t)parse_number(fields[3], "--secret-file uid", 4294967294ULL);
	m->gid = (gid_t)parse_number(fields[4], "--secret-file gid", 4294967294ULL);
	free(s);
}

/* FD:NAME */
static void parse_secret_env(struct run_config *cfg, const char *spec)
{
	char *s = xstrdup(spec);
	char *colon = strchr(s, ':');
	if (!colon || colon[1] == '\0' || strchr(colon + 1, '='))
		die("--secret-env %s: expected FD:NAME, NAME not empty and without '='", spec);
	*colon = '\0';
	cfg->secret_env = xrealloc(cfg->secret_env, (cfg->nsecret_env + 1) * sizeof *cfg->secret_env);
	cfg->secret_env[cfg->nsecret_env++] =
		(struct secret_env){.fd = parse_secret_fd(s, "--secret-env"), .name = colon + 1};
}

/* Each secret needs a pipe of its own: a shared one would hand one secret's bytes to another. */
static void check_secret_fds(const struct run_config *cfg, int status_fd)
{
	size_t n = 0;
	int *fds = xmalloc((cfg->nmounts + cfg->nsecret_env) * sizeof *fds);
	for (size_t i = 0; i < cfg->nmounts; i++) {
		if (cfg->mounts[i].type == STEP_SECRET)
			fds[n++] = cfg->mounts[i].fd;
	}
	for (size_t i = 0; i < cfg->nsecret_env; i++)
		fds[n++] = cfg->secret_env[i].fd;
	for (size_t i = 0; i < n; i++) {
		if (fds[i] == status_fd)
			die("secret descriptor %d is also the status descriptor", fds[i]);
		for (size_t j = 0; j < i; j++) {
			if (fds[j] == fds[i])
				die("secret descriptor %d is given twice", fds[i]);
		}
	}
	free(fds);
}

/* ROWS:COLS, the terminal's size at the start (0:0 when unknown). */
static void parse_winsize(struct run_config *cfg, const char *spec)
{
	char *s = xstrdup(spec);
	char *colon = strchr(s, ':');
	if (!colon)
		die("--winsize %s: expected ROWS:COLS", spec);
	*colon = '\0';
	cfg->rows = (unsigned short)parse_number(s, "--winsize rows", 0xffff);
	cfg->cols = (unsigned short)parse_number(colon + 1, "--winsize columns", 0xffff);
	free(s);
}

static int parse_options(int argc, char **argv, struct run_config *cfg, int *winsize_fd)
{
	enum {
		O_ROOTFS = 256, O_CWD, O_UID, O_GID, O_GROUPS, O_HOSTNAME, O_NETWORK, O_ENV, O_BIND, O_TMPFS,
		O_SECRET_FILE, O_SECRET_ENV, O_PRIVILEGED, O_STATUS_FD, O_TTY, O_WINSIZE, O_WINSIZE_FD,
	};
	static const struct option options[] = {
		{"rootfs", required_argument, NULL, O_ROOTFS},
		{"cwd", required_argument, NULL, O_CWD},
		{"uid", required_argument, NULL, O_UID},
		{"gid", required_argument, NULL, O_GID},
		{"groups", required_argument, NULL, O_GROUPS},
		{"hostname", required_argument, NULL, O_HOSTNAME},
		{"network", required_argument, NULL, O_NETWORK},
		{"env", required_argument, NULL, O_ENV},
		{"bind", required_argument, NULL, O_BIND},
		{"tmpfs", required_argument, NULL, O_TMPFS},
		{"secret-file", required_argument, NULL, O_SECRET_FILE},
		{"secret-env", required_argument, NULL, O_SECRET_ENV},
		{"privileged", no_argument, NULL, O_PRIVILEGED},
		{"status-fd", required_argument, NULL, O_STATUS_FD},
		{"tty", no_argument, NULL, O_TTY},
		{"winsize", required_argument, NULL, O_WINSIZE},
		{"winsize-fd", required_argument, NULL, O_WINSIZE_FD},
		{0},
	};
	int status_fd = -1;
	size_t nenv = 0;
	const char *rootfs = NULL;
	cfg->cwd = "/";
	cfg->env = xmalloc(sizeof *cfg->env);
	int opt;
	/* '+': stop at the first non-option, so the command's own flags are left alone. */
	while ((opt = getopt_long(argc, argv, "+", options, NULL)) != -1) {
		switch (opt) {
		case O_ROOTFS: rootfs = optarg; break;
		case O_CWD:
			if (optarg[0] != '/')
				die("--cwd %s: must be an absolute path", optarg);
			cfg->cwd = clean_path(optarg);
			break;
		case O_UID: cfg->uid = (uid_t)parse_number(optarg, "--uid", 4294967294ULL); break;
		case O_GID: cfg->gid = (gid_t)parse_number(optarg, "--gid", 4294967294ULL); break;
		case O_GROUPS: parse_groups(cfg, optarg); break;
		case O_HOSTNAME: cfg->hostname = optarg; break;
		case O_NETWORK:
			if (strcmp(optarg, "none") == 0)
				cfg->network_none = true;
			else if (strcmp(optarg, "host") == 0)
				cfg->network_none = false;
			else
				die("--network %s: expected host or none", optarg);
			break;
		case O_ENV:
			cfg->env = xrealloc(cfg->env, (nenv + 2) * sizeof *cfg->env);
			cfg->env[nenv++] = optarg;
			break;
		case O_BIND: parse_bind(cfg, optarg); break;
		case O_TMPFS: parse_tmpfs(cfg, optarg); break;
		case O_SECRET_FILE: parse_secret_file(cfg, optarg); break;
		case O_SECRET_ENV: parse_secret_env(cfg, optarg); break;
		case O_PRIVILEGED: cfg->privileged = true; break;
		case O_TTY: cfg->tty = true; break;
		case O_WINSIZE: parse_winsize(cfg, optarg); break;
		case O_WINSIZE_FD:
			*winsize_fd = (int)parse_number(optarg, "--winsize-fd", INT_MAX);
			if (*winsize_fd <= STDERR_FILENO || fcntl(*winsize_fd, F_SETFD, FD_CLOEXEC) < 0)
				die("--winsize-fd %s: not a descriptor of its own", optarg);
			break;
		case O_STATUS_FD:
			status_fd = (int)parse_number(optarg, "--status-fd", INT_MAX);
			if (fcntl(status_fd, F_SETFD, FD_CLOEXEC) < 0)
				die_errno("--status-fd %d", status_fd);
			die_to(status_fd, EXIT_RUN_SETUP);
			break;
		default: die("run: invalid option (try --help)");
		}
	}
	cfg->env[nenv] = NULL;
	check_secret_fds(cfg, status_fd);
	if (*winsize_fd >= 0 && !cfg->tty)
		die("run: --winsize-fd needs --tty");
	if (!rootfs)
		die("run: --rootfs is required");
	if (optind >= argc)
		die("run: no command given after --");
	cfg->argv = argv + optind;
	/* One canonical path: the child re-opens it after unsharing the mount namespace. */
	char *real = realpath(rootfs, NULL);
	if (!real)
		die_errno("rootfs %s", rootfs);
	cfg->rootfs = real;
	return status_fd;
}

int cmd_run(int argc, char **argv)
{
	/* Until --status-fd is known, report on stderr, still as a setup failure. */
	die_to(STDERR_FILENO, EXIT_RUN_SETUP);
	pid_t parent = getppid();
	/* If tsbuild dies (even by SIGKILL), so do we, and then our child by its own PDEATHSIG. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		die_errno("prctl(PR_SET_PDEATHSIG)");
	if (getppid() != parent)
		_exit(EXIT_RUN_SETUP);

	struct run_config cfg = {.console_fd = -1};
	int winsize_fd = -1;
	int status_fd = parse_options(argc, argv, &cfg, &winsize_fd);

	/* Remember which mount targets the image lacks, to remove the stubs made for them afterwards. */
	int host_rootfd = open(cfg.rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (host_rootfd < 0)
		die_errno("rootfs %s", cfg.rootfs);
	struct stubs *stubs = NULL;
	for (size_t i = 0; i < cfg.nmounts; i++)
		stubs = stubs_record(stubs, host_rootfd, cfg.mounts[i].target);

	int errpipe[2], alive[2];
	if (pipe2(errpipe, O_CLOEXEC) < 0 || pipe2(alive, O_CLOEXEC) < 0)
		die_errno("pipe");
	struct run_io *io = io_prepare(cfg.tty, winsize_fd);
	/* A reader that went away must not kill us with SIGPIPE: the step would die with us. */
	signal(SIGPIPE, SIG_IGN);

	/* Block the stop signals until init_pid is known, so the handler never sees a half state. */
	sigset_t stops, saved;
	sigemptyset(&stops);
	for (size_t i = 0; i < sizeof stop_signals / sizeof stop_signals[0]; i++)
		sigaddset(&stops, stop_signals[i]);
	sigprocmask(SIG_BLOCK, &stops, &saved);
	struct sigaction sa = {.sa_handler = on_stop_signal}; /* no SA_RESTART: wake up read/waitpid */
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof stop_signals / sizeof stop_signals[0]; i++)
		sigaction(stop_signals[i], &sa, NULL);

	/* CLONE_NEWPID applies to the children created after it: fork now, /proc comes later. */
	if (unshare(CLONE_NEWPID) < 0)
		die_errno("unshare(CLONE_NEWPID)");
	pid_t pid = fork();
	if (pid < 0)
		die_errno("fork");
	if (pid == 0) {
		struct sigaction dfl = {.sa_handler = SIG_DFL};
		sigemptyset(&dfl.sa_mask);
		for (size_t i = 0; i < sizeof stop_signals / sizeof stop_signals[0]; i++)
			sigaction(stop_signals[i], &dfl, NULL);
		sigprocmask(SIG_SETMASK, &saved, NULL);
		close(errpipe[0]);
		close(alive[1]);
		close(host_rootfd);
		die_to(errpipe[1], EXIT_RUN_SETUP);
		io_child(io, &cfg);
		container_init(&cfg, alive[0]);
	}
	init_pid = pid;
	sigprocmask(SIG_SETMASK, &saved, NULL);
	close(errpipe[1]);
	close(alive[0]); /* alive[1] stays open until we exit: the child watches for its hang-up */
	/* The child reads the secrets; we never do, so they are never in this long-lived process. */
	close_secret_fds(&cfg);
	io_parent(io);

	char msg[4096];
	size_t msglen = io_supervise(io, pid, errpipe[0], msg, sizeof msg);
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			die_errno("waitpid");
	}
	stubs_remove(stubs, host_rootfd);

	if (stop_signal)
		return 128 + stop_signal;
	if (msglen > 0) {
		ssize_t ignored = write(status_fd >= 0 ? status_fd : STDERR_FILENO, msg, msglen);
		(void)ignored;
		return EXIT_RUN_SETUP;
	}
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
