/*
 * walk DIR: one JSON object per line for every entry below DIR (the WalkRecord of
 * src/runtime/types.ts), depth-first, pre-order, each directory's children in strcmp order:
 * the order the entries take in a layer tar.
 *
 * Built for trees of 100,000 files: every lookup is relative to the open parent directory
 * (fstatat, readlinkat, openat), never a path re-resolved from "/". The xattr calls have no
 * *at form, so we fchdir into each directory once and name entries relative to it.
 * Nothing is followed: symlinks are reported, not entered.
 */
#include "helper.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

struct buf {
	char *data;
	size_t len, cap;
};

static void buf_reserve(struct buf *b, size_t extra)
{
	if (b->len + extra <= b->cap)
		return;
	while (b->len + extra > b->cap)
		b->cap = b->cap ? b->cap * 2 : 256;
	b->data = xrealloc(b->data, b->cap);
}

/* The path of the current entry relative to DIR, and scratch space for xattrs. */
static struct buf path;
static struct buf names, value;

/*
 * The length of the strict UTF-8 sequence (no overlongs, no surrogates, nothing past U+10FFFF)
 * starting at s[i], or 0 if none does.
 */
static size_t utf8_seq_len(const unsigned char *s, size_t len, size_t i)
{
	unsigned char c = s[i];
	size_t n;
	unsigned int cp;
	if (c < 0x80)
		return 1;
	else if (c >= 0xc2 && c <= 0xdf)
		n = 1, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 2, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 3, cp = c & 0x07;
	else
		return 0;
	if (i + n >= len) /* truncated sequence */
		return 0;
	for (size_t k = 1; k <= n; k++) {
		if ((s[i + k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i + k] & 0x3f);
	}
	if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n + 1;
}

/*
 * S as a JSON string. File names, link targets and xattr names are bytes, not text: a byte that does not
 * start a valid UTF-8 sequence is written as the lone surrogate \udcXX (Python's
 * "surrogateescape"), which JSON.parse keeps, so that src/fs/bytename.ts turns the string back
 * into the same bytes for every fs call and tar header. Valid UTF-8 never decodes to a lone
 * surrogate, so the two cannot be confused.
 */
static void put_json_string(const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	putchar_unlocked('"');
	for (size_t i = 0; i < len;) {
		unsigned char c = u[i];
		if (c >= 0x80) {
			size_t n = utf8_seq_len(u, len, i);
			if (n == 0) {
				fputs_unlocked("\\udc", stdout);
				putchar_unlocked(hex[c >> 4]);
				putchar_unlocked(hex[c & 15]);
				i++;
			} else {
				fwrite_unlocked(s + i, 1, n, stdout);
				i += n;
			}
			continue;
		}
		switch (c) {
		case '"': fputs_unlocked("\\\"", stdout); break;
		case '\\': fputs_unlocked("\\\\", stdout); break;
		case '\n': fputs_unlocked("\\n", stdout); break;
		case '\r': fputs_unlocked("\\r", stdout); break;
		case '\t': fputs_unlocked("\\t", stdout); break;
		case '\b': fputs_unlocked("\\b", stdout); break;
		case '\f': fputs_unlocked("\\f", stdout); break;
		default:
			if (c < 0x20) {
				fputs_unlocked("\\u00", stdout);
				putchar_unlocked(hex[c >> 4]);
				putchar_unlocked(hex[c & 15]);
			} else {
				putchar_unlocked(c);
			}
		}
		i++;
	}
	putchar_unlocked('"');
}

static void put_base64(const unsigned char *s, size_t len)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	putchar_unlocked('"');
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)s[i] << 16;
		if (i + 1 < len)
			v |= (unsigned)s[i + 1] << 8;
		if (i + 2 < len)
			v |= s[i + 2];
		putchar_unlocked(alphabet[(v >> 18) & 63]);
		putchar_unlocked(alphabet[(v >> 12) & 63]);
		putchar_unlocked(i + 1 < len ? alphabet[(v >> 6) & 63] : '=');
		putchar_unlocked(i + 2 < len ? alphabet[v & 63] : '=');
	}
	putchar_unlocked('"');
}

/*
 * llistxattr/lgetxattr into B, which grows until the answer fits. The buffer at hand is tried
 * first: nearly every entry has no xattrs or short ones, and asking for the size first made
 * two calls of each (a third of the walk's syscalls on a tree of small files).
 */
static ssize_t xattr_call(struct buf *b, ssize_t (*probe)(void *ctx, char *buf, size_t size), void *ctx)
{
	buf_reserve(b, 256);
	for (;;) {
		ssize_t n = probe(ctx, b->data, b->cap);
		if (n >= 0 || errno != ERANGE)
			return n;
		/* Too small: ask for the size, then try again (it may grow in between: ERANGE again). */
		n = probe(ctx, NULL, 0);
		if (n < 0)
			return n;
		buf_reserve(b, (size_t)n + 1);
	}
}

struct xattr_ctx {
	const char *file, *name;
};

static ssize_t probe_list(void *ctx, char *buf, size_t size)
{
	return llistxattr(((struct xattr_ctx *)ctx)->file, buf, size);
}

static ssize_t probe_get(void *ctx, char *buf, size_t size)
{
	struct xattr_ctx *x = ctx;
	return lgetxattr(x->file, x->name, buf, size);
}

/* FILE is relative to the current directory, which walk_dir keeps at the entry's parent. */
static void put_xattrs(const char *file)
{
	struct xattr_ctx ctx = {.file = file};
	ssize_t len = xattr_call(&names, probe_list, &ctx);
	if (len < 0) {
		if (errno == ENOTSUP || errno == ENODATA)
			return; /* a filesystem without xattrs: nothing to report */
		die_errno("walk: listxattr %s", path.data);
	}
	if (len == 0)
		return;
	/* Sorted, so the output (and any tar built from it) does not depend on the filesystem. */
	size_t count = 0;
	for (ssize_t i = 0; i < len; i += (ssize_t)strlen(names.data + i) + 1)
		count++;
	char **sorted = xmalloc(count * sizeof *sorted);
	count = 0;
	for (ssize_t i = 0; i < len; i += (ssize_t)strlen(names.data + i) + 1)
		sorted[count++] = names.data + i;
	qsort(sorted, count, sizeof *sorted, strcmp_ptr);

	fputs_unlocked(",\"xattrs\":{", stdout);
	for (size_t i = 0; i < count; i++) {
		ctx.name = sorted[i];
		ssize_t vlen = xattr_call(&value, probe_get, &ctx);
		if (vlen < 0) {
			if (errno == ENODATA)
				continue; /* removed since the listing */
			die_errno("walk: getxattr %s %s", sorted[i], path.data);
		}
		if (i > 0)
			putchar_unlocked(',');
		put_json_string(sorted[i], strlen(sorted[i]));
		putchar_unlocked(':');
		put_base64((const unsigned char *)value.data, (size_t)vlen);
	}
	putchar_unlocked('}');
	free(sorted);
}

static char type_char(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: return 'f';
	case S_IFDIR: return 'd';
	case S_IFLNK: return 'l';
	case S_IFCHR: return 'c';
	case S_IFBLK: return 'b';
	case S_IFIFO: return 'p';
	case S_IFSOCK: return 's';
	default: die("walk: %s: unknown file type %o", path.data, (unsigned)(mode & S_IFMT));
	}
}

static void put_record(int dirfd, const char *name, const struct stat *st)
{
	char type = type_char(st->st_mode);
	fputs_unlocked("{\"path\":", stdout);
	put_json_string(path.data, path.len);
	printf(",\"type\":\"%c\",\"mode\":%u,\"uid\":%u,\"gid\":%u,\"size\":%lld,\"mtime\":%lld,"
	       "\"mtimeNs\":%ld,\"ino\":%llu,\"nlink\":%llu",
	       type, (unsigned)(st->st_mode & 07777), (unsigned)st->st_uid, (unsigned)st->st_gid,
	       type == 'f' ? (long long)st->st_size : 0LL, (long long)st->st_mtim.tv_sec,
	       (long)st->st_mtim.tv_nsec, (unsigned long long)st->st_ino, (unsigned long long)st->st_nlink);
	if (type == 'c' || type == 'b')
		printf(",\"devMajor\":%u,\"devMinor\":%u", major(st->st_rdev), minor(st->st_rdev));
	if (type == 'l') {
		/* st_size is the target's length on most filesystems, but not all (procfs): grow. */
		size_t cap = st->st_size > 0 ? (size_t)st->st_size + 1 : 256;
		for (;;) {
			buf_reserve(&value, cap);
			ssize_t n = readlinkat(dirfd, name, value.data, value.cap);
			if (n < 0)
				die_errno("walk: readlink %s", path.data);
			if ((size_t)n < value.cap) {
				fputs_unlocked(",\"link\":", stdout);
				put_json_string(value.data, (size_t)n);
				break;
			}
			cap = value.cap * 2;
		}
	}
	put_xattrs(name);
	fputs_unlocked("}\n", stdout);
}

/* DIRFD is open on the directory whose path (relative to DIR) is path.data[0..path.len). */
static void walk_dir(int dirfd)
{
	DIR *d = fdopendir(dirfd);
	if (!d)
		die_errno("walk: opendir %s", path.len ? path.data : ".");
	/* Read the whole directory first: its children are reported sorted, not in disk order. */
	char **entries = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	errno = 0;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (n == cap)
			entries = xrealloc(entries, (cap = cap ? cap * 2 : 16) * sizeof *entries);
		entries[n++] = xstrdup(e->d_name);
	}
	if (errno != 0)
		die_errno("walk: readdir %s", path.len ? path.data : ".");
	if (n > 1) /* an empty directory has no array at all, and qsort(NULL) is undefined */
		qsort(entries, n, sizeof *entries, strcmp_ptr);

	size_t base = path.len;
	if (fchdir(dirfd) < 0)
		die_errno("walk: chdir %s", path.len ? path.data : ".");
	for (size_t i = 0; i < n; i++) {
		const char *name = entries[i];
		size_t nlen = strlen(name);
		path.len = base;
		buf_reserve(&path, nlen + 2);
		if (base > 0)
			path.data[path.len++] = '/';
		memcpy(path.data + path.len, name, nlen + 1);
		path.len += nlen;

		struct stat st;
		if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			die_errno("walk: lstat %s", path.data);
		put_record(dirfd, name, &st);
		if (S_ISDIR(st.st_mode)) {
			int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0)
				die_errno("walk: open %s", path.data);
			walk_dir(fd);
			if (fchdir(dirfd) < 0) /* back to this directory for the next siblings' xattrs */
				die_errno("walk: chdir %s", path.data);
		}
		free(entries[i]);
	}
	path.len = base;
	if (path.data)
		path.data[base] = '\0';
	free(entries);
	closedir(d);
}

int cmd_walk(int argc, char **argv)
{
	const char *dir = single_operand(argc, argv, "walk DIR");
	/* One descriptor per level of nesting: allow deep trees as far as the hard limit goes. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	static char out[1 << 16];
	setvbuf(stdout, out, _IOFBF, sizeof out);
	buf_reserve(&path, 256);
	path.data[0] = '\0';

	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		die_errno("walk: open %s", dir);
	walk_dir(fd);
	if (fflush(stdout) != 0 || ferror(stdout))
		die_errno("walk: write");
	return 0;
}
