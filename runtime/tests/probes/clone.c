/* Reports how the container's seccomp filter treats clone and clone3: the default profile allows a
 * plain fork, refuses a clone that creates a namespace (EPERM) and hides clone3 (ENOSYS) so that
 * libcs fall back to clone, whose flags the filter can see. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void try_clone(const char *what, unsigned long flags) {
    long pid = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0)
        _exit(0);
    if (pid > 0) {
        waitpid((pid_t)pid, NULL, 0);
        printf("%s: ok\n", what);
    } else {
        printf("%s: %s\n", what, strerror(errno));
    }
}

int main(void) {
    try_clone("clone", 0);
    try_clone("clone newuser", CLONE_NEWUSER);
    try_clone("clone newns", CLONE_NEWNS);
    long r = syscall(SYS_clone3, NULL, 0);
    printf("clone3: %s\n", r == 0 ? "ok" : strerror(errno));
    return 0;
}
