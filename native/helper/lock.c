/*
 * lock FILE: holds flock(2) locks on FILE for the process that started it.
 *
 * Node has no flock, and a lock file holding a PID needs a racy "break the stale lock" step
 * when its holder dies. A flock belongs to an open file and the kernel drops it when the
 * holder dies, however it dies. So the store lock lives here: tsbuild starts one `lock`
 * process per store, keeps its stdin and stdout as a pipe pair, and writes one letter per
 * request:
 *   x  take the lock exclusively (waits while anyone else holds it)
 *   s  take it shared
 *   u  release it
 *   t  take it exclusively if nobody holds it: answers "busy" instead of waiting (a cache
 *      mount with sharing=private takes the first directory no one else uses)
 * Each request is answered with "ok\n" once it is done. When tsbuild exits or is killed, its
 * end of stdin closes: read(2) returns 0 and this process exits, and the lock goes with it.
 * SIGINT and SIGTERM are ignored (Ctrl-C reaches the whole process group): tsbuild decides
 * when to stop, and may still need the lock to clean up.
 */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/file.h>
#include <unistd.h>

int cmd_lock(int argc, char **argv)
{
	const char *path = single_operand(argc, argv, "lock FILE");
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		die_errno("lock: open %s", path);
	for (;;) {
		char c;
		ssize_t n = read(STDIN_FILENO, &c, 1);
		if (n == 0)
			return 0;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die_errno("lock: read the request");
		}
		int op;
		switch (c) {
		case 'x': op = LOCK_EX; break;
		case 's': op = LOCK_SH; break;
		case 'u': op = LOCK_UN; break;
		case 't': op = LOCK_EX | LOCK_NB; break;
		case '\n': continue;
		default: die("lock: unknown request '%c' (x, s, t or u)", c);
		}
		bool busy = false;
		while (flock(fd, op) < 0) {
			if (errno == EWOULDBLOCK && (op & LOCK_NB)) {
				busy = true;
				break;
			}
			if (errno != EINTR)
				die_errno("lock: flock %s", path);
		}
		if (busy) {
			if (write(STDOUT_FILENO, "busy\n", 5) != 5)
				die_errno("lock: answer");
			continue;
		}
		if (write(STDOUT_FILENO, "ok\n", 3) != 3)
			die_errno("lock: answer");
	}
}
