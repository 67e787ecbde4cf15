/* libslmbench-zygote: the C half of a worker's zygote (see zygote.py), which runs the worker's
 * inline Python samples from start to end.
 *
 * A process that forks pays for every Python statement it runs between two forks: each fork
 * write-protects its pages, and each page it then writes (every object whose reference count
 * changes) costs a fault. So the zygote's loop is C: for each request it unmarshals the
 * program's code (compiled by the worker), makes the sample's stdin and output pipes, forks,
 * watches the child (output, CPU, wall clock) and ends it and everything it left behind, then
 * reports. Between two forks it writes a few pages of its own. The child applies the sandbox
 * set-up here too (as exec_helper.c does), then runs the sample: a plain program's code from
 * here, anything else through the zygote's Python function for a sample, which runs it and says
 * whether it passed.
 *
 * What it watches and when it kills are sandbox.Child.wait's rules (the worker's monitor for
 * every other child), kept the same: tests/execution/test_zygote.py holds the two to it.
 *
 * Protocol (a SOCK_STREAM socket to the worker, both ways):
 *   request:  struct slm_request, then `payload_len` bytes: the work dir, a NUL, `code_len`
 *             bytes of marshal data (the compiled program; 0: the child compiles it),
 *             `stdin_len` bytes of stdin, the record the child writes to the result channel
 *             if the sample passes, a NUL, and the program's text.
 *   outcome:  struct slm_outcome, then its stdout, stderr and result bytes; the outcomes of
 *             requests that came while one ran are sent together, with the last one's.
 *
 * Runs inside the Python process that loaded it (ctypes.PyDLL: the GIL is held throughout),
 * so it may call the functions of Python's stable C API declared below.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "child_setup.h"

#define SLM_MAGIC 0x736c6d7aU /* "slmz" */

/* Python's stable C API, declared here so that no Python headers are needed to build this. */
typedef struct _object PyObject;
extern PyObject *PyMarshal_ReadObjectFromString(const char *data, ssize_t len);
extern PyObject *PyObject_CallFunctionObjArgs(PyObject *callable, ...);
extern PyObject *PyObject_CallMethodObjArgs(PyObject *o, PyObject *name, ...);
extern PyObject *PyEval_EvalCode(PyObject *code, PyObject *globals, PyObject *locals);
extern PyObject *PyObject_Type(PyObject *o);
typedef ssize_t Py_ssize_t;
extern Py_ssize_t PyList_Size(PyObject *list);
extern PyObject *PyList_GetItem(PyObject *list, Py_ssize_t index);
extern PyObject *PyDict_GetItem(PyObject *dict, PyObject *key);
extern PyObject *PyUnicode_InternFromString(const char *text);
extern void Py_DecRef(PyObject *o);
extern void PyErr_Clear(void);
extern void PyErr_Print(void);
extern void PyErr_Fetch(PyObject **type, PyObject **value, PyObject **traceback);
extern void PyErr_NormalizeException(PyObject **type, PyObject **value, PyObject **traceback);
extern int PyException_SetTraceback(PyObject *exception, PyObject *traceback);
extern int PyObject_IsTrue(PyObject *o);

struct slm_request {
    uint32_t magic;
    uint32_t payload_len;
    uint32_t code_len;  /* marshal data after the work dir's NUL */
    uint32_t stdin_len; /* after the marshal data */
    int64_t cpu_s;      /* RLIMIT_CPU */
    int64_t as_bytes;
    int64_t fsize_bytes;
    int64_t nproc;
    int64_t uid;        /* -1: keep the zygote's user (and find no escaped processes by uid) */
    int64_t wall_us;    /* the wall-clock backstop for sleepers */
    int64_t timeout_us; /* the CPU time limit: also of all the sample's processes together */
    int64_t check_us;   /* how often that total is checked (through the uid) */
    int64_t output_cap; /* bytes kept of stdout, and of stderr */
    int64_t result_cap; /* bytes kept of the result channel */
    int64_t tidy;       /* SLM_MAKE_DIR, SLM_CLEAR_SHM */
};

/* tidy: make the work dir before the sample (0700, the sample's uid's) and remove it after;
 * empty the (private) /dev/shm after. What cannot be removed here is the worker's to remove. */
enum { SLM_MAKE_DIR = 1, SLM_CLEAR_SHM = 2 };

enum { SLM_WALL_KILLED = 1, SLM_CPU_KILLED = 2, SLM_TRUNCATED = 4, SLM_LEFTOVERS = 8 };

/* answers held back at most (a sample's answer past it is sent with those held) */
#define HOLD_MAX (1024 * 1024)

struct slm_outcome {
    int64_t pid; /* -errno if the sample could not be started */
    int64_t status;
    int64_t utime_us;
    int64_t stime_us;
    int64_t maxrss_kb;
    int64_t minflt;
    int64_t majflt;
    int64_t wall_us;
    int64_t flags;
    int64_t stdout_len;
    int64_t stderr_len;
    int64_t result_len;
};

/* the kernel's struct sigaction (x86_64, arm64): not glibc's */
struct kernel_sigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    unsigned long mask;
};

/* Output kept from one stream: `keep` bytes at most, in memory no child inherits (see
 * own_memory), so that writing it while a child runs copies nothing. */
struct buffer {
    char *data;
    size_t len, cap, keep;
};

/* Memory of the zygote's own that its children do not get (MADV_DONTFORK): its writes there
 * between two forks fault on nothing, and each fork has fewer pages to copy. NULL on failure. */
static char *own_memory(size_t size) {
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    madvise(p, size, MADV_DONTFORK);
    return p;
}

static int reserve(struct buffer *b, size_t keep) {
    b->len = 0;
    b->keep = keep;
    if (b->cap >= keep) return 0;
    if (b->data != NULL) munmap(b->data, b->cap);
    size_t cap = (keep + 4095) & ~(size_t)4095;
    b->data = own_memory(cap > 0 ? cap : 4096);
    b->cap = b->data != NULL ? (cap > 0 ? cap : 4096) : 0;
    return b->data != NULL ? 0 : -1;
}

static int64_t now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

/* ---- the child's set-up ------------------------------------------------------------------ */
/* What sandbox._setup_child does for a forked sample (the signal dispositions stay the
 * zygote's, as there: Python's own handling of SIGPIPE and SIGXFSZ). fds: stdin, stdout,
 * stderr, result, all above 3. */
static void set_up(const struct slm_request *req, const int *fds, const char *work_dir) {
    /* the fds first: a failure below is then reported on the sample's own stderr */
    for (int i = 0; i < 4; i++) {
        if (dup2(fds[i], i) < 0) fail("dup2");
    }
    close_above_result_fd();
    leave_for_own_session();
    struct child_limits limits = {(rlim_t)req->cpu_s, (rlim_t)req->as_bytes, (rlim_t)req->fsize_bytes,
                                  (rlim_t)req->nproc, req->uid};
    confine(&limits, work_dir);
}

/* ---- watching and ending a sample (sandbox.Child.wait, kill_everything) ------------------- */
/* utime + stime, in seconds, of every live process of `uid` (threads included). */
static double uid_cpu_seconds(uid_t uid) {
    static long ticks;
    if (ticks <= 0) ticks = sysconf(_SC_CLK_TCK);
    DIR *proc = opendir("/proc");
    if (proc == NULL) return 0;
    unsigned long long total = 0;
    struct dirent *entry;
    while ((entry = readdir(proc)) != NULL) {
        if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
        struct stat st;
        if (fstatat(dirfd(proc), entry->d_name, &st, 0) != 0 || st.st_uid != uid) continue;
        char path[300], text[1024];
        snprintf(path, sizeof path, "%s/stat", entry->d_name);
        int fd = openat(dirfd(proc), path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t n = read(fd, text, sizeof text - 1);
        close(fd);
        if (n <= 0) continue;
        text[n] = '\0';
        char *p = strrchr(text, ')'); /* the name may hold anything: count fields after it */
        unsigned long long utime, stime;
        if (p != NULL && sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) == 2)
            total += utime + stime;
    }
    closedir(proc);
    return (double)total / (double)(ticks > 0 ? ticks : 100);
}

/* Fraction of `elapsed_us` the process spent running or waiting for a CPU: near 1 for a
 * CPU-bound process on a loaded machine, near 0 for a sleeper. */
static double busy_fraction(pid_t pid, int64_t elapsed_us) {
    char path[64], text[128];
    snprintf(path, sizeof path, "/proc/%d/schedstat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0) return 0;
    text[n] = '\0';
    unsigned long long run_ns, wait_ns;
    if (sscanf(text, "%llu %llu", &run_ns, &wait_ns) != 2) return 0;
    return (double)(run_ns + wait_ns) / 1000.0 / (double)(elapsed_us > 0 ? elapsed_us : 1);
}

/* kill(-1) as `uid`: every process of the uid at once (fork bombs included), stopped first so
 * that none can fork faster than it is killed. */
static void kill_uid(uid_t uid) {
    pid_t helper = fork();
    if (helper == 0) {
        if (setgroups(0, NULL) == 0 && setresgid(uid, uid, uid) == 0 && setresuid(uid, uid, uid) == 0) {
            int sigs[] = {SIGSTOP, SIGSTOP, SIGKILL, SIGKILL};
            for (int i = 0; i < 4; i++) {
                if (kill(-1, sigs[i]) != 0 && errno == ESRCH) break;
            }
        }
        _exit(0);
    }
    if (helper > 0) {
        while (waitpid(helper, NULL, 0) < 0 && errno == EINTR) {
        }
    }
}

static void kill_group(pid_t pid, int64_t uid) {
    /* (the leader may not have reached setsid() yet: kill it by pid too) */
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    if (uid >= 0) kill_uid((uid_t)uid);
}

/* Reap what has ended; whether any child is left. (The zygote is a child subreaper: whatever a
 * sample leaves behind becomes its child, at any depth.) */
static int reap(void) {
    for (;;) {
        pid_t got = waitpid(-1, NULL, WNOHANG);
        if (got > 0) continue;
        return got == 0; /* 0: children left, none ended; -1 (ECHILD): none left */
    }
}

static void kill_everything(pid_t pid, int64_t uid) {
    kill(-pid, SIGKILL);
    if (reap() && uid >= 0) {
        kill_uid((uid_t)uid);
        /* Killed processes linger as zombies (still counted by RLIMIT_NPROC for the next
         * sample) until reaped. */
        int64_t deadline = now_us() + 5000000;
        while (reap() && now_us() < deadline) {
            kill_uid((uid_t)uid);
            usleep(5000);
        }
    }
}

/* One read from a readable fd: keep at most `keep` bytes, discard the rest. -1 at EOF, else
 * whether anything was discarded. */
static int read_into(int fd, struct buffer *b) {
    static char *discard;
    size_t room = b->keep > b->len ? b->keep - b->len : 0;
    if (room == 0 && discard == NULL && (discard = own_memory(65536)) == NULL) return -1;
    ssize_t n;
    do {
        n = room > 0 ? read(fd, b->data + b->len, room < 65536 ? room : 65536) : read(fd, discard, 65536);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) return -1;
    if (room == 0) return 1;
    b->len += (size_t)n;
    return 0;
}

/* Watch the child until it ends (or is killed), then end everything it left behind and read
 * the rest of its output. pidfd: readable once it ended. */
static void watch(const struct slm_request *req, pid_t pid, int pidfd, const int *outs, struct buffer *bufs,
                  int64_t start, struct slm_outcome *out) {
    struct pollfd fds[4];
    int open_outputs = 3;
    for (int i = 0; i < 3; i++) fds[i] = (struct pollfd){outs[i], POLLIN, 0};
    fds[3] = (struct pollfd){pidfd, POLLIN, 0};
    int64_t wall = req->wall_us;
    int64_t deadline = start + wall;
    int64_t hard_deadline = start + (10 * wall > wall + 10 * req->timeout_us ? 10 * wall : wall + 10 * req->timeout_us);
    int64_t next_check = req->uid >= 0 ? start + req->check_us : INT64_MAX;
    int exited = 0;
    while (!exited) {
        int64_t now = now_us();
        if (now >= next_check) {
            if (uid_cpu_seconds((uid_t)req->uid) > (double)req->timeout_us / 1e6) {
                out->flags |= SLM_CPU_KILLED;
                kill_group(pid, req->uid);
                break;
            }
            next_check = now + req->check_us;
        }
        if (now >= deadline) {
            /* A CPU-bound child starved by a loaded machine is not a sleeper: give it more wall
             * time (RLIMIT_CPU still stops it), so load never flips a verdict. */
            if (now < hard_deadline && busy_fraction(pid, now - start) > 0.5) {
                deadline = now + wall / 2;
            } else {
                out->flags |= SLM_WALL_KILLED;
                kill_group(pid, req->uid);
                break;
            }
        }
        int64_t until = deadline < next_check ? deadline : next_check;
        int timeout_ms = (int)((until - now + 999) / 1000);
        if (poll(fds, 4, timeout_ms < 0 ? 0 : timeout_ms) < 0 && errno != EINTR) break;
        for (int i = 0; i < 3; i++) {
            if (fds[i].fd >= 0 && fds[i].revents) {
                int r = read_into(fds[i].fd, &bufs[i]);
                if (r < 0) {
                    fds[i].fd = -1; /* at EOF: poll skips it */
                    open_outputs--;
                } else if (r) {
                    out->flags |= SLM_TRUNCATED;
                }
            }
        }
        if (fds[3].revents) exited = 1;
    }
    /* the child is gone (or killed): reap it, then everything it left behind */
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {
    }
    out->wall_us = now_us() - start;
    kill_everything(pid, req->uid);
    /* remaining output: writers are dead now, so EOF comes quickly */
    int64_t end = now_us() + 1000000;
    while (open_outputs > 0 && now_us() < end) {
        if (poll(fds, 3, 100) < 0 && errno != EINTR) break;
        for (int i = 0; i < 3; i++) {
            if (fds[i].fd >= 0 && fds[i].revents) {
                int r = read_into(fds[i].fd, &bufs[i]);
                if (r < 0) {
                    fds[i].fd = -1;
                    open_outputs--;
                } else if (r) {
                    out->flags |= SLM_TRUNCATED;
                }
            }
        }
    }
    out->status = status;
    out->utime_us = (int64_t)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec;
    out->stime_us = (int64_t)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec;
    out->maxrss_kb = ru.ru_maxrss;
    out->minflt = ru.ru_minflt;
    out->majflt = ru.ru_majflt;
}

/* ---- the loop ---------------------------------------------------------------------------- */
static int read_full(int fd, char *buf, size_t n) {
    while (n > 0) {
        ssize_t got = read(fd, buf, n);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return -1;
        buf += got;
        n -= (size_t)got;
    }
    return 0;
}

static int send_all(int sock, struct iovec *iov, int count) {
    struct msghdr msg = {0};
    msg.msg_iov = iov;
    msg.msg_iovlen = (size_t)count;
    while (msg.msg_iovlen > 0) {
        ssize_t put = sendmsg(sock, &msg, MSG_NOSIGNAL);
        if (put < 0 && errno == EINTR) continue;
        if (put <= 0) return -1;
        /* skip what went out */
        while (msg.msg_iovlen > 0 && (size_t)put >= msg.msg_iov->iov_len) {
            put -= (ssize_t)msg.msg_iov->iov_len;
            msg.msg_iov++;
            msg.msg_iovlen--;
        }
        if (msg.msg_iovlen > 0) {
            msg.msg_iov->iov_base = (char *)msg.msg_iov->iov_base + put;
            msg.msg_iov->iov_len -= (size_t)put;
        }
    }
    return 0;
}

/* The sample's stdin: its bytes in a memory file, or /dev/null. */
static int stdin_fd(const char *data, size_t len) {
    static int devnull = -1; /* kept open: most samples read nothing */
    if (len == 0) {
        if (devnull < 0) devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
        return devnull < 0 ? -1 : dup(devnull);
    }
    int fd = (int)syscall(SYS_memfd_create, "stdin", MFD_CLOEXEC);
    if (fd < 0) return -1;
    size_t done = 0;
    while (done < len) {
        ssize_t put = write(fd, data + done, len - done);
        if (put < 0 && errno == EINTR) continue;
        if (put <= 0) {
            int err = put < 0 ? errno : EIO;
            close(fd);
            errno = err;
            return -1;
        }
        done += (size_t)put;
    }
    if (lseek(fd, 0, SEEK_SET) != 0) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

/* After a sample: its work dir removed (the common case: it left nothing there) and /dev/shm
 * emptied of files, as asked; anything else is flagged for the worker. */
static void tidy(const struct slm_request *req, const char *work_dir, struct slm_outcome *out) {
    if ((req->tidy & SLM_MAKE_DIR) && rmdir(work_dir) != 0) out->flags |= SLM_LEFTOVERS;
    if (!(req->tidy & SLM_CLEAR_SHM)) return;
    DIR *shm = opendir("/dev/shm");
    if (shm == NULL) return;
    struct dirent *entry;
    while ((entry = readdir(shm)) != NULL) {
        const char *name = entry->d_name;
        if (name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'))) continue;
        if (unlinkat(dirfd(shm), name, 0) != 0) out->flags |= SLM_LEFTOVERS; /* a directory, say */
    }
    closedir(shm);
}

/* What the zygote's Python side gave it (slm_zygote's arguments), and names made once. */
static struct {
    PyObject *run;       /* run(code) or run(): a sample run by Python (a guarded program, or one
                          * the child compiles itself) */
    PyObject *globals;   /* __main__'s namespace, where a plain program's code runs */
    PyObject *failed;    /* failed(exception): writes the record of a plain program that raised */
    PyObject *code_type; /* types.CodeType: what a plain program arrives as, */
    PyObject *list_type; /* or a list of its parts' code (inline.SharedTails), run in turn */
    PyObject *sys_dict;  /* sys.__dict__: the streams to flush, whatever the sample made them */
    PyObject *stdout_name, *stderr_name, *flush_name;
} py;

/* What execute() in inline.py does at a plain program's end: its buffered output written out
 * (what cannot be, a closed or replaced stream's, is not our concern). */
static void flush_streams(void) {
    PyObject *names[2] = {py.stdout_name, py.stderr_name};
    for (int i = 0; i < 2; i++) {
        PyObject *stream = PyDict_GetItem(py.sys_dict, names[i]); /* borrowed */
        PyObject *done = stream != NULL ? PyObject_CallMethodObjArgs(stream, py.flush_name, NULL) : NULL;
        if (done != NULL)
            Py_DecRef(done);
        else
            PyErr_Clear();
    }
}

/* What a sample's code is: run by Python, or a plain program's, run from C as one code object
 * or as a list of its parts' code (inline.SharedTails). */
enum plain { NOT_PLAIN, PLAIN_CODE, PLAIN_PARTS };

/* In the child: run the sample's code and exit, having written its record: the pass record
 * (`passed`) from here, where nothing the sample changed in Python can reach, or a failure's,
 * written by Python. A plain program's code runs straight from here, as `python file.py` runs
 * it: a call through Python (inline.execute) cost each sample ~25 page copies more. */
static void run_python(PyObject *code, enum plain plain, const char *passed, size_t passed_len) {
    if (plain != NOT_PLAIN) {
        Py_ssize_t parts = plain == PLAIN_PARTS ? PyList_Size(code) : 1;
        PyObject *result = NULL;
        for (Py_ssize_t i = 0; i < parts; i++) {
            if (result != NULL) Py_DecRef(result);
            result = PyEval_EvalCode(plain == PLAIN_PARTS ? PyList_GetItem(code, i) : code, py.globals, py.globals);
            if (result == NULL) break;
        }
        if (result == NULL) {
            PyObject *type = NULL, *value = NULL, *traceback = NULL;
            PyErr_Fetch(&type, &value, &traceback);
            PyErr_NormalizeException(&type, &value, &traceback);
            if (value != NULL && traceback != NULL) PyException_SetTraceback(value, traceback);
            PyObject *done = value != NULL ? PyObject_CallFunctionObjArgs(py.failed, value, NULL) : NULL;
            if (done == NULL) PyErr_Print(); /* a fault of ours, not the sample's: say what */
            _exit(1);
        }
        Py_DecRef(result);
        flush_streams();
    } else {
        PyObject *ok = PyObject_CallFunctionObjArgs(py.run, code, NULL);
        if (ok == NULL) {
            PyErr_Print();
            _exit(1);
        }
        if (PyObject_IsTrue(ok) != 1) _exit(1); /* its record is written */
    }
    for (size_t done = 0; done < passed_len;) {
        ssize_t put = write(3, passed + done, passed_len - done);
        if (put < 0 && errno == EINTR) continue;
        if (put <= 0) _exit(1);
        done += (size_t)put;
    }
    _exit(0);
}

/* The program of the sample this child runs. Python reads it through slm_program only when
 * something asks for the text (a traceback, a compile in the child): made into a Python object
 * in every child, it would cost each a few page copies. */
static const char *program_text;
static size_t program_len;

ssize_t slm_program(const char **text) {
    *text = program_text;
    return program_text != NULL ? (ssize_t)program_len : -1;
}

/* Start and watch one sample: fills `out` and the three buffers. */
static void run_sample(const struct slm_request *req, const char *work_dir, PyObject *code, enum plain plain,
                       const char *stdin_data, const char *data, size_t data_len, int sock, struct buffer *bufs,
                       struct slm_outcome *out) {
    int64_t start = now_us();
    int pipes[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
    int child_fds[4] = {-1, -1, -1, -1};
    int outs[3];
    int err = 0;
    if (req->tidy & SLM_MAKE_DIR) {
        if (mkdir(work_dir, 0700) != 0 || (req->uid >= 0 && chown(work_dir, (uid_t)req->uid, (gid_t)req->uid) != 0)) {
            out->pid = -errno;
            out->flags |= SLM_LEFTOVERS;
            return;
        }
    }
    child_fds[0] = stdin_fd(stdin_data, req->stdin_len);
    if (child_fds[0] < 0) err = errno;
    for (int i = 0; i < 3 && !err; i++) {
        if (pipe2(pipes[i], O_CLOEXEC) != 0) err = errno;
    }
    for (int i = 1; i < 4 && !err; i++) {
        child_fds[i] = pipes[i - 1][1];
        pipes[i - 1][1] = -1;
    }
    /* the child's ends above 3, so that moving them into place overwrites none of them (they
     * are, unless the zygote's own fds 0..3 were closed) */
    for (int i = 0; i < 4 && !err; i++) {
        if (child_fds[i] > 3) continue;
        int high = fcntl(child_fds[i], F_DUPFD_CLOEXEC, 10);
        if (high < 0) err = errno;
        close(child_fds[i]);
        child_fds[i] = high;
    }
    pid_t pid = -1;
    if (!err) {
        pid = fork();
        if (pid < 0) err = errno;
    }
    if (pid == 0) {
        close(sock);
        set_up(req, child_fds, work_dir);
        /* data: the pass record, a NUL, the program's text (for slm_program) */
        size_t passed_len = strnlen(data, data_len);
        program_text = data + passed_len + (passed_len < data_len);
        program_len = (size_t)(data + data_len - program_text);
        run_python(code, plain, data, passed_len);
    }
    for (int i = 0; i < 4; i++) {
        if (child_fds[i] >= 0) close(child_fds[i]);
    }
    int pidfd = -1;
    if (!err) {
        pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (pidfd < 0) {
            err = errno;
            kill(pid, SIGKILL);
            while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
            }
        }
    }
    if (err) {
        out->pid = -err;
    } else {
        out->pid = pid;
        for (int i = 0; i < 3; i++) outs[i] = pipes[i][0];
        watch(req, pid, pidfd, outs, bufs, start, out);
        close(pidfd);
    }
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 2; j++) {
            if (pipes[i][j] >= 0) close(pipes[i][j]);
        }
    }
    tidy(req, work_dir, out);
}

/* Answers held back while the worker has sent more requests (see slm_zygote): in memory no
 * child inherits (own_memory). */
struct held {
    char *data;
    size_t len, cap;
};

static int hold(struct held *h, const struct iovec *iov, int count) {
    size_t need = h->len;
    for (int i = 0; i < count; i++) need += iov[i].iov_len;
    if (need > h->cap) {
        size_t cap = (need * 2 + 4095) & ~(size_t)4095;
        char *data = own_memory(cap);
        if (data == NULL) return -1;
        if (h->len > 0) memcpy(data, h->data, h->len);
        if (h->data != NULL) munmap(h->data, h->cap);
        h->data = data;
        h->cap = cap;
    }
    for (int i = 0; i < count; i++) {
        memcpy(h->data + h->len, iov[i].iov_base, iov[i].iov_len);
        h->len += iov[i].iov_len;
    }
    return 0;
}

/* Whether the worker has sent (some of) another request already. */
static int more_requests(int sock) {
    struct pollfd p = {sock, POLLIN, 0};
    return poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

/* The zygote's loop: returns only when the worker closes the socket or sends something it
 * cannot read (or the names cannot be made). In a child, a plain program's code (a code object,
 * or a list of its parts' code, run in turn) runs in `globals`, and `failed(exception)` writes
 * the record of one that raised; anything else goes to `run`: run(code) (a guarded program's
 * tuple of code) or run() (the child compiles the text, from slm_program), true when it passed,
 * else it wrote its failure's record itself.
 * A child that passed writes the request's pass record and exits 0; else it exits 1. */
void slm_zygote(int sock, PyObject *run, PyObject *globals, PyObject *failed, PyObject *code_type,
                PyObject *list_type, PyObject *sys_dict) {
    py.run = run;
    py.globals = globals;
    py.failed = failed;
    py.code_type = code_type;
    py.list_type = list_type;
    py.sys_dict = sys_dict;
    py.stdout_name = PyUnicode_InternFromString("stdout");
    py.stderr_name = PyUnicode_InternFromString("stderr");
    py.flush_name = PyUnicode_InternFromString("flush");
    if (py.stdout_name == NULL || py.stderr_name == NULL || py.flush_name == NULL) return;
    /* whatever a sample leaves behind becomes ours, to find and reap */
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    /* glibc's posix_spawn (which started this process) leaves its two internal signals (32, 33:
     * thread cancellation, set*id across threads) ignored, and an exec keeps that; samples get
     * them at their default, as a process started otherwise has them. (glibc's own sigaction
     * refuses these two: the kernel's is called.) */
    for (int sig = 32; sig <= 33; sig++) {
        struct kernel_sigaction now, dfl = {SIG_DFL, 0, NULL, 0};
        if (syscall(SYS_rt_sigaction, sig, NULL, &now, sizeof(unsigned long)) == 0 && now.handler == SIG_IGN)
            syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof(unsigned long));
    }
    char *buf = NULL;
    size_t cap = 0;
    struct buffer bufs[3];
    memset(bufs, 0, sizeof bufs);
    struct iovec reply[5];
    struct held held = {NULL, 0, 0};
    for (;;) {
        struct slm_request req;
        if (read_full(sock, (char *)&req, sizeof req) != 0 || req.magic != SLM_MAGIC) return;
        if ((size_t)req.payload_len + 1 > cap) {
            free(buf);
            cap = (size_t)req.payload_len + 1 + 65536;
            buf = malloc(cap);
            if (buf == NULL) return;
        }
        if (read_full(sock, buf, req.payload_len) != 0) return;
        buf[req.payload_len] = '\0';
        size_t dir_len = strnlen(buf, req.payload_len);
        if (dir_len == req.payload_len || (size_t)req.code_len + req.stdin_len > req.payload_len - dir_len - 1)
            return; /* a broken request */
        const char *code_data = buf + dir_len + 1;
        const char *stdin_data = code_data + req.code_len;
        const char *data = stdin_data + req.stdin_len;
        size_t data_len = req.payload_len - dir_len - 1 - req.code_len - req.stdin_len;
        /* Unmarshalled here, not in the child: its allocations land on pages of the zygote that
         * it has written since the last fork anyway (in the child each is a copy-on-write fault). */
        PyObject *code = NULL;
        enum plain plain = NOT_PLAIN;
        if (req.code_len > 0) {
            code = PyMarshal_ReadObjectFromString(code_data, (ssize_t)req.code_len);
            if (code == NULL) {
                PyErr_Clear(); /* the child compiles the text itself */
            } else {
                PyObject *type = PyObject_Type(code);
                plain = type == py.code_type ? PLAIN_CODE : type == py.list_type ? PLAIN_PARTS : NOT_PLAIN;
                Py_DecRef(type);
            }
        }
        int reserved = 0;
        for (int i = 0; i < 3; i++) reserved |= reserve(&bufs[i], (size_t)(i < 2 ? req.output_cap : req.result_cap));
        if (reserved != 0) return;
        struct slm_outcome out;
        memset(&out, 0, sizeof out);
        run_sample(&req, buf, code, plain, stdin_data, data, data_len, sock, bufs, &out);
        out.stdout_len = (int64_t)bufs[0].len;
        out.stderr_len = (int64_t)bufs[1].len;
        out.result_len = (int64_t)bufs[2].len;
        /* freed once no child shares its pages: a write now copies nothing */
        if (code != NULL) Py_DecRef(code);
        /* One write: the worker wakes once. While it has sent more requests (it sends those it
         * has in hand together), the answers are held back and go with the last one's: the
         * worker, waiting for them all, wakes once for them all. Not where a sample could kill
         * the zygote (no sandbox uid): the answers it held would be lost with it, and the
         * worker could not tell which sample did it. */
        reply[1] = (struct iovec){&out, sizeof out};
        for (int i = 0; i < 3; i++) reply[i + 2] = (struct iovec){bufs[i].data, bufs[i].len};
        if (req.uid >= 0 && held.len < HOLD_MAX && more_requests(sock)) {
            if (hold(&held, reply + 1, 4) == 0) continue;
        }
        reply[0] = (struct iovec){held.data, held.len};
        if (send_all(sock, reply, 5) != 0) return;
        held.len = 0;
    }
}

/* A connected pair for the zygote's socket (socketpair through ctypes needs no socket module). */
int slm_pair(int *fds) {
    return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0 ? 0 : -errno;
}

/* SO_SNDBUF of a socket (-errno), read here for the same reason. */
int slm_send_buffer(int fd) {
    int size = 0;
    socklen_t len = sizeof size;
    return getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, &len) == 0 ? size : -errno;
}
