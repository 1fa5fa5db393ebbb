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
 * The output depends only on the input bytes, the level, the block size and libdeflate's
 * version, never on how the input arrives or on the number of threads: the push cache relies on
 * "same tar, same blob digest". An empty input gives one empty member, a valid gzip file.
 *
 * Memory: N + 2 blocks in flight (read, compressing, or compressed and waiting to be written),
 * each with its input and output buffer: ~12 MB for 1 MiB blocks on 2 threads.
 */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libdeflate.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
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
		size_t n = libdeflate_gzip_compress(c, s->in, s->in_len, s->out, q.out_cap);
		if (n == 0)
			die("gzip: a block did not fit its bound");
		pthread_mutex_lock(&q.lock);
		s->out_len = n;
		s->state = COMPRESSED;
		pthread_cond_broadcast(&q.changed);
	}
	pthread_mutex_unlock(&q.lock);
	libdeflate_free_compressor(c);
	return NULL;
}

static void write_all(const unsigned char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(STDOUT_FILENO, p, len);
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
		write_all(s->out, s->out_len);
		pthread_mutex_lock(&q.lock);
		s->state = FREE;
		pthread_cond_broadcast(&q.changed);
	}
	pthread_mutex_unlock(&q.lock);
	return NULL;
}

/* Up to `cap` bytes of stdin; fewer only at end of input. */
static size_t read_block(unsigned char *buf, size_t cap)
{
	size_t got = 0;
	while (got < cap) {
		ssize_t n = read(STDIN_FILENO, buf + got, cap - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die_errno("gzip: read");
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return got;
}

int cmd_gzip(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"level", required_argument, NULL, 'l'},
	    {"block-size", required_argument, NULL, 'b'},
	    {"threads", required_argument, NULL, 't'},
	    {NULL, 0, NULL, 0},
	};
	const char *usage = "usage: " PROGNAME " gzip [--level 1-12] [--block-size BYTES] [--threads N]";
	q.level = 6;
	q.block_size = 1 << 20;
	size_t threads = 2;
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
	q.out_cap = libdeflate_gzip_compress_bound(probe, q.block_size);
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

	/* The reader: fill the next slot once the writer has freed it. */
	for (;;) {
		pthread_mutex_lock(&q.lock);
		struct slot *s = &q.slots[q.filled % q.nslots];
		while (s->state != FREE)
			pthread_cond_wait(&q.changed, &q.lock);
		pthread_mutex_unlock(&q.lock);
		size_t n = read_block(s->in, q.block_size);
		pthread_mutex_lock(&q.lock);
		/* A block only if it holds bytes, or is the whole (empty) input's one member. */
		if (n > 0 || q.filled == 0) {
			s->in_len = n;
			s->state = FILLED;
			q.filled++;
		}
		if (n < q.block_size)
			q.end = true;
		pthread_cond_broadcast(&q.changed);
		pthread_mutex_unlock(&q.lock);
		if (n < q.block_size)
			break;
	}

	for (size_t i = 0; i < threads; i++)
		pthread_join(workers[i], NULL);
	pthread_join(out, NULL);
	return 0;
}
