/*
 * serve: runs mount and umount requests for the process that started it, one at a time,
 * without a new process launch for each.
 *
 * A build mounts and unmounts a root filesystem for every RUN and COPY step. Launched from
 * Node, each helper call costs a fork of the whole Node process, an exec and a round trip
 * through the event loop, several milliseconds, while the mount itself takes well under one.
 * So tsbuild keeps one `serve` process (src/runtime/served.ts) and writes requests on its stdin:
 *   ARGC "\n", then ARGC arguments, each ending in a NUL byte: "mount" or "umount" and that
 *   subcommand's arguments, exactly as on a command line.
 * Each request runs in a forked child, so that it fails as the subcommand always does (die()
 * exits) and leaves nothing behind in this process. The answer, once the child has exited:
 *   STATUS " " LEN "\n", then LEN bytes: its stderr (the error line, if it failed).
 * STATUS is the child's exit status, or 128+N if signal N killed it.
 * When tsbuild exits or is killed, its end of stdin closes and this process exits. SIGINT and
 * SIGTERM are ignored, as by `lock`: after a Ctrl-C, tsbuild still unmounts what it mounted.
 */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
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

/* Runs one request in a child; answers with its status and stderr. */
static void serve_one(int argc, char **argv)
{
	int (*fn)(int, char **) = NULL;
	if (strcmp(argv[0], "mount") == 0)
		fn = cmd_mount;
	else if (strcmp(argv[0], "umount") == 0)
		fn = cmd_umount;
	else
		die("serve: unknown request '%s' (mount or umount)", argv[0]);

	int err[2];
	if (pipe2(err, O_CLOEXEC) < 0)
		die_errno("serve: pipe");
	pid_t pid = fork();
	if (pid < 0)
		die_errno("serve: fork");
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(null, STDOUT_FILENO) < 0 || dup2(err[1], STDERR_FILENO) < 0)
			_exit(EXIT_HELPER);
		optind = 1; /* a fresh getopt, as in a new process */
		_exit(fn(argc, argv));
	}
	close(err[1]);
	char *text = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 512;
			text = xrealloc(text, cap);
		}
		ssize_t n = read(err[0], text + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(err[0]);
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
