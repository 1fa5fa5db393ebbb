/*
 * The container's first process, between fork and execve.
 *
 * First the secrets are read from their pipes (secret.c), so that a bad one fails the step
 * before anything exists. Then the order follows runc's: namespaces; make every mount private
 * before creating any, so nothing propagates to the host; build the new root's mounts while
 * the host's paths are still reachable (bind sources live there); pivot_root and detach the
 * old root; mask the kernel files Docker masks; drop capabilities and switch user last,
 * because every step before needs root; exec.
 *
 * --privileged is RUN --security=insecure, BuildKit's insecure entitlement
 * (util/entitlements/security/security_linux.go, WithInsecureSpec, plus writable sysfs): every
 * capability, no masked or read-only kernel files, /sys writable, and devices allowed (the
 * nodev that stands in for Docker's device cgroup is left off, and BuildKit's extra device
 * nodes are made).
 *
 * This process is PID 1 of a fresh PID namespace (the parent unshared CLONE_NEWPID before
 * forking), so the /proc mounted here shows only the step's processes, and when the command
 * exits the kernel kills everything it left behind.
 *
 * Any failure before execve goes through die(), which the parent redirected into a
 * close-on-exec pipe: it is a setup failure, not the command's output.
 */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/loop.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <grp.h>

/*
 * PR_SET_PDEATHSIG only covers a parent that is alive when it is set: if the helper died
 * just before, we would never be told. The parent holds the write end of a pipe for its
 * whole life (and never writes), so a hang-up on our read end means it is gone.
 */
static void die_with_parent(int parent_alive_fd)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		die_errno("prctl(PR_SET_PDEATHSIG)");
	struct pollfd p = {.fd = parent_alive_fd, .events = POLLIN};
	if (poll(&p, 1, 0) < 0)
		die_errno("poll");
	if (p.revents & (POLLHUP | POLLERR))
		_exit(EXIT_RUN_SETUP);
}

/* A new network namespace has lo, but down: bring it up so 127.0.0.1 works (Docker's --network none). */
static void bring_up_loopback(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		die_errno("socket");
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		die_errno("get flags of lo");
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		die_errno("bring up lo");
	close(s);
}

/* mount(2) onto the inode FD refers to, never onto a path that could be swapped meanwhile. */
static void mount_on_fd(int fd, const char *source, const char *fstype, unsigned long flags,
			const char *data, const char *what)
{
	char target[64];
	snprintf(target, sizeof target, "/proc/self/fd/%d", fd);
	if (mount(source, target, fstype, flags, data) < 0)
		die_errno("mount %s on %s", fstype ? fstype : source ? source : "(remount)", what);
}

/* Mount a filesystem on PATH inside the root, creating the directory if the image lacks it. */
static void mount_in_root(int rootfd, const char *path, const char *fstype, unsigned long flags,
			  const char *data)
{
	int fd = ensure_in_root(rootfd, path, true, 0755);
	mount_on_fd(fd, fstype, fstype, flags, data, path);
	close(fd);
}

/*
 * The device nodes BuildKit adds in insecure mode, where runc makes them (mode 0666, root's)
 * and the device cgroup allows every device: kmsg, cuse, fuse, kvm, net/tun, loop-control,
 * and loop0 up to the host's first free loop device plus 7, so that a step can set up a few
 * loop devices. A node whose driver the host lacks is made all the same; opening it fails.
 */
static void make_insecure_devices(int dev)
{
	static const struct {
		const char *name;
		unsigned int major, minor;
	} nodes[] = {
		{"kmsg", 1, 11}, {"cuse", 10, 203}, {"fuse", 10, 229}, {"kvm", 10, 232},
		{"net/tun", 10, 200}, {"loop-control", 10, 237},
	};
	if (mkdirat(dev, "net", 0755) < 0)
		die_errno("mkdir /dev/net");
	for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
		if (mknodat(dev, nodes[i].name, S_IFCHR | 0666, makedev(nodes[i].major, nodes[i].minor)) < 0)
			die_errno("mknod /dev/%s", nodes[i].name);
	}
	/* The host's /dev is still ours to read (before pivot_root). Like BuildKit: no loop-control, start at 0. */
	int free_loop = 0;
	int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl >= 0) {
		int n = ioctl(ctl, LOOP_CTL_GET_FREE);
		free_loop = n > 0 ? n : 0;
		close(ctl);
	}
	for (int i = 0; i <= free_loop + 7; i++) {
		char name[32];
		snprintf(name, sizeof name, "loop%d", i);
		if (mknodat(dev, name, S_IFBLK | 0666, makedev(7, (unsigned)i)) < 0)
			die_errno("mknod /dev/%s", name);
	}
}

/*
 * /dev is a small tmpfs of our own, not the host's devtmpfs: the step gets the few
 * harmless devices Docker gives every container and nothing else.
 *
 * Docker lets a container mknod any device but its device cgroup refuses to open all but
 * those few; we have no device cgroup, so the same rule comes from nodev instead: this tmpfs
 * (like the root, see prepare_rootfs) is mounted nodev, and the allowed devices are bind
 * mounts of the host's own nodes, whose mounts do allow devices. A node a step makes is
 * still made (and goes into the layer, as in Docker), it just cannot be opened.
 */
static void setup_dev(int rootfd, bool privileged)
{
	mount_in_root(rootfd, "/dev", "tmpfs", MS_NOSUID | (privileged ? 0 : MS_NODEV) | MS_STRICTATIME,
		      "mode=755,size=65536k");
	/* Reopen: the fd from before the mount names the directory underneath it. */
	int dev = open_in_root(rootfd, "/dev", O_PATH | O_DIRECTORY);
	if (dev < 0)
		die_errno("open /dev");

	static const char *const nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
	for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
		char source[32];
		snprintf(source, sizeof source, "/dev/%s", nodes[i]);
		struct stat st;
		if (stat(source, &st) < 0 || !S_ISCHR(st.st_mode))
			die("the host's %s is missing or not a character device", source);
		int fd = openat(dev, nodes[i], O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
		if (fd < 0)
			die_errno("create /dev/%s", nodes[i]);
		mount_on_fd(fd, source, NULL, MS_BIND, NULL, source);
		close(fd);
	}

	/* The fresh tmpfs is ours alone, so plain paths below it are safe. */
	char path[128];
	if (mkdirat(dev, "pts", 0755) < 0)
		die_errno("mkdir /dev/pts");
	snprintf(path, sizeof path, "/proc/self/fd/%d/pts", dev);
	/* newinstance: the step's ptys are its own, not the host's. In a user namespace whose map has
	 * no group 5 (rootless with a single ID, runtime/userns.ts) gid=5 is invalid: the ptys then
	 * belong to the opener's group, as they would on a system without a tty group. */
	if (mount("devpts", path, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5") < 0 &&
	    (errno != EINVAL || mount("devpts", path, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620") < 0))
		die_errno("mount devpts on /dev/pts");

	if (mkdirat(dev, "shm", 01777) < 0)
		die_errno("mkdir /dev/shm");
	snprintf(path, sizeof path, "/proc/self/fd/%d/shm", dev);
	if (mount("shm", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k") < 0)
		die_errno("mount tmpfs on /dev/shm");

	/* POSIX message queues of the step's own IPC namespace. */
	if (mkdirat(dev, "mqueue", 0755) < 0)
		die_errno("mkdir /dev/mqueue");
	snprintf(path, sizeof path, "/proc/self/fd/%d/mqueue", dev);
	if (mount("mqueue", path, "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		die_errno("mount mqueue on /dev/mqueue");

	static const struct {
		const char *name, *target;
	} links[] = {
		{"ptmx", "pts/ptmx"},
		{"fd", "/proc/self/fd"},
		{"stdin", "/proc/self/fd/0"},
		{"stdout", "/proc/self/fd/1"},
		{"stderr", "/proc/self/fd/2"},
	};
	for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
		if (symlinkat(links[i].target, dev, links[i].name) < 0)
			die_errno("symlink /dev/%s", links[i].name);
	}
	if (privileged)
		make_insecure_devices(dev);
	close(dev);
}

/*
 * Attach TREE, a detached mount, at TARGET inside the root: over a directory if TREE is one,
 * else over a file (made empty if missing), which is also what a Unix socket needs. The
 * target is resolved inside the root like every other (ensure_in_root), and the mount is
 * moved onto that exact inode.
 */
static void attach_in_root(int rootfd, int tree, const char *target)
{
	struct stat st;
	if (fstat(tree, &st) < 0)
		die_errno("stat the mount for %s", target);
	bool directory = S_ISDIR(st.st_mode);
	int fd = ensure_in_root(rootfd, target, directory, directory ? 0755 : 0644);
	if (move_mount(tree, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		die_errno("mount on %s", target);
	close(fd);
	close(tree);
}

/*
 * A host directory, file or socket: the init files (/etc/hosts...) and RUN --mount=type=bind
 * (a snapshot, the build context, a cache, the SSH agent's socket). Cloned with its submounts,
 * like BuildKit's rbind; read-only and nodev applied to the whole clone before it is attached,
 * so it is never visible writable, and devices an earlier step made in a snapshot stay
 * unopenable here too (the nodev rule of prepare_rootfs).
 */
static int bind_tree(const struct step_mount *m, bool privileged)
{
	int tree = open_tree(AT_FDCWD, m->source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
	if (tree < 0)
		die_errno("bind source %s", m->source);
	struct mount_attr attr = {
		.attr_set = (m->readonly ? MOUNT_ATTR_RDONLY : 0) | (privileged ? 0 : MOUNT_ATTR_NODEV),
	};
	if (attr.attr_set && mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0)
		die_errno("bind %s on %s: set %s", m->source, m->target, m->readonly ? "read-only" : "nodev");
	return tree;
}

/*
 * RUN --mount=type=tmpfs: BuildKit's options (nosuid, size), plus nodev, the rule of
 * prepare_rootfs, which BuildKit gets from the device cgroup. The root takes the mode of the
 * directory it is mounted on (0755 for one made for it), as runc gives a tmpfs without a mode
 * option: a Docker build shows `drwxr-xr-x` there, not the kernel's default 1777. `tsbuild run
 * --tmpfs` gives its mode explicitly (docker run's tmpfs mounts are 1777 unless told otherwise).
 */
static int tmpfs_tree(int rootfd, const struct step_mount *m, bool privileged)
{
	int target = ensure_in_root(rootfd, m->target, true, 0755);
	struct stat st;
	if (fstat(target, &st) < 0)
		die_errno("stat %s", m->target);
	close(target);
	int fsfd = fsopen("tmpfs", FSOPEN_CLOEXEC);
	if (fsfd < 0)
		die_errno("tmpfs on %s: fsopen", m->target);
	char size[32], mode[16];
	snprintf(size, sizeof size, "%llu", m->size);
	snprintf(mode, sizeof mode, "%o", (unsigned)((m->mode_set ? m->mode : st.st_mode) & 07777));
	if (fsconfig(fsfd, FSCONFIG_SET_STRING, "source", "tmpfs", 0) < 0 ||
	    fsconfig(fsfd, FSCONFIG_SET_STRING, "mode", mode, 0) < 0 ||
	    (m->size > 0 && fsconfig(fsfd, FSCONFIG_SET_STRING, "size", size, 0) < 0) ||
	    fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		die_errno("tmpfs on %s", m->target);
	int tree = fsmount(fsfd, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | (privileged ? 0 : MOUNT_ATTR_NODEV));
	if (tree < 0)
		die_errno("tmpfs on %s: fsmount", m->target);
	close(fsfd);
	return tree;
}

/*
 * The caller's mounts over paths in the root, in the order given (a mount at /a before one
 * at /a/b, whose target is then made inside the first). Each is built detached and attached
 * whole. Secret files need a staging directory (see secret_file_tree): made on our /dev before
 * any of these mounts could cover it, removed once they are all in place.
 */
static void apply_mounts(int rootfd, struct run_config *cfg)
{
	static const char stage_name[] = ".tsbuild-secret-stage";
	int dev = -1, stage = -1;
	for (size_t i = 0; i < cfg->nmounts && stage < 0; i++) {
		if (cfg->mounts[i].type != STEP_SECRET)
			continue;
		dev = open_in_root(rootfd, "/dev", O_PATH | O_DIRECTORY);
		if (dev < 0)
			die_errno("open /dev");
		if (mkdirat(dev, stage_name, 0700) < 0)
			die_errno("mkdir /dev/%s", stage_name);
		stage = openat(dev, stage_name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (stage < 0)
			die_errno("open /dev/%s", stage_name);
	}
	for (size_t i = 0; i < cfg->nmounts; i++) {
		struct step_mount *m = &cfg->mounts[i];
		int tree = m->type == STEP_BIND    ? bind_tree(m, cfg->privileged)
			   : m->type == STEP_TMPFS ? tmpfs_tree(rootfd, m, cfg->privileged)
						   : secret_file_tree(m, stage);
		attach_in_root(rootfd, tree, m->target);
	}
	if (stage >= 0) {
		close(stage);
		if (unlinkat(dev, stage_name, AT_REMOVEDIR) < 0)
			die_errno("rmdir /dev/%s", stage_name);
		close(dev);
	}
}

/*
 * A new filesystem of `fstype` on `path` in the root. Where the kernel refuses one (EPERM), the
 * one tsbuild runs with is bound there instead, recursively, with `attr` set on every mount of it.
 */
static void mount_or_bind(int rootfd, const char *path, const char *fstype, unsigned long flags,
			  uint64_t attr)
{
	int fd = ensure_in_root(rootfd, path, true, 0755);
	char target[64];
	snprintf(target, sizeof target, "/proc/self/fd/%d", fd);
	if (mount(fstype, target, fstype, flags, NULL) == 0) {
		close(fd);
		return;
	}
	if (errno != EPERM)
		die_errno("mount %s on %s", fstype, path);
	int tree = open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
	if (tree < 0)
		die_errno("bind %s (a new %s was refused)", path, fstype);
	struct mount_attr set = {.attr_set = attr};
	if (mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &set, sizeof set) < 0)
		die_errno("bind %s: set its mount attributes", path);
	if (move_mount(tree, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		die_errno("bind %s on %s", path, path);
	close(tree);
	close(fd);
}

/*
 * /sys. A new sysfs shows the network devices of the step's network namespace, and the kernel
 * lets only that namespace's owner mount it: in a user namespace of tsbuild's own (rootless,
 * runtime/userns.ts) with --network host, the network namespace is still the user's, owned by
 * the initial user namespace, and the mount is refused (EPERM). Then the host's /sys is bound
 * instead, recursively and read-only, as rootless podman does with the host's network.
 */
static void mount_sys(int rootfd, bool privileged)
{
	unsigned long flags = (privileged ? 0 : MS_RDONLY) | MS_NOSUID | MS_NODEV | MS_NOEXEC;
	uint64_t attr =
		(privileged ? 0 : MOUNT_ATTR_RDONLY) | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
	mount_or_bind(rootfd, "/sys", "sysfs", flags, attr);
}

/*
 * A new proc for the step's PID namespace. Where the kernel refuses one (EPERM: in a user
 * namespace whose /proc has masked paths, as in a Kubernetes pod or a podman container, a new
 * proc would reveal what they hide), the /proc tsbuild runs with is bound instead, its masks
 * included: the step then sees the processes of tsbuild's own namespace, as BuildKit's
 * --oci-worker-no-process-sandbox does. They are the user's processes, which the user sees anyway.
 */
static void mount_proc(int rootfd)
{
	mount_or_bind(rootfd, "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		      MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
}

/* A bind remount replaces every per-mount flag: keep those the rootfs had, add nodev. */
static void remount_nodev(const char *rootfs)
{
	struct statvfs sv;
	if (statvfs(rootfs, &sv) < 0)
		die_errno("statvfs %s", rootfs);
	unsigned long keep = 0;
	static const struct {
		unsigned long st, ms;
	} kept[] = {
		{ST_RDONLY, MS_RDONLY}, {ST_NOSUID, MS_NOSUID}, {ST_NOEXEC, MS_NOEXEC}, {ST_NOATIME, MS_NOATIME},
		{ST_NODIRATIME, MS_NODIRATIME}, {ST_RELATIME, MS_RELATIME},
	};
	for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
		keep |= (sv.f_flag & kept[i].st) ? kept[i].ms : 0;
	if (mount(NULL, rootfs, NULL, MS_BIND | MS_REMOUNT | MS_NODEV | keep, NULL) < 0)
		die_errno("remount %s nodev", rootfs);
}

/* Everything the new root needs, mounted while the host's paths are still visible. */
static int prepare_rootfs(struct run_config *cfg)
{
	/* pivot_root needs the new root to be a mount point; a plain directory becomes one. */
	if (mount(cfg->rootfs, cfg->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
		die_errno("bind %s onto itself", cfg->rootfs);
	/* nodev: device nodes the image or the step made cannot be opened (see setup_dev). Not when
	 * privileged: BuildKit's insecure mode opens the device cgroup to every device. */
	if (!cfg->privileged)
		remount_nodev(cfg->rootfs);
	/* Opened here, in our mount namespace and after the bind: mounts must target our own tree. */
	int rootfd = open(cfg->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		die_errno("open %s", cfg->rootfs);

	mount_proc(rootfd);
	setup_dev(rootfd, cfg->privileged);
	mount_sys(rootfd, cfg->privileged);
	apply_mounts(rootfd, cfg);

	/* WORKDIR that does not exist yet: Docker creates it, owned by root. */
	close(ensure_in_root(rootfd, cfg->cwd, true, 0755));
	return rootfd;
}

/*
 * pivot_root rather than chroot: a chroot keeps the host's tree reachable (chroot escapes,
 * open fds); after pivot_root and detaching the old root it is simply not mounted here.
 */
static void enter_rootfs(int rootfd)
{
	int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (oldroot < 0)
		die_errno("open /");
	if (fchdir(rootfd) < 0)
		die_errno("chdir to the root filesystem");
	/* pivot_root(".", "."): the old root ends up stacked on the new one, no put_old dir needed. */
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		die_errno("pivot_root");
	if (fchdir(oldroot) < 0)
		die_errno("chdir to the old root");
	if (umount2(".", MNT_DETACH) < 0)
		die_errno("detach the old root");
	if (chdir("/") < 0)
		die_errno("chdir /");
	close(oldroot);
	close(rootfd);
}

/*
 * Docker's default masked and read-only kernel paths: the host's kernel memory, keys and
 * timers stay hidden, and sysctls cannot be changed from a build step.
 */
static void restrict_kernel_files(void)
{
	static const char *const masked[] = {
		"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
		"/sys/firmware", "/sys/devices/virtual/powercap",
	};
	static const char *const readonly[] = {
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	};
	struct stat st;
	for (size_t i = 0; i < sizeof masked / sizeof masked[0]; i++) {
		if (lstat(masked[i], &st) < 0) {
			if (errno == ENOENT)
				continue;
			die_errno("stat %s", masked[i]);
		}
		int rc = S_ISDIR(st.st_mode) ? mount("tmpfs", masked[i], "tmpfs", MS_RDONLY, NULL)
					     : mount("/dev/null", masked[i], NULL, MS_BIND, NULL);
		if (rc < 0)
			die_errno("mask %s", masked[i]);
	}
	for (size_t i = 0; i < sizeof readonly / sizeof readonly[0]; i++) {
		if (mount(readonly[i], readonly[i], NULL, MS_BIND | MS_REC, NULL) < 0) {
			if (errno == ENOENT)
				continue;
			die_errno("bind %s", readonly[i]);
		}
		/* Keep /proc's own nosuid,nodev,noexec: a bind remount replaces all flags. */
		if (mount(NULL, readonly[i], NULL,
			  MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
			die_errno("make %s read-only", readonly[i]);
	}
}

/*
 * Docker's default capability set. A root step can chown, mknod, bind low ports; it cannot
 * mount, load modules or change the clock. Dropping from the bounding set is enough for
 * root, whose capabilities after execve are the bounding set; a non-root user gets none.
 */
static void limit_capabilities(void)
{
	static const int keep[] = {
		CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FSETID, CAP_FOWNER, CAP_MKNOD,
		CAP_NET_RAW, CAP_SETGID, CAP_SETUID, CAP_SETFCAP, CAP_SETPCAP,
		CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT, CAP_KILL, CAP_AUDIT_WRITE,
	};
	/* PR_CAPBSET_READ fails past the last capability this kernel knows. */
	for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++) {
		bool kept = false;
		for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
			kept = kept || keep[i] == cap;
		if (!kept && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
			die_errno("drop capability %d", cap);
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		die_errno("clear ambient capabilities");
	/*
	 * The inheritable set is not limited by the bounding set: root's permitted set after
	 * execve is bounding | inheritable. tsbuild started with inheritable capabilities (by
	 * setpriv, capsh, or an old container runtime) would hand them to the step (CVE-2022-24769
	 * in runc): empty it, as Docker does.
	 */
	struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	if (syscall(SYS_capget, &header, data) < 0)
		die_errno("capget");
	for (size_t i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
		data[i].inheritable = 0;
	if (syscall(SYS_capset, &header, data) < 0)
		die_errno("clear inheritable capabilities");
}

/*
 * --privileged, after switch_user: every capability we hold, in the permitted, effective,
 * inheritable and ambient sets, as BuildKit's WithInsecureSpec sets them. The ambient set is
 * what carries them across execve for a non-root user, so a USER step has them too; root gets
 * its bounding set, which we left whole.
 */
static void all_capabilities(void)
{
	struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	if (syscall(SYS_capget, &header, data) < 0)
		die_errno("capget");
	for (size_t i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
		data[i].effective = data[i].inheritable = data[i].permitted;
	if (syscall(SYS_capset, &header, data) < 0)
		die_errno("capset");
	for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++) {
		if (!(data[CAP_TO_INDEX(cap)].permitted & CAP_TO_MASK(cap)))
			continue;
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
			die_errno("raise ambient capability %d", cap);
	}
}

/*
 * Whether setgroups(2) is refused in this user namespace: its parent wrote "deny" to
 * /proc/PID/setgroups, which the kernel demands before an unprivileged process may write a gid
 * map (rootless with a single ID, native/helper/userns.c). Read before pivot_root.
 */
static bool setgroups_denied(void)
{
	char buf[8] = {0};
	int fd = open("/proc/self/setgroups", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	return n > 0 && strncmp(buf, "deny", 4) == 0;
}

static void switch_user(const struct run_config *cfg, int parent_alive_fd, bool groups_denied)
{
	/* Try the working directory as root first, and again as the user below (runc does the same:
	 * a directory on root-squashed NFS may only be reachable by the user). */
	bool in_cwd = chdir(cfg->cwd) == 0;
	/* With setgroups denied the step keeps the groups it inherited (the user's, shown as the
	 * overflow group): the kernel allows no other, and a single-ID map has no group to give. */
	if (!groups_denied && setgroups(cfg->ngroups, cfg->groups) < 0)
		die_errno("setgroups");
	/* EINVAL: the ID has no place in this user namespace's map (rootless without a subordinate
	 * range for it, runtime/userns.ts). */
	if (setgid(cfg->gid) < 0)
		die_errno(errno == EINVAL ? "setgid %u: the group is not mapped in tsbuild's user namespace (see tsbuild info)"
					  : "setgid %u",
			  (unsigned)cfg->gid);
	if (setuid(cfg->uid) < 0)
		die_errno(errno == EINVAL ? "setuid %u: the user is not mapped in tsbuild's user namespace (see tsbuild info)"
					  : "setuid %u",
			  (unsigned)cfg->uid);
	/* Changing credentials clears the parent-death signal: set it again. */
	die_with_parent(parent_alive_fd);
	if (!in_cwd && chdir(cfg->cwd) < 0)
		die_errno("chdir %s", cfg->cwd);
}

static const char *env_lookup(char *const *env, const char *key)
{
	size_t klen = strlen(key);
	for (; *env; env++) {
		if (strncmp(*env, key, klen) == 0 && (*env)[klen] == '=')
			return *env + klen + 1;
	}
	return NULL;
}

/* Not the command's fault or ours: the shell's convention, 127 not found, 126 not runnable. */
static noreturn void exec_failed(const char *file, int errnum)
{
	fprintf(stderr, "%s: exec %s: %s\n", PROGNAME, file, strerror(errnum));
	_exit(errnum == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC);
}

/*
 * execvpe() would search the PATH of *our* environment; the command's PATH is the one in
 * cfg->env. So search it here, like execvp: keep going past missing or non-executable
 * candidates and report EACCES only if nothing better turned up.
 */
static noreturn void exec_command(const struct run_config *cfg)
{
	const char *file = cfg->argv[0];
	if (strchr(file, '/')) {
		execve(file, cfg->argv, cfg->env);
		exec_failed(file, errno);
	}
	const char *path = env_lookup(cfg->env, "PATH");
	int err = ENOENT;
	if (path && *file) {
		size_t flen = strlen(file);
		char *candidate = xmalloc(strlen(path) + flen + 3);
		for (const char *dir = path;; dir++) {
			const char *end = strchrnul(dir, ':');
			size_t dlen = (size_t)(end - dir);
			/* An empty element means the current directory, as in POSIX. */
			if (dlen == 0)
				memcpy(candidate, ".", dlen = 1);
			else
				memcpy(candidate, dir, dlen);
			candidate[dlen] = '/';
			memcpy(candidate + dlen + 1, file, flen + 1);
			execve(candidate, cfg->argv, cfg->env);
			switch (errno) {
			case EACCES:
				err = EACCES;
				break;
			case ENOENT:
			case ENOTDIR:
			case ESTALE:
			case ELOOP:
			case ENAMETOOLONG:
				break;
			default:
				exec_failed(file, errno);
			}
			if (*end == '\0')
				break;
			dir = end;
		}
	}
	exec_failed(file, err);
}

void container_init(struct run_config *cfg, int parent_alive_fd)
{
	die_with_parent(parent_alive_fd);
	/* Exact modes for device nodes and mount points; the command gets Docker's 022 below. */
	umask(0);
	load_secrets(cfg);

	int flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | (cfg->network_none ? CLONE_NEWNET : 0);
	if (unshare(flags) < 0)
		die_errno("unshare");
	/* First, before any mount: our copy of the host's mounts must not propagate back to it. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		die_errno("make all mounts private");
	if (cfg->network_none)
		bring_up_loopback();
	if (cfg->hostname && sethostname(cfg->hostname, strlen(cfg->hostname)) < 0)
		die_errno("sethostname %s", cfg->hostname);

	bool groups_denied = setgroups_denied();
	int rootfd = prepare_rootfs(cfg);
	enter_rootfs(rootfd);
	if (!cfg->privileged)
		restrict_kernel_files();
	if (cfg->tty)
		console_attach(cfg);

	umask(022);
	if (cfg->privileged) {
		/* Keep the permitted set through the switch to a non-root user; all_capabilities raises the rest. */
		if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
			die_errno("prctl(PR_SET_KEEPCAPS)");
	} else {
		limit_capabilities();
	}
	switch_user(cfg, parent_alive_fd, groups_denied);
	if (cfg->privileged)
		all_capabilities();

	/* Signals: the command starts with default handlers and nothing blocked, whatever we had. */
	reset_signals();

	/* Leak none of our descriptors into the step; the setup-error pipe closes on success. */
	if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		die_errno("close_range");
	exec_command(cfg);
}
