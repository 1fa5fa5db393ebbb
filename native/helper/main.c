/* Entry point: dispatch to one subcommand. */
#include "helper.h"

#include <stdio.h>
#include <string.h>

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *usage;
} commands[] = {
	{"run", cmd_run,
	 "run --rootfs DIR [--cwd DIR] [--uid N] [--gid N] [--groups A,B] [--hostname NAME]\n"
	 "      [--network host|none] [--privileged] [--env K=V]... [--status-fd N]\n"
	 "      [--bind SRC:DST[:ro] | --tmpfs DST[:BYTES[:MODE]] | --secret-file FD:DST:MODE:UID:GID]...\n"
	 "      [--secret-env FD:NAME]... [--tty [--winsize ROWS:COLS] [--winsize-fd N]] -- ARGV..."},
	{"mount", cmd_mount,
	 "mount --type T --source S --options O [--cwd DIR]\n"
	 "      [--lowerdir DIR... --upperdir DIR --workdir DIR] TARGET"},
	{"umount", cmd_umount, "umount [--detach] TARGET"},
	{"walk", cmd_walk, "walk DIR"},
	{"stamp", cmd_stamp, "stamp [--threads N] [--prune REL]... DIR"},
	{"gzip", cmd_gzip, "gzip [--level 1-12] [--block-size BYTES] [--threads N] [--framed] [--digest-fd FD] < IN > OUT.gz"},
	{"apply-ops", cmd_apply_ops, "apply-ops < OPS"},
	{"supports-dtype", cmd_supports_dtype, "supports-dtype DIR"},
	{"serve", cmd_serve, "serve   (then mount and umount requests on stdin: native/helper/serve.c)"},
	{"lock", cmd_lock, "lock FILE   (then x, s or u on stdin; answers ok)"},
	{"die-with-parent", cmd_die_with_parent, "die-with-parent PID -- ARGV...   (killed when PID ends)"},
	{"reap", cmd_reap, "reap --into DIR --leases DIR PATH...   (renames, answers ok, then removes)"},
	{"userns-exec", cmd_userns_exec, "userns-exec --uid-map IN:OUT:N... --gid-map IN:OUT:N... -- ARGV..."},
};

static void usage(FILE *out)
{
	fprintf(out, "usage:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(out, "  %s %s\n", PROGNAME, commands[i].usage);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (strcmp(argv[1], commands[i].name) == 0)
			/* The subcommand sees its own name as argv[0], as getopt expects. */
			return commands[i].fn(argc - 1, argv + 1);
	}
	die("unknown subcommand '%s' (try --help)", argv[1]);
}
