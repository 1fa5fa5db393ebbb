/* Error reporting and small utilities shared by every subcommand. */
#include "helper.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * Where die() reports and with which status. `run` redirects both inside the container's
 * init process, so a setup failure travels to the waiting parent instead of mixing with
 * the command's stderr.
 */
static int die_fd = STDERR_FILENO;
static int die_status = EXIT_HELPER;

void die_to(int fd, int status)
{
	die_fd = fd;
	die_status = status;
}

static noreturn void vdie(int errnum, const char *fmt, va_list ap)
{
	char msg[4096];
	size_t len = (size_t)snprintf(msg, sizeof msg, "%s: ", PROGNAME);
	int n = vsnprintf(msg + len, sizeof msg - len, fmt, ap);
	if (n > 0)
		len += (size_t)n;
	if (len > sizeof msg - 1)
		len = sizeof msg - 1;
	if (errnum != 0) {
		n = snprintf(msg + len, sizeof msg - len, ": %s", strerror(errnum));
		if (n > 0)
			len += (size_t)n;
		if (len > sizeof msg - 1)
			len = sizeof msg - 1;
	}
	/* One write, so the line cannot interleave with other output. */
	if (len > sizeof msg - 2)
		len = sizeof msg - 2;
	msg[len++] = '\n';
	ssize_t ignored = write(die_fd, msg, len);
	(void)ignored;
	/* _exit: stdio buffers of a failed subcommand hold nothing worth flushing. */
	_exit(die_status);
}

void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vdie(0, fmt, ap);
}

void die_errno(const char *fmt, ...)
{
	int errnum = errno;
	va_list ap;
	va_start(ap, fmt);
	vdie(errnum, fmt, ap);
}

void *xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);
	if (!p)
		die("out of memory");
	return p;
}

void *xrealloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size ? size : 1);
	if (!p)
		die("out of memory");
	return p;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p)
		die("out of memory");
	return p;
}

/* A decimal number in [0, max]; anything else is a usage error naming WHAT. */
unsigned long long parse_number(const char *s, const char *what, unsigned long long max)
{
	char *end;
	errno = 0;
	if (*s < '0' || *s > '9')
		die("%s: not a number: '%s'", what, s);
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		die("%s: invalid value '%s'", what, s);
	return v;
}

/* qsort comparator for an array of char *: plain byte order, which is tar's order. */
int strcmp_ptr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The one operand of "walk DIR" and the like; a leading "--" is allowed for paths starting with '-'. */
const char *single_operand(int argc, char **argv, const char *usage)
{
	if (argc == 3 && strcmp(argv[1], "--") == 0)
		return argv[2];
	if (argc != 2 || (argv[1][0] == '-' && argv[1][1] != '\0'))
		die("usage: %s %s", PROGNAME, usage);
	return argv[1];
}

/* Before exec: the command starts with default handlers and nothing blocked, whatever we had. */
void reset_signals(void)
{
	for (int sig = 1; sig < NSIG; sig++) {
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	}
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}
