/* The sandboxed child's set-up, as sandbox._setup_child does it for a forked child: shared by
 * the exec helper (exec_helper.c, before it execs a program) and the zygote (zygote.c, before
 * its child runs a Python sample). Included by both, each built from its one source file;
 * native.py puts this header in both build keys.
 *
 * Any failure is reported on fd 2 and ends the child with status 125. */
#ifndef SLMBENCH_CHILD_SETUP_H
#define SLMBENCH_CHILD_SETUP_H

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

struct child_limits {
    rlim_t cpu_s, as_bytes, fsize_bytes, nproc;
    long long uid; /* -1: keep the caller's user */
};

static void fail(const char *what) {
    int err = errno;
    dprintf(2, "sandbox setup failed: %s: %s\n", what, strerror(err));
    _exit(125);
}

static void limit(int resource, rlim_t soft, rlim_t hard, const char *what) {
    struct rlimit r = {soft, hard};
    if (setrlimit(resource, &r) != 0) fail(what);
}

/* Nothing beyond the four fds (stdin, stdout, stderr, result) is ever inherited. */
static void close_above_result_fd(void) {
    if (syscall(SYS_close_range, 4U, ~0U, 0U) != 0) {
        long max = sysconf(_SC_OPEN_MAX);
        for (long fd = 4; fd < (max > 0 ? max : 65536); fd++) close((int)fd);
    }
}

/* Its own session (so its process group can be killed whole), at the default priority: the
 * worker runs at a raised one to stay in charge, its samples do not. */
static void leave_for_own_session(void) {
    if (setsid() < 0) fail("setsid");
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, 0);
    if (errno == 0 && nice < 0 && geteuid() == 0 && setpriority(PRIO_PROCESS, 0, 0) != 0) fail("setpriority");
}

/* rlimits, the work dir, the sandbox uid, no new privileges (setuid binaries gain nothing). */
static void confine(const struct child_limits *l, const char *work_dir) {
    limit(RLIMIT_CPU, l->cpu_s, l->cpu_s + 1, "RLIMIT_CPU");
    limit(RLIMIT_AS, l->as_bytes, l->as_bytes, "RLIMIT_AS");
    limit(RLIMIT_FSIZE, l->fsize_bytes, l->fsize_bytes, "RLIMIT_FSIZE");
    limit(RLIMIT_CORE, 0, 0, "RLIMIT_CORE");
    limit(RLIMIT_NPROC, l->nproc, l->nproc, "RLIMIT_NPROC");
    if (chdir(work_dir) != 0) fail("chdir");
    if (l->uid >= 0) {
        uid_t u = (uid_t)l->uid;
        if (setgroups(0, NULL) != 0) fail("setgroups");
        if (setresgid(u, u, u) != 0) fail("setresgid");
        if (setresuid(u, u, u) != 0) fail("setresuid");
        if (getuid() != u || geteuid() != u || getgid() != u || getegid() != u) {
            errno = EPERM;
            fail("dropping privileges");
        }
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail("no_new_privs");
}

#endif
