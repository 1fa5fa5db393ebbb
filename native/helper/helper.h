/*
 * tsbuild-helper: the few things Node cannot do itself (namespaces, mount(2), pivot_root(2),
 * mknod(2), xattrs, a fast lstat walk, deflate on several threads). One binary, one subcommand per file.
 *
 * Conventions shared by every subcommand:
 *   - failures print one line "tsbuild-helper: WHAT: WHY" and exit non-zero (die*);
 *   - paths are passed through verbatim, never interpreted by a shell;
 *   - nothing here follows a symlink it was not explicitly asked to follow.
 */
#ifndef TSBUILD_HELPER_H
#define TSBUILD_HELPER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdnoreturn.h>
#include <sys/types.h>

#define PROGNAME "tsbuild-helper"

/* Exit status when the helper itself failed (as opposed to the command it ran). */
#define EXIT_HELPER 1
/* `run` only: the container could not be set up. Same value Docker uses for its own errors. */
#define EXIT_RUN_SETUP 125
/* `run` only: the command was found but could not be executed / was not found (shell convention). */
#define EXIT_CANNOT_EXEC 126
#define EXIT_NOT_FOUND 127

/* common.c */
noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
noreturn void die_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void die_to(int fd, int status);
void *xmalloc(size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
unsigned long long parse_number(const char *s, const char *what, unsigned long long max);
int strcmp_ptr(const void *a, const void *b);
const char *single_operand(int argc, char **argv, const char *usage);
void reset_signals(void);

/* inroot.c: resolve container paths under a root fd, symlinks included, without escaping it. */
char *clean_path(const char *path);
int open_in_root(int rootfd, const char *path, int flags);
int ensure_in_root(int rootfd, const char *path, bool directory, mode_t mode);
struct stubs;
struct stubs *stubs_record(struct stubs *s, int rootfd, const char *path);
void stubs_remove(struct stubs *s, int rootfd);

/*
 * The run subcommand's parsed options; filled by run.c, consumed by container.c.
 *
 * The mounts over paths inside the root, in command-line order: the init files (--bind) first,
 * then the step's own (RUN --mount), which the caller sorts so that /a comes before /a/b.
 */
enum step_mount_type { STEP_BIND, STEP_TMPFS, STEP_SECRET };

struct step_mount {
	enum step_mount_type type;
	const char *target; /* cleaned, absolute, inside the container */
	/* STEP_BIND: a host directory, file or Unix socket */
	const char *source;
	bool readonly;
	/* STEP_TMPFS: bytes; 0 leaves the kernel's default (half of RAM). Its root's mode is `mode`
	 * if mode_set (tsbuild run --tmpfs), else its mount point's (RUN --mount, runc's rule) */
	unsigned long long size;
	bool mode_set;
	/* STEP_SECRET: the pipe its bytes arrive on, the file's metadata, and the bytes once read */
	int fd;
	mode_t mode;
	uid_t uid;
	gid_t gid;
	char *data;
	size_t len;
};

/* An environment variable of the command whose value arrives on a pipe (a secret). */
struct secret_env {
	int fd;
	const char *name;
};

struct run_config {
	const char *rootfs; /* canonical host path of the root filesystem */
	int rootfd;         /* O_PATH fd of rootfs, opened before any namespace exists */
	const char *cwd;    /* cleaned, absolute, inside the container */
	uid_t uid;
	gid_t gid;
	gid_t *groups;
	size_t ngroups;
	const char *hostname; /* NULL: keep the one copied from the host */
	bool network_none;
	/* RUN --security=insecure: every capability, no masked paths, writable /sys, devices allowed */
	bool privileged;
	char **env; /* NULL-terminated, exactly the command's environment (secret values join it in the container) */
	struct step_mount *mounts;
	size_t nmounts;
	struct secret_env *secret_env;
	size_t nsecret_env;
	char **argv; /* NULL-terminated */
	/* --tty: a pseudo-terminal of the container's own is the command's stdin, stdout and stderr */
	bool tty;
	unsigned short rows, cols; /* its size at the start */
	int console_fd;            /* where the child sends the master (stdio.c), -1 without --tty */
};

/* secret.c: secrets arrive on pipes and become a file on a tmpfs of their own, or environment. */
void load_secrets(struct run_config *cfg);
void close_secret_fds(const struct run_config *cfg);
int secret_file_tree(struct step_mount *m, int stagefd);

/* stdio.c: the command's stdin, stdout and stderr, and the copying between them and ours. */
struct run_io;
struct run_io *io_prepare(bool tty, int winsize_fd);
void io_child(struct run_io *io, struct run_config *cfg);
void io_parent(struct run_io *io);
size_t io_supervise(struct run_io *io, pid_t pid, int errfd, char *msg, size_t cap);
void console_attach(const struct run_config *cfg);

/* container.c: everything the child does between fork and execve. Never returns. */
noreturn void container_init(struct run_config *cfg, int parent_alive_fd);

/* Subcommands. */
int cmd_run(int argc, char **argv);
int cmd_mount(int argc, char **argv);
int cmd_umount(int argc, char **argv);
int cmd_walk(int argc, char **argv);
int cmd_stamp(int argc, char **argv);
int cmd_gzip(int argc, char **argv);
int cmd_apply_ops(int argc, char **argv);
int cmd_supports_dtype(int argc, char **argv);
int cmd_lock(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_userns_exec(int argc, char **argv);
int cmd_reap(int argc, char **argv);
int cmd_die_with_parent(int argc, char **argv);

#endif
