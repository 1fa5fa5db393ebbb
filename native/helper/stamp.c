/*
 * stamp [--threads N] [--prune REL]... DIR: one line, "sha256:<hex> <entries> <sec>.<nsec>\n",
 * a digest of the lstat of DIR and of every entry below it, their number, and the newest ctime
 * among them (seconds and nanoseconds since the epoch).
 *
 * What it is for (src/builder/checksum.ts, src/context/treememo.ts): a cached build whose COPY
 * sources have not changed. Every field that a change to an entry's name, type, content, mode,
 * owner or link target moves is in the digest: its path, mode, owner, size, inode, device
 * numbers, mtime and ctime (the kernel sets ctime on every write, chmod, chown, rename and
 * link). So a tree whose stamp is the one recorded with a checksum, and none of whose ctimes was
 * recent then (git's "racily clean" rule, applied by the caller), still has that checksum, and
 * the checksum's walk in Node (an lstat each, several times the syscall) need not run.
 *
 * --prune REL leaves out the entry at REL (relative to DIR, '/'-separated) and everything below
 * it: the directories the build context's .dockerignore hides as a whole, as the caller found
 * them on its own walk.
 *
 * The digest covers the entries in a fixed order (depth-first, pre-order, each directory's
 * children in strcmp order), never the order the directories are read in: N threads list and
 * lstat the directories, each one a job, and the records are hashed once all are in. Nothing is
 * followed or opened but directories (O_NOFOLLOW); any error fails the stamp (the caller then
 * walks the tree itself and meets the error there, worded for the user).
 */
#include "helper.h"

/* See gzip.c: the deprecated one-shot SHA-256 API keeps libcrypto's provider machinery out. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* What the digest takes of an lstat, in a fixed layout. */
struct fields {
	uint64_t mode, uid, gid, size, ino, dev, rdev;
	int64_t mtime_sec, mtime_nsec, ctime_sec, ctime_nsec;
};

/* One directory: listed and lstat'ed by a worker, hashed by the main thread at the end. */
struct job {
	int fd;        /* open until listed */
	char *path;    /* relative to DIR, '' for DIR itself */
	size_t nchild; /* its entries, in strcmp order, once listed */
	char **names;
	struct fields *fields;
	struct job **subdirs; /* per entry: the job of a directory, else NULL */
	struct job *next;     /* in the queue */
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	struct job *queue; /* LIFO: depth-first, so few directories are open at once */
	size_t running;    /* jobs taken and not finished */
	char **prune;      /* sorted */
	size_t nprune;
	int64_t newest_sec, newest_nsec;
	size_t entries;
} s = {.lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER};

static void fields_of(const struct stat *st, struct fields *f)
{
	*f = (struct fields){
		.mode = st->st_mode,
		.uid = st->st_uid,
		.gid = st->st_gid,
		.size = (uint64_t)st->st_size,
		.ino = st->st_ino,
		.dev = st->st_dev,
		.rdev = st->st_rdev,
		.mtime_sec = st->st_mtim.tv_sec,
		.mtime_nsec = st->st_mtim.tv_nsec,
		.ctime_sec = st->st_ctim.tv_sec,
		.ctime_nsec = st->st_ctim.tv_nsec,
	};
}

/* Under s.lock. */
static void note_ctime(const struct fields *f)
{
	if (f->ctime_sec > s.newest_sec || (f->ctime_sec == s.newest_sec && f->ctime_nsec > s.newest_nsec)) {
		s.newest_sec = f->ctime_sec;
		s.newest_nsec = f->ctime_nsec;
	}
}

static char *join(const char *dir, const char *name)
{
	size_t dlen = strlen(dir), nlen = strlen(name);
	char *p = xmalloc(dlen + nlen + 2);
	if (dlen > 0) {
		memcpy(p, dir, dlen);
		p[dlen++] = '/';
	}
	memcpy(p + dlen, name, nlen + 1);
	return p;
}

static bool pruned(const char *path)
{
	return s.nprune > 0 && bsearch(&path, s.prune, s.nprune, sizeof *s.prune, strcmp_ptr) != NULL;
}

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/* Lists, sorts and lstats one directory; queues its subdirectories. */
static void list(struct job *j)
{
	size_t cap = 0;
	char buf[32 * 1024];
	for (;;) {
		long got = syscall(SYS_getdents64, j->fd, buf, sizeof buf);
		if (got < 0)
			die_errno("stamp: read directory %s", j->path[0] ? j->path : ".");
		if (got == 0)
			break;
		for (long off = 0; off < got;) {
			struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + off);
			off += d->d_reclen;
			if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
				continue;
			if (j->nchild == cap)
				j->names = xrealloc(j->names, (cap = cap ? cap * 2 : 16) * sizeof *j->names);
			j->names[j->nchild++] = xstrdup(d->d_name);
		}
	}
	if (j->nchild > 1)
		qsort(j->names, j->nchild, sizeof *j->names, strcmp_ptr);
	j->fields = xmalloc((j->nchild ? j->nchild : 1) * sizeof *j->fields);
	j->subdirs = xmalloc((j->nchild ? j->nchild : 1) * sizeof *j->subdirs);
	struct job *found = NULL, *last = NULL;
	size_t kept = 0;
	for (size_t i = 0; i < j->nchild; i++) {
		char *name = j->names[i];
		char *path = join(j->path, name);
		if (pruned(path)) {
			free(path);
			free(name);
			continue;
		}
		struct stat st;
		if (fstatat(j->fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			die_errno("stamp: lstat %s", path);
		j->names[kept] = name;
		fields_of(&st, &j->fields[kept]);
		j->subdirs[kept] = NULL;
		if (S_ISDIR(st.st_mode)) {
			struct job *sub = calloc(1, sizeof *sub);
			if (!sub)
				die("stamp: out of memory");
			sub->fd = openat(j->fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub->fd < 0)
				die_errno("stamp: open %s", path);
			sub->path = path;
			j->subdirs[kept] = sub;
			/* Queued in reverse, so the first subdirectory is taken first. */
			sub->next = found;
			found = sub;
			if (!last)
				last = sub;
		} else {
			free(path);
		}
		kept++;
	}
	j->nchild = kept;
	close(j->fd);
	j->fd = -1;

	pthread_mutex_lock(&s.lock);
	for (size_t i = 0; i < kept; i++)
		note_ctime(&j->fields[i]);
	s.entries += kept;
	if (found) {
		last->next = s.queue;
		s.queue = found;
	}
	s.running--;
	pthread_cond_broadcast(&s.changed);
	pthread_mutex_unlock(&s.lock);
}

static void *worker(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&s.lock);
	for (;;) {
		while (!s.queue && s.running > 0)
			pthread_cond_wait(&s.changed, &s.lock);
		if (!s.queue)
			break; /* nothing queued, nothing that could queue more */
		struct job *j = s.queue;
		s.queue = j->next;
		s.running++;
		pthread_mutex_unlock(&s.lock);
		list(j);
		pthread_mutex_lock(&s.lock);
	}
	pthread_mutex_unlock(&s.lock);
	return NULL;
}

static void hash_entry(SHA256_CTX *h, const char *path, const struct fields *f)
{
	SHA256_Update(h, path, strlen(path) + 1);
	SHA256_Update(h, f, sizeof *f);
}

/* Pre-order: each entry, then what is below it if it is a directory. */
static void hash_dir(SHA256_CTX *h, const struct job *j)
{
	for (size_t i = 0; i < j->nchild; i++) {
		const char *path = j->subdirs[i] ? j->subdirs[i]->path : NULL;
		char *joined = path ? NULL : join(j->path, j->names[i]);
		hash_entry(h, path ? path : joined, &j->fields[i]);
		free(joined);
		if (j->subdirs[i])
			hash_dir(h, j->subdirs[i]);
	}
}

int cmd_stamp(int argc, char **argv)
{
	static const char usage[] = "stamp [--threads N] [--prune REL]... DIR";
	static const struct option opts[] = {
		{"threads", required_argument, NULL, 't'},
		{"prune", required_argument, NULL, 'p'},
		{NULL, 0, NULL, 0},
	};
	unsigned long long threads = 1;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			threads = parse_number(optarg, "--threads", 64);
			if (threads == 0)
				die("stamp: --threads must be at least 1");
			break;
		case 'p':
			s.prune = xrealloc(s.prune, (s.nprune + 1) * sizeof *s.prune);
			s.prune[s.nprune++] = optarg;
			break;
		default:
			die("usage: %s %s", PROGNAME, usage);
		}
	}
	if (optind != argc - 1)
		die("usage: %s %s", PROGNAME, usage);
	const char *dir = argv[optind];
	if (s.nprune > 1)
		qsort(s.prune, s.nprune, sizeof *s.prune, strcmp_ptr);
	/* A directory stays open until a worker lists it: allow as many as the hard limit does. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	struct job root = {.path = ""};
	root.fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root.fd < 0)
		die_errno("stamp: open %s", dir);
	struct stat st;
	if (fstat(root.fd, &st) < 0)
		die_errno("stamp: lstat %s", dir);
	struct fields top;
	fields_of(&st, &top);
	note_ctime(&top);
	s.entries = 1;
	s.queue = &root;

	pthread_t *ids = xmalloc(threads * sizeof *ids);
	for (unsigned long long i = 1; i < threads; i++) {
		int err = pthread_create(&ids[i], NULL, worker, NULL);
		if (err) {
			errno = err;
			die_errno("stamp: start a thread");
		}
	}
	worker(NULL);
	for (unsigned long long i = 1; i < threads; i++)
		pthread_join(ids[i], NULL);

	SHA256_CTX h;
	SHA256_Init(&h);
	hash_entry(&h, "", &top);
	hash_dir(&h, &root);
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256_Final(md, &h);
	printf("sha256:");
	for (size_t i = 0; i < sizeof md; i++)
		printf("%02x", md[i]);
	printf(" %zu %lld.%09lld\n", s.entries, (long long)s.newest_sec, (long long)s.newest_nsec);
	if (fflush(stdout) != 0 || ferror(stdout))
		die_errno("stamp: write");
	return 0;
}
