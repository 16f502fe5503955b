/* Reports how the container's seccomp filter treats syscalls newer than the host's libseccomp
 * (Debian 12's 2.5.4 names x86_64 syscalls up to futex_requeue, 456): statmount (457, Linux 6.8;
 * a kernel that runs it answers EFAULT to a null request) and a number no kernel has yet. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define STATMOUNT 457

static void report(const char *what, long result) {
    printf("%s: %s\n", what, result == 0 ? "ok" : strerror(errno));
}

int main(void) {
    report("statmount", syscall(STATMOUNT, 0, 0, 0, 0));
    report("syscall 1000", syscall(1000, 0, 0, 0));
    return 0;
}
