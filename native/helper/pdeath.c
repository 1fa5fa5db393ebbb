/*
 * die-with-parent PID -- ARGV...: run ARGV so that it is killed when the process PID (our
 * parent, tsbuild) ends, whatever ends it: kill -9 included.
 *
 * For fuse-overlayfs run in the foreground by rootless tsbuild: a FUSE daemon serves its mount
 * until it is unmounted, and one left by a tsbuild killed mid-step would serve it forever, alone
 * in the dead tsbuild's mount namespace where no later command can unmount it. Killed with
 * its parent, it ends, and the namespace with it.
 */
#include "helper.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int cmd_die_with_parent(int argc, char **argv)
{
	if (argc < 4 || strcmp(argv[2], "--") != 0)
		die("usage: die-with-parent PID -- ARGV...");
	pid_t parent = (pid_t)parse_number(argv[1], "parent PID", 0x7fffffff);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		die_errno("prctl(PR_SET_PDEATHSIG)");
	/* The parent may have died before the signal was asked for: then nothing would come. */
	if (getppid() != parent)
		die("die-with-parent: process %ld is gone", (long)parent);
	reset_signals();
	execvp(argv[3], argv + 3);
	fprintf(stderr, "%s: exec %s: %s\n", PROGNAME, argv[3], strerror(errno));
	_exit(errno == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC);
}
