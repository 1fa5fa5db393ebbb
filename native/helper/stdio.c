/*
 * run's standard streams: what the command's stdin, stdout and stderr are, and the copying
 * this process does for them while the command runs.
 *
 * Without --tty the command inherits our descriptors, except sockets: Node connects children
 * through Unix socketpairs, and opening /proc/self/fd/N of a socket fails (ENXIO), so
 * `cat /dev/stdin`, `echo > /dev/stderr` or `tee /dev/stdout` would break where Docker (which
 * hands out FIFOs) works. Such a stream goes through a pipe instead, and we copy between the
 * pipe and the socket; stdin's pipe is closed when ours reaches EOF, so EOF reaches the command.
 *
 * With --tty (`tsbuild run -t`) the command gets a pseudo-terminal, as runc makes one for
 * `docker run -t`: the container's init opens it on the container's own devpts (so `tty` names
 * /dev/pts/0 there, and /dev/console is bound to it), makes the slave its controlling terminal
 * and its stdin, stdout and stderr, and sends us the master over a socket (runc's console
 * socket). We copy our stdin to the master and the master to our stdout, and set the
 * terminal's size from --winsize-fd: tsbuild writes "ROWS COLS\n" there whenever the user's
 * terminal is resized.
 *
 * Every copy is a pump with a buffer of its own; descriptors we made are non-blocking, so a
 * command that reads no input while its output waits can never block us (and so itself).
 */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

struct pump {
	int in, out;    /* -1 once closed */
	bool output;    /* the command's output: drained before the run ends */
	bool close_out; /* out is ours alone: closed at in's EOF, so EOF reaches the command */
	bool broken;    /* out went away: keep draining in so the writer never blocks, drop the data */
	size_t off, len;
	char buf[16384];
};

struct run_io {
	bool tty;
	int console[2];    /* tty: [0] ours, receives the master; [1] the child's */
	int winsize_fd;    /* tty: size changes from tsbuild, or -1 */
	int stdin_pipe[2]; /* no tty, our stdin a socket: the command reads [0] */
	int out_pipe[3][2]; /* no tty, our stdout (1) or stderr (2) a socket: the command writes [1] */
	struct pump pumps[3];
	size_t npumps;
	int master;
	struct winsize size; /* the latest from winsize_fd */
	bool size_pending;   /* received before the master */
	char line[64];
	size_t linelen;
};

static bool is_socket(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

static void set_nonblock(int fd)
{
	int flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		die_errno("fcntl O_NONBLOCK");
}

static void add_pump(struct run_io *io, int in, int out, bool output, bool close_out)
{
	io->pumps[io->npumps++] = (struct pump){.in = in, .out = out, .output = output, .close_out = close_out};
}

struct run_io *io_prepare(bool tty, int winsize_fd)
{
	struct run_io *io = xmalloc(sizeof *io);
	memset(io, 0, sizeof *io);
	io->tty = tty;
	io->winsize_fd = winsize_fd;
	io->master = -1;
	io->console[0] = io->console[1] = -1;
	io->stdin_pipe[0] = io->stdin_pipe[1] = -1;
	for (int fd = 0; fd < 3; fd++)
		io->out_pipe[fd][0] = io->out_pipe[fd][1] = -1;
	if (tty) {
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, io->console) < 0)
			die_errno("socketpair");
		return io;
	}
	if (is_socket(STDIN_FILENO)) {
		if (pipe2(io->stdin_pipe, O_CLOEXEC) < 0)
			die_errno("pipe");
		set_nonblock(io->stdin_pipe[1]);
		add_pump(io, STDIN_FILENO, io->stdin_pipe[1], false, true);
	}
	for (int fd = STDOUT_FILENO; fd <= STDERR_FILENO; fd++) {
		if (!is_socket(fd))
			continue;
		if (pipe2(io->out_pipe[fd], O_CLOEXEC) < 0)
			die_errno("pipe");
		add_pump(io, io->out_pipe[fd][0], fd, true, false);
	}
	return io;
}

/* In the child, before container_init: the pipes become its stdio; the console end is kept. */
void io_child(struct run_io *io, struct run_config *cfg)
{
	cfg->console_fd = io->console[1];
	if (io->console[0] >= 0)
		close(io->console[0]);
	if (io->winsize_fd >= 0)
		close(io->winsize_fd);
	/* dup2 clears close-on-exec: the copy on fd 0, 1 or 2 is what the command inherits. */
	if (io->stdin_pipe[0] >= 0 && dup2(io->stdin_pipe[0], STDIN_FILENO) < 0)
		die_errno("dup2");
	for (int fd = STDOUT_FILENO; fd <= STDERR_FILENO; fd++) {
		if (io->out_pipe[fd][1] >= 0 && dup2(io->out_pipe[fd][1], fd) < 0)
			die_errno("dup2");
	}
	for (int fd = 0; fd < 3; fd++) {
		for (int end = 0; end < 2; end++) {
			int p = fd == 0 ? io->stdin_pipe[end] : io->out_pipe[fd][end];
			if (p >= 0)
				close(p);
		}
	}
}

/* In the parent after the fork: the ends the child uses are closed here. */
void io_parent(struct run_io *io)
{
	if (io->console[1] >= 0)
		close(io->console[1]);
	if (io->stdin_pipe[0] >= 0)
		close(io->stdin_pipe[0]);
	for (int fd = STDOUT_FILENO; fd <= STDERR_FILENO; fd++) {
		if (io->out_pipe[fd][1] >= 0)
			close(io->out_pipe[fd][1]);
	}
}

/*
 * In the container, after pivot_root (so the pty is one of its own devpts, named as the command
 * will see it) and before the switch of user: a pty whose slave becomes the controlling
 * terminal and stdin, stdout and stderr of this process; the master goes to the parent. The
 * slave is given to the command's user, keeping its group (tty), as runc does.
 */
void console_attach(const struct run_config *cfg)
{
	int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		die_errno("open /dev/ptmx");
	char name[64];
	if (grantpt(master) < 0 || unlockpt(master) < 0 || ptsname_r(master, name, sizeof name) != 0)
		die_errno("unlock the pseudo-terminal");
	struct winsize ws = {.ws_row = cfg->rows, .ws_col = cfg->cols};
	if (ioctl(master, TIOCSWINSZ, &ws) < 0)
		die_errno("set the size of %s", name);
	int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		die_errno("open %s", name);
	/* runc's /dev/console: the same terminal, bound over a file of our fresh /dev. */
	int console = open("/dev/console", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (console < 0)
		die_errno("create /dev/console");
	close(console);
	if (mount(name, "/dev/console", NULL, MS_BIND, NULL) < 0)
		die_errno("bind %s on /dev/console", name);

	char byte = 0;
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	memset(&control, 0, sizeof control);
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &master, sizeof(int));
	if (sendmsg(cfg->console_fd, &msg, 0) < 0)
		die_errno("send the pseudo-terminal");
	close(master);
	close(cfg->console_fd);

	if (setsid() < 0)
		die_errno("setsid");
	if (ioctl(slave, TIOCSCTTY, 0) < 0)
		die_errno("make %s the controlling terminal", name);
	if (cfg->uid != 0 && fchown(slave, cfg->uid, (gid_t)-1) < 0)
		die_errno("chown %s", name);
	for (int fd = 0; fd < 3; fd++) {
		if (dup2(slave, fd) < 0)
			die_errno("dup2");
	}
	close(slave);
}

/* The master, or -1 if the child died before sending it (its setup error says why). */
static int receive_master(int sock)
{
	char byte;
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf};
	ssize_t n;
	while ((n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
		;
	close(sock);
	struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL;
	if (!c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int)))
		return -1;
	int fd;
	memcpy(&fd, CMSG_DATA(c), sizeof fd);
	return fd;
}

static void apply_size(struct run_io *io)
{
	if (io->master >= 0 && io->size_pending) {
		ioctl(io->master, TIOCSWINSZ, &io->size); /* a hung-up pty refuses: nothing to size */
		io->size_pending = false;
	}
}

/* Lines "ROWS COLS\n"; a malformed one is ignored (a resize is a hint, never worth failing for). */
static void read_sizes(struct run_io *io)
{
	char buf[256];
	ssize_t n = read(io->winsize_fd, buf, sizeof buf);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		close(io->winsize_fd);
		io->winsize_fd = -1;
		return;
	}
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] != '\n') {
			if (io->linelen < sizeof io->line - 1)
				io->line[io->linelen++] = buf[i];
			continue;
		}
		io->line[io->linelen] = '\0';
		io->linelen = 0;
		unsigned rows, cols;
		if (sscanf(io->line, "%u %u", &rows, &cols) == 2 && rows <= 0xffff && cols <= 0xffff) {
			io->size = (struct winsize){.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
			io->size_pending = true;
		}
	}
	apply_size(io);
}

static void pump_close_in(struct pump *p)
{
	close(p->in);
	p->in = -1;
	p->len = 0;
	if (p->close_out && p->out >= 0) {
		close(p->out);
		p->out = -1;
	}
}

static void pump_write(struct pump *p)
{
	while (p->len > 0 && !p->broken) {
		ssize_t n = write(p->out, p->buf + p->off, p->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			p->broken = true;
			break;
		}
		p->off += (size_t)n;
		p->len -= (size_t)n;
	}
	if (p->broken) {
		p->len = 0;
		/* stdin the command stopped reading: leave the rest of ours unread. */
		if (!p->output)
			pump_close_in(p);
	}
}

static void pump_read(struct pump *p)
{
	ssize_t n = read(p->in, p->buf, sizeof p->buf);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) { /* EOF, or EIO from a master whose slave is closed everywhere */
		pump_close_in(p);
		return;
	}
	p->off = 0;
	p->len = p->broken ? 0 : (size_t)n;
	pump_write(p);
}

static bool pump_done(const struct pump *p)
{
	return !p->output || (p->in < 0 && p->len == 0);
}

/*
 * Until the command is over: collect the child's setup error (its pipe closes at execve or at
 * its death) and keep every pump going. The run ends when PID 1 has exited and its output is
 * drained: output pipes and the master reach EOF once the last process holding them is gone,
 * which the death of PID 1 guarantees. Our stdin is left alone from then on.
 */
size_t io_supervise(struct run_io *io, pid_t pid, int errfd, char *msg, size_t cap)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		die_errno("pidfd_open");
	if (io->tty) {
		io->master = receive_master(io->console[0]);
		if (io->master >= 0) {
			set_nonblock(io->master);
			int in = dup(io->master);
			if (in < 0)
				die_errno("dup");
			add_pump(io, STDIN_FILENO, in, false, true);
			add_pump(io, io->master, STDOUT_FILENO, true, false);
			apply_size(io);
		}
	}
	size_t msglen = 0;
	bool exited = false;
	for (;;) {
		struct pollfd p[8];
		int who[8]; /* -1 errfd, -2 pidfd, -3 winsize, else 2*pump + (0 in, 1 out) */
		size_t n = 0;
		bool done = errfd < 0 && exited;
		if (errfd >= 0)
			p[n] = (struct pollfd){.fd = errfd, .events = POLLIN}, who[n++] = -1;
		if (!exited)
			p[n] = (struct pollfd){.fd = pidfd, .events = POLLIN}, who[n++] = -2;
		if (io->winsize_fd >= 0 && !exited)
			p[n] = (struct pollfd){.fd = io->winsize_fd, .events = POLLIN}, who[n++] = -3;
		for (size_t i = 0; i < io->npumps; i++) {
			struct pump *q = &io->pumps[i];
			done = done && pump_done(q);
			if (!q->output && exited)
				continue;
			if (q->len > 0)
				p[n] = (struct pollfd){.fd = q->out, .events = POLLOUT}, who[n++] = (int)(2 * i + 1);
			else if (q->in >= 0)
				p[n] = (struct pollfd){.fd = q->in, .events = POLLIN}, who[n++] = (int)(2 * i);
		}
		if (done)
			break;
		if (poll(p, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			die_errno("poll");
		}
		for (size_t k = 0; k < n; k++) {
			if (!p[k].revents)
				continue;
			if (who[k] == -1) {
				char buf[1024];
				ssize_t got = read(errfd, buf, sizeof buf);
				if (got < 0 && errno == EINTR)
					continue;
				if (got <= 0) {
					close(errfd);
					errfd = -1;
					continue;
				}
				size_t take = (size_t)got < cap - 1 - msglen ? (size_t)got : cap - 1 - msglen;
				memcpy(msg + msglen, buf, take);
				msglen += take;
			} else if (who[k] == -2) {
				exited = true;
			} else if (who[k] == -3) {
				read_sizes(io);
			} else if (who[k] % 2 == 0) {
				pump_read(&io->pumps[who[k] / 2]);
			} else {
				pump_write(&io->pumps[who[k] / 2]);
			}
		}
	}
	close(pidfd);
	return msglen;
}
