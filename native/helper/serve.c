/*
 * serve: runs mount, umount, walk and stamp requests for the process that started it, one at a
 * time, without a new process launch for each.
 *
 * A build mounts and unmounts a root filesystem for every RUN and COPY step, and walks the upper
 * directory of each to commit it. Launched from Node, each helper call costs a fork of the whole
 * Node process, an exec and a round trip through the event loop, several milliseconds (a walk's
 * launch was ~7 ms of the main thread), while the mount itself takes well under one. So tsbuild
 * keeps one `serve` process (src/runtime/served.ts) and writes requests on its stdin:
 *   ARGC "\n", then ARGC arguments, each ending in a NUL byte: "mount", "umount", "walk" or
 *   "stamp" and that subcommand's arguments, exactly as on a command line.
 * Each request runs in a forked child, so that it fails as the subcommand always does (die()
 * exits) and leaves nothing behind in this process. A walk's or stamp's stdout comes first, as it is
 * written, in data frames:
 *   "D " LEN "\n", then LEN bytes.
 * The answer, once the child has exited:
 *   STATUS " " LEN "\n", then LEN bytes: its stderr (the error line, if it failed).
 * STATUS is the child's exit status, or 128+N if signal N killed it.
 * When tsbuild exits or is killed, its end of stdin closes and this process exits. SIGINT and
 * SIGTERM are ignored, as by `lock`: after a Ctrl-C, tsbuild still unmounts what it mounted. A
 * walk that tsbuild stops reading is ended by killing this process (SIGKILL): the walk's next
 * write then fails.
 */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* More than any mount request needs (one --lowerdir per layer at most). */
#define MAX_ARGS 4096

static void write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die_errno("serve: answer");
		}
		buf += n;
		len -= (size_t)n;
	}
}

/* Appends what is readable on fd to text; returns 0 at end of file. */
static int gather(int fd, char **text, size_t *len, size_t *cap)
{
	if (*len == *cap) {
		*cap = *cap ? *cap * 2 : 512;
		*text = xrealloc(*text, *cap);
	}
	ssize_t n = read(fd, *text + *len, *cap - *len);
	if (n < 0 && errno == EINTR)
		return 1;
	if (n <= 0)
		return 0;
	*len += (size_t)n;
	return 1;
}

/* Forwards what is readable on fd as one data frame; returns 0 at end of file. */
static int forward(int fd)
{
	static char buf[64 * 1024];
	ssize_t n = read(fd, buf, sizeof buf);
	if (n < 0 && errno == EINTR)
		return 1;
	if (n <= 0)
		return 0;
	char head[32];
	int h = snprintf(head, sizeof head, "D %zd\n", n);
	write_all(STDOUT_FILENO, head, (size_t)h);
	write_all(STDOUT_FILENO, buf, (size_t)n);
	return 1;
}

/*
 * Runs one request in a child; answers with its status and stderr. A walk's or a stamp's stdout
 * is forwarded as it comes, in data frames, before the answer.
 */
static void serve_one(int argc, char **argv)
{
	int (*fn)(int, char **) = NULL;
	int streams = 0;
	if (strcmp(argv[0], "mount") == 0)
		fn = cmd_mount;
	else if (strcmp(argv[0], "umount") == 0)
		fn = cmd_umount;
	else if (strcmp(argv[0], "walk") == 0) {
		fn = cmd_walk;
		streams = 1;
	} else if (strcmp(argv[0], "stamp") == 0) {
		fn = cmd_stamp;
		streams = 1;
	} else
		die("serve: unknown request '%s' (mount, umount, walk or stamp)", argv[0]);

	int err[2], out[2] = {-1, -1};
	if (pipe2(err, O_CLOEXEC) < 0 || (streams && pipe2(out, O_CLOEXEC) < 0))
		die_errno("serve: pipe");
	pid_t pid = fork();
	if (pid < 0)
		die_errno("serve: fork");
	if (pid == 0) {
		/*
		 * No exec follows, so O_CLOEXEC closes nothing here: the pipes' read ends must be closed
		 * by hand. A walk holding its own stdout's read end would never see EPIPE, and would
		 * block for ever on a full pipe once this process is killed.
		 */
		close(err[0]);
		if (streams)
			close(out[0]);
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(streams ? out[1] : null, STDOUT_FILENO) < 0 ||
		    dup2(err[1], STDERR_FILENO) < 0)
			_exit(EXIT_HELPER);
		close(null);
		close(err[1]);
		if (streams)
			close(out[1]);
		optind = 1; /* a fresh getopt, as in a new process */
		_exit(fn(argc, argv));
	}
	close(err[1]);
	if (streams)
		close(out[1]);
	char *text = NULL;
	size_t len = 0, cap = 0;
	int err_open = 1, out_open = streams;
	while (err_open || out_open) {
		struct pollfd fds[2] = {{.fd = err_open ? err[0] : -1, .events = POLLIN}, {.fd = out_open ? out[0] : -1, .events = POLLIN}};
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			die_errno("serve: poll");
		}
		if (fds[0].revents && !gather(err[0], &text, &len, &cap))
			err_open = 0;
		if (fds[1].revents && !forward(out[0]))
			out_open = 0;
	}
	close(err[0]);
	if (streams)
		close(out[0]);
	int wstatus;
	while (waitpid(pid, &wstatus, 0) < 0)
		if (errno != EINTR)
			die_errno("serve: waitpid");
	int status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
	char head[64];
	int n = snprintf(head, sizeof head, "%d %zu\n", status, len);
	write_all(STDOUT_FILENO, head, (size_t)n);
	write_all(STDOUT_FILENO, text ? text : "", len);
	free(text);
}

int cmd_serve(int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		die("usage: serve   (requests on stdin)");
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	FILE *in = stdin;
	char *line = NULL;
	size_t cap = 0;
	for (;;) {
		ssize_t n = getline(&line, &cap, in);
		if (n < 0) {
			if (ferror(in))
				die_errno("serve: read the request");
			return 0; /* tsbuild is gone */
		}
		if (n > 0 && line[n - 1] == '\n')
			line[n - 1] = '\0';
		unsigned long long count = parse_number(line, "serve: argument count", MAX_ARGS);
		if (count == 0)
			die("serve: empty request");
		char **args = xmalloc(sizeof *args * (count + 1));
		for (unsigned long long i = 0; i < count; i++) {
			args[i] = NULL;
			size_t acap = 0;
			if (getdelim(&args[i], &acap, '\0', in) < 0)
				die("serve: request cut short");
		}
		args[count] = NULL;
		serve_one((int)count, args);
		for (unsigned long long i = 0; i < count; i++)
			free(args[i]);
		free(args);
	}
}
