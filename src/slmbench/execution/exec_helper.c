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

#include "child_setup.h"

extern char **environ;

/* the kernel's struct sigaction (x86_64, arm64): not glibc's */
struct kernel_sigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    unsigned long mask;
};

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

int main(int argc, char **argv) {
    if (argc < 9) {
        errno = EINVAL;
        fail("usage: slmbench-exec CPU_S AS_BYTES FSIZE_BYTES NPROC UID WORK_DIR PATH ARGV0 [ARG...]");
    }
    struct child_limits limits = {
        .cpu_s = number(argv[1], "CPU_S"),
        .as_bytes = number(argv[2], "AS_BYTES"),
        .fsize_bytes = number(argv[3], "FSIZE_BYTES"),
        .nproc = number(argv[4], "NPROC"),
        .uid = strcmp(argv[5], "-1") == 0 ? -1 : (long long)number(argv[5], "UID"),
    };

    leave_for_own_session();
    close_above_result_fd();
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

    confine(&limits, argv[6]);
    execve(argv[7], &argv[8], environ);
    fail(argv[7]);
}
