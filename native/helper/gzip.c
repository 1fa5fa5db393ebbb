/*
 * gzip [--level N] [--block-size BYTES] [--threads N]: stdin gzipped to stdout, for a layer blob
 * on its way to a registry (src/registry/compress.ts).
 *
 * The input is cut into blocks at fixed offsets (every BYTES bytes, the last one shorter) and
 * each block becomes one gzip member, compressed by libdeflate on one of N threads; the members
 * are written in input order. libdeflate deflates at zlib's levels 2-3 times faster than zlib,
 * but only whole buffers, each ending with a final block, so the blocks cannot be joined into one
 * deflate stream as pigz joins zlib's: they become a series of members instead, which RFC 1952
 * (2.2) makes one gzip file, read whole by every gzip reader a layer meets (Go's gzip.Reader in
 * Docker, containerd, the registries and skopeo, unpigz, gzip -d, zlib's gunzip in Node);
 * eStargz layers are built the same way.
 *
 * Bytes that deflate cannot shrink are stored instead of searched (store_member): a block is
 * judged in 64 KiB chunks, and a run of chunks that look like random bytes (already compressed
 * files, encrypted or random data) becomes a member of stored deflate blocks, the rest members
 * compressed at the level. Deflate at level 6 spends as long on such bytes as on text (~95 MB/s
 * here) to emit them as they are; stored, they cost a histogram and a look for repeats, at
 * memory speed, and come out the same size. (Fast deflaters do the same; klauspost/compress's
 * levels skip incompressible input.)
 *
 * The output depends only on the input bytes, the level, the block size and libdeflate's
 * version, never on how the input arrives or on the number of threads: the push cache relies on
 * "same tar, same blob digest". An empty input gives one empty member, a valid gzip file.
 *
 * Memory: N + 2 blocks in flight (read, compressing, or compressed and waiting to be written),
 * each with its input and output buffer: ~12 MB for 1 MiB blocks on 2 threads.
 *
 * --framed: the input is not the bytes themselves but frames that say where they are, so that
 * a layer's big files go from the page cache straight into the blocks instead of through Node
 * and a pipe (src/runtime/gzip.ts helperGzipPieces). Each frame is a 17-byte header, a type
 * byte and two little-endian 64-bit numbers, then what the type says:
 *   'B' LEN 0        LEN bytes follow: input as they are (tar headers, small files);
 *   'F' SIZE PATHLEN PATHLEN bytes of an absolute path follow: the input is the SIZE bytes of
 *                    that regular file, opened without following a symlink, whose size must
 *                    be SIZE when opened and which must hold that many when read.
 * End of input at a frame boundary ends the input. The blocks, and so the output, are the same
 * as for the concatenated input given plainly.
 *
 * --digest-fd FD: once the input is read, "sha256:<hex>\n" of it is written to FD (the layer's
 * diffID, which the caller checks before it lets the output count).
 */
#include "helper.h"

/* SHA256_Init and friends: deprecated in OpenSSL 3 in favour of EVP, whose provider machinery
 * would link all of libcrypto into the helper (4.5 MB against 0.2 MB); the same code runs. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libdeflate.h>
#include <limits.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum slot_state { FREE, FILLED, COMPRESSED };

struct slot {
	enum slot_state state;
	unsigned char *in, *out;
	size_t in_len, out_len;
};

/* Everything the reader (main thread), the workers and the writer share, under `lock`. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t changed; /* any slot's state, `filled`, `taken` or `end` moved */
	struct slot *slots;
	size_t nslots;
	size_t filled; /* blocks read so far; block i lives in slots[i % nslots] */
	size_t taken;  /* blocks a worker has started on */
	bool end;      /* the reader saw end of input: `filled` is the total */
	int level;
	size_t block_size, out_cap;
} q = {.lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER};

/* What a block is judged in: each chunk is stored or deflated (the last one may be shorter). */
#define CHUNK (64 * 1024)
/* A shorter chunk is always deflated: too few bytes to judge, and few to gain. */
#define MIN_JUDGED 4096

/*
 * Whether deflate would gain (next to) nothing on these bytes: their byte histogram is flat,
 * so no Huffman code shortens them, and no 8-byte string recurs, so LZ77 finds no matches.
 *
 * Flat: the sum of the squared counts is within 2 % of the uniform one, n²/256; random bytes
 * are ~0.4 % over it (the variance), text and machine code several times over. Recurring
 * strings: random data repeated (two copies of a compressed file) has a flat histogram too, so
 * 8-byte values at content-defined anchors (1 position in 16, picked by the bytes themselves,
 * so that a copy has the same anchors) go into a small table; a few repeats say "deflate".
 */
static bool incompressible(const unsigned char *p, size_t n)
{
	if (n < MIN_JUDGED)
		return false;
	uint32_t counts[256] = {0};
	for (size_t i = 0; i < n; i++)
		counts[p[i]]++;
	uint64_t squares = 0;
	for (int b = 0; b < 256; b++)
		squares += (uint64_t)counts[b] * counts[b];
	uint64_t uniform = (uint64_t)n * n / 256;
	if (squares > uniform + uniform / 50)
		return false;

	enum { SLOTS = 8192 };
	static __thread uint64_t table[SLOTS];
	static __thread uint32_t epoch_of[SLOTS], epoch;
	epoch++;
	int repeats = 0;
	for (size_t i = 0; i + 8 <= n; i++) {
		uint32_t v32;
		memcpy(&v32, p + i, 4);
		if ((v32 * 2654435761u) >> 28 != 0)
			continue;
		uint64_t v;
		memcpy(&v, p + i, 8);
		uint32_t slot = (uint32_t)((v * 0x9e3779b97f4a7c15ull) >> 51) & (SLOTS - 1);
		if (epoch_of[slot] == epoch && table[slot] == v) {
			if (++repeats >= 4)
				return false;
		}
		epoch_of[slot] = epoch;
		table[slot] = v;
	}
	return true;
}

static void put_le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/*
 * `len` bytes as one gzip member of stored deflate blocks (RFC 1951 3.2.4, at most 65,535
 * bytes each); returns its size. `out` has room for it (member_bound).
 */
static size_t store_member(const unsigned char *in, size_t len, unsigned char *out)
{
	static const unsigned char header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}; /* as libdeflate writes it */
	size_t o = sizeof header;
	memcpy(out, header, sizeof header);
	size_t at = 0;
	do {
		size_t n = len - at < 65535 ? len - at : 65535;
		out[o++] = at + n == len ? 1 : 0; /* BFINAL on the last; BTYPE 00: stored */
		out[o++] = (unsigned char)n;
		out[o++] = (unsigned char)(n >> 8);
		out[o++] = (unsigned char)~n;
		out[o++] = (unsigned char)(~n >> 8);
		memcpy(out + o, in + at, n);
		o += n;
		at += n;
	} while (at < len);
	put_le32(out + o, libdeflate_crc32(0, in, len));
	put_le32(out + o + 4, (uint32_t)len);
	return o + 8;
}

/* Room for a block's members, whichever chunks are stored: each chunk at its own worst case. */
static size_t member_bound(struct libdeflate_compressor *c, size_t block_size)
{
	size_t chunks = block_size / CHUNK + 1;
	size_t deflated = libdeflate_gzip_compress_bound(c, CHUNK);
	size_t stored = 18 + CHUNK + 5 * (CHUNK / 65535 + 1);
	return chunks * (deflated > stored ? deflated : stored);
}

/* One block as its members: runs of chunks stored or deflated alike. Returns the size written. */
static size_t compress_block(struct libdeflate_compressor *c, const unsigned char *in, size_t len, unsigned char *out)
{
	if (len == 0)
		return libdeflate_gzip_compress(c, in, 0, out, q.out_cap);
	size_t o = 0;
	size_t start = 0;
	bool stored = incompressible(in, len < CHUNK ? len : CHUNK);
	while (start < len) {
		size_t end = start;
		bool next = stored;
		do {
			end += len - end < CHUNK ? len - end : CHUNK;
			if (end < len)
				next = incompressible(in + end, len - end < CHUNK ? len - end : CHUNK);
		} while (end < len && next == stored);
		size_t n = stored ? store_member(in + start, end - start, out + o)
				  : libdeflate_gzip_compress(c, in + start, end - start, out + o, q.out_cap - o);
		if (n == 0)
			die("gzip: a block did not fit its bound");
		o += n;
		start = end;
		stored = next;
	}
	return o;
}

static void *worker(void *arg)
{
	(void)arg;
	struct libdeflate_compressor *c = libdeflate_alloc_compressor(q.level);
	if (!c)
		die("gzip: out of memory");
	pthread_mutex_lock(&q.lock);
	for (;;) {
		while (q.taken == q.filled && !q.end)
			pthread_cond_wait(&q.changed, &q.lock);
		if (q.taken == q.filled)
			break;
		struct slot *s = &q.slots[q.taken++ % q.nslots];
		pthread_mutex_unlock(&q.lock);
		size_t n = compress_block(c, s->in, s->in_len, s->out);
		pthread_mutex_lock(&q.lock);
		s->out_len = n;
		s->state = COMPRESSED;
		pthread_cond_broadcast(&q.changed);
	}
	pthread_mutex_unlock(&q.lock);
	libdeflate_free_compressor(c);
	return NULL;
}

static void write_all(int fd, const unsigned char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die_errno("gzip: write");
		p += n;
		len -= (size_t)n;
	}
}

/* Members go out in input order, each as soon as it and all before it are compressed. */
static void *writer(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&q.lock);
	for (size_t next = 0;; next++) {
		struct slot *s = &q.slots[next % q.nslots];
		while (!(q.end && next == q.filled) && !(next < q.filled && s->state == COMPRESSED))
			pthread_cond_wait(&q.changed, &q.lock);
		if (q.end && next == q.filled)
			break;
		pthread_mutex_unlock(&q.lock);
		write_all(STDOUT_FILENO, s->out, s->out_len);
		pthread_mutex_lock(&q.lock);
		s->state = FREE;
		pthread_cond_broadcast(&q.changed);
	}
	pthread_mutex_unlock(&q.lock);
	return NULL;
}

/*
 * The reader's side (the main thread): the block being filled, handed to the workers when full
 * or when the input ends, and the running sha256 of the input when one was asked for.
 */
static struct {
	struct slot *slot; /* the block being filled, or NULL until the next byte needs one */
	size_t fill;
	SHA256_CTX *sha; /* NULL without --digest-fd */
} in;

/* The next block's slot, once the writer has freed it. */
static struct slot *free_slot(void)
{
	pthread_mutex_lock(&q.lock);
	struct slot *s = &q.slots[q.filled % q.nslots];
	while (s->state != FREE)
		pthread_cond_wait(&q.changed, &q.lock);
	pthread_mutex_unlock(&q.lock);
	return s;
}

/*
 * Hands the block being filled to the workers; `last` also says the input has ended. A block
 * goes only if it holds bytes, or is the whole (empty) input's one member.
 */
static void submit(bool last)
{
	if (in.fill == 0 && !(last && q.filled == 0)) {
		in.slot = NULL; /* never marked: the same slot is the next block's */
		pthread_mutex_lock(&q.lock);
		q.end = last;
		pthread_cond_broadcast(&q.changed);
		pthread_mutex_unlock(&q.lock);
		return;
	}
	struct slot *s = in.slot ? in.slot : free_slot();
	if (in.sha && in.fill > 0)
		SHA256_Update(in.sha, s->in, in.fill);
	pthread_mutex_lock(&q.lock);
	s->in_len = in.fill;
	s->state = FILLED;
	q.filled++;
	q.end = last;
	pthread_cond_broadcast(&q.changed);
	pthread_mutex_unlock(&q.lock);
	in.slot = NULL;
	in.fill = 0;
}

/*
 * Up to `want` bytes from fd into the block being filled (taking a new one when needed); the
 * count read, 0 only at end of file. Full blocks go to the workers.
 */
static size_t fill_from(int fd, size_t want)
{
	if (!in.slot)
		in.slot = free_slot();
	size_t room = q.block_size - in.fill;
	ssize_t n;
	do
		n = read(fd, in.slot->in + in.fill, want < room ? want : room);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return (size_t)-1;
	in.fill += (size_t)n;
	if (in.fill == q.block_size)
		submit(false);
	return (size_t)n;
}

/* The plain input: stdin, in blocks, to its end. */
static void read_plain(void)
{
	for (;;) {
		size_t n = fill_from(STDIN_FILENO, q.block_size);
		if (n == (size_t)-1)
			die_errno("gzip: read");
		if (n == 0)
			break;
	}
	submit(true);
}

/* Exactly `len` bytes of stdin into buf; false at end of input before the first byte. */
static bool read_exact(void *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(STDIN_FILENO, (char *)buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die_errno("gzip: read");
		if (n == 0) {
			if (got == 0)
				return false;
			die("gzip: the input ended inside a frame header");
		}
		got += (size_t)n;
	}
	return true;
}

static uint64_t le64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/*
 * Exactly `len` bytes of fd into the blocks: a frame's payload from stdin (`path` NULL) or a
 * file's content.
 */
static void fill_exactly(int fd, uint64_t len, const char *path)
{
	while (len > 0) {
		size_t n = fill_from(fd, len < SIZE_MAX ? (size_t)len : SIZE_MAX);
		if (n == (size_t)-1 && path)
			die_errno("gzip: read %s", path);
		if (n == (size_t)-1)
			die_errno("gzip: read");
		if (n == 0 && path)
			die("gzip: %s shrank while being read", path);
		if (n == 0)
			die("gzip: the input ended inside a frame");
		len -= n;
	}
}

/* `size` bytes of the regular file `path` into the blocks. */
static void read_file(const char *path, uint64_t size)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		die_errno("gzip: open %s", path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		die_errno("gzip: fstat %s", path);
	if (!S_ISREG(st.st_mode))
		die("gzip: %s is not a regular file", path);
	if ((uint64_t)st.st_size != size)
		die("gzip: %s has %lld bytes, the layer recorded %llu", path, (long long)st.st_size, (unsigned long long)size);
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	fill_exactly(fd, size, path);
	close(fd);
}

/* The framed input (see the top of this file), to its end. */
static void read_framed(void)
{
	unsigned char header[17];
	char *path = xmalloc(PATH_MAX + 1);
	while (read_exact(header, sizeof header)) {
		uint64_t a = le64(header + 1), b = le64(header + 9);
		switch (header[0]) {
		case 'B':
			fill_exactly(STDIN_FILENO, a, NULL);
			break;
		case 'F':
			if (b == 0 || b > PATH_MAX)
				die("gzip: a file frame's path is %llu bytes long", (unsigned long long)b);
			if (!read_exact(path, (size_t)b))
				die("gzip: the input ended inside a frame");
			path[b] = '\0';
			if (path[0] != '/' || strlen(path) != b)
				die("gzip: a file frame's path is not absolute or holds a NUL");
			read_file(path, a);
			break;
		default:
			die("gzip: unknown frame type 0x%02x", header[0]);
		}
	}
	free(path);
	submit(true);
}

int cmd_gzip(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"level", required_argument, NULL, 'l'},
	    {"block-size", required_argument, NULL, 'b'},
	    {"threads", required_argument, NULL, 't'},
	    {"framed", no_argument, NULL, 'f'},
	    {"digest-fd", required_argument, NULL, 'd'},
	    {NULL, 0, NULL, 0},
	};
	const char *usage =
	    "usage: " PROGNAME " gzip [--level 1-12] [--block-size BYTES] [--threads N] [--framed] [--digest-fd FD]";
	q.level = 6;
	q.block_size = 1 << 20;
	size_t threads = 2;
	bool framed = false;
	int digest_fd = -1;
	int opt;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			q.level = (int)parse_number(optarg, "--level", 12);
			break;
		case 'b':
			q.block_size = parse_number(optarg, "--block-size", 1 << 30);
			break;
		case 't':
			threads = parse_number(optarg, "--threads", 64);
			break;
		case 'f':
			framed = true;
			break;
		case 'd':
			digest_fd = (int)parse_number(optarg, "--digest-fd", INT_MAX);
			break;
		default:
			die("%s", usage);
		}
	}
	if (optind != argc || q.level < 1 || q.block_size == 0 || threads == 0)
		die("%s", usage);

	/* Pipes of 1 MiB rather than 64 KiB: a sixteenth of the wake-ups on each side. Only a
	 * speed-up, so a refusal (not a pipe, or over /proc/sys/fs/pipe-max-size) is fine. */
	fcntl(STDIN_FILENO, F_SETPIPE_SZ, 1 << 20);
	fcntl(STDOUT_FILENO, F_SETPIPE_SZ, 1 << 20);

	struct libdeflate_compressor *probe = libdeflate_alloc_compressor(q.level);
	if (!probe)
		die("gzip: out of memory");
	q.out_cap = member_bound(probe, q.block_size);
	libdeflate_free_compressor(probe);

	q.nslots = threads + 2;
	q.slots = xmalloc(q.nslots * sizeof *q.slots);
	for (size_t i = 0; i < q.nslots; i++) {
		q.slots[i] = (struct slot){.state = FREE, .in = xmalloc(q.block_size), .out = xmalloc(q.out_cap)};
	}

	pthread_t workers[64], out;
	for (size_t i = 0; i < threads; i++) {
		if ((errno = pthread_create(&workers[i], NULL, worker, NULL)) != 0)
			die_errno("gzip: pthread_create");
	}
	if ((errno = pthread_create(&out, NULL, writer, NULL)) != 0)
		die_errno("gzip: pthread_create");

	if (digest_fd >= 0) {
		in.sha = xmalloc(sizeof *in.sha);
		SHA256_Init(in.sha);
	}
	/* The reader: this thread. */
	if (framed)
		read_framed();
	else
		read_plain();
	if (in.sha) {
		unsigned char md[SHA256_DIGEST_LENGTH];
		SHA256_Final(md, in.sha);
		char line[8 + 64 + 2];
		int at = snprintf(line, sizeof line, "sha256:");
		for (unsigned i = 0; i < SHA256_DIGEST_LENGTH; i++)
			at += snprintf(line + at, sizeof line - (size_t)at, "%02x", md[i]);
		line[at++] = '\n';
		write_all(digest_fd, (const unsigned char *)line, (size_t)at);
		free(in.sha);
	}

	for (size_t i = 0; i < threads; i++)
		pthread_join(workers[i], NULL);
	pthread_join(out, NULL);
	return 0;
}
