/* slmbench-exec: the sandboxed child's set-up for a program that is exec'ed (see spawner.py).
 *
 * The worker starts this with posix_spawn (a vfork: no copy of the worker's page tables, no
 * Python running in the child) and the sample's stdin, stdout, stderr and result pipe already on
 * fds 0..3. It does what sandbox._setup_child does for forked children, then execs the program:
 *
 *   slmbench-exec CPU_S AS_BYTES FSIZE_BYTES NPROC UID WORK_DIR PATH ARGV0 [ARG...]
 *
 * UID -1 keeps the caller's user. Any failure before the program runs is reported on stderr
 * and ends the child with status 125, as the forked path does.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

/* the kernel's struct sigaction (x86_64, arm64): not glibc's */
struct kernel_sigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    unsigned long mask;
};

static void fail(const char *what) {
    int err = errno;
    dprintf(2, "sandbox setup failed: %s: %s\n", what, strerror(err));
    _exit(125);
}

static unsigned long long number(const char *text, const char *what) {
    char *end;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0') {
        errno = EINVAL;
        fail(what);
    }
    return value;
}

static void limit(int resource, rlim_t soft, rlim_t hard, const char *what) {
    struct rlimit r = {soft, hard};
    if (setrlimit(resource, &r) != 0) fail(what);
}

int main(int argc, char **argv) {
    if (argc < 9) {
        errno = EINVAL;
        fail("usage: slmbench-exec CPU_S AS_BYTES FSIZE_BYTES NPROC UID WORK_DIR PATH ARGV0 [ARG...]");
    }
    rlim_t cpu = number(argv[1], "CPU_S");
    rlim_t as = number(argv[2], "AS_BYTES");
    rlim_t fsize = number(argv[3], "FSIZE_BYTES");
    rlim_t nproc = number(argv[4], "NPROC");
    long long uid = strcmp(argv[5], "-1") == 0 ? -1 : (long long)number(argv[5], "UID");

    if (setsid() < 0) fail("setsid");
    /* the worker runs at a raised priority to stay in charge; its samples do not */
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, 0);
    if (errno == 0 && nice < 0 && geteuid() == 0 && setpriority(PRIO_PROCESS, 0, 0) != 0) fail("setpriority");
    /* anything beyond the four fds the spawn put in place (nothing should be, but never leak) */
    if (syscall(SYS_close_range, 4U, ~0U, 0U) != 0) {
        long max = sysconf(_SC_OPEN_MAX);
        for (long fd = 4; fd < (max > 0 ? max : 65536); fd++) close((int)fd);
    }
    /* Ignored dispositions survive exec: the worker ignores SIGINT, and glibc's posix_spawn
     * leaves its two internal signals (32, 33) ignored in the child. Every signal starts at its
     * default; the raw system call, because glibc refuses to touch its internal signals. */
    struct kernel_sigaction dfl = {0};
    dfl.handler = SIG_DFL;
    for (int sig = 1; sig <= 64; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP) syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof(unsigned long));
    }
    sigset_t none;
    sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, NULL) != 0) fail("sigprocmask");

    limit(RLIMIT_CPU, cpu, cpu + 1, "RLIMIT_CPU");
    limit(RLIMIT_AS, as, as, "RLIMIT_AS");
    limit(RLIMIT_FSIZE, fsize, fsize, "RLIMIT_FSIZE");
    limit(RLIMIT_CORE, 0, 0, "RLIMIT_CORE");
    limit(RLIMIT_NPROC, nproc, nproc, "RLIMIT_NPROC");
    if (chdir(argv[6]) != 0) fail("chdir");
    if (uid >= 0) {
        uid_t u = (uid_t)uid;
        if (setgroups(0, NULL) != 0) fail("setgroups");
        if (setresgid(u, u, u) != 0) fail("setresgid");
        if (setresuid(u, u, u) != 0) fail("setresuid");
        if (getuid() != u || geteuid() != u || getgid() != u || getegid() != u) {
            errno = EPERM;
            fail("dropping privileges");
        }
    }
    /* setuid binaries (su, ping, ...) gain nothing */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail("no_new_privs");
    execve(argv[7], &argv[8], environ);
    fail(argv[7]);
}
