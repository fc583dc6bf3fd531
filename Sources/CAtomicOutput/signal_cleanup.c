// Every function the handler calls is async-signal-safe (unlink, rmdir, sigaction, raise, atomics
// on lock-free types). The registry is a fixed array of pointers to strings copied when they were
// registered, so the handler never allocates, locks or walks a Swift object.
#define _GNU_SOURCE
#include "CAtomicOutput.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__linux__)
#include <fcntl.h>
#include <sys/syscall.h>
#endif

#define IRM_CLEANUP_SLOTS 4096

// Each string starts with 'f' (unlink) or 'd' (rmdir), then the path.
static _Atomic(char *) slots[IRM_CLEANUP_SLOTS];
static atomic_int cleaning;
static atomic_int deferring;
static atomic_int pending_signal;

static const int handled_signals[] = {SIGINT, SIGTERM, SIGHUP};
#define IRM_HANDLED_COUNT (sizeof handled_signals / sizeof handled_signals[0])
static struct sigaction previous_actions[IRM_HANDLED_COUNT];
static pthread_once_t install_once = PTHREAD_ONCE_INIT;

static void remove_registered(void) {
    for (long i = 0; i < IRM_CLEANUP_SLOTS; i++) {
        char *entry = atomic_load(&slots[i]);
        if (entry && entry[0] == 'f') unlink(entry + 1);
    }
    // Directories after their files, the inner ones first: repeat while a pass removes one.
    for (int pass = 0; pass < 32; pass++) {
        int removed = 0;
        for (long i = 0; i < IRM_CLEANUP_SLOTS; i++) {
            char *entry = atomic_load(&slots[i]);
            if (entry && entry[0] == 'd' && rmdir(entry + 1) == 0) removed = 1;
        }
        if (!removed) break;
    }
}

void irm_cleanup_now(void) {
    if (atomic_exchange(&cleaning, 1) == 0) remove_registered();
}

static void finish(int signal_number) {
    irm_cleanup_now();
    for (unsigned i = 0; i < IRM_HANDLED_COUNT; i++) {
        if (handled_signals[i] == signal_number) sigaction(signal_number, &previous_actions[i], NULL);
    }
    // Blocked while the handler runs, it is delivered, with the previous action, on return.
    raise(signal_number);
}

static void handle(int signal_number) {
    int saved = errno;
    if (atomic_load(&deferring) > 0) {
        atomic_store(&pending_signal, signal_number);
    } else {
        finish(signal_number);
    }
    errno = saved;
}

static void install(void) {
    for (unsigned i = 0; i < IRM_HANDLED_COUNT; i++) {
        struct sigaction current;
        if (sigaction(handled_signals[i], NULL, &current) != 0) continue;
        if (!(current.sa_flags & SA_SIGINFO) && current.sa_handler == SIG_IGN) continue;
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_handler = handle;
        sigemptyset(&action.sa_mask);
        for (unsigned j = 0; j < IRM_HANDLED_COUNT; j++) sigaddset(&action.sa_mask, handled_signals[j]);
        action.sa_flags = SA_RESTART;
        previous_actions[i] = current;
        sigaction(handled_signals[i], &action, NULL);
    }
}

void irm_cleanup_install(void) { pthread_once(&install_once, install); }

long irm_cleanup_register(const char *path, int is_directory) {
    size_t length = strlen(path);
    char *entry = malloc(length + 2);
    if (!entry) return -1;
    entry[0] = is_directory ? 'd' : 'f';
    memcpy(entry + 1, path, length + 1);
    for (long i = 0; i < IRM_CLEANUP_SLOTS; i++) {
        char *expected = NULL;
        if (atomic_compare_exchange_strong(&slots[i], &expected, entry)) return i;
    }
    free(entry);
    return -1;
}

void irm_cleanup_unregister(long slot) {
    if (slot < 0 || slot >= IRM_CLEANUP_SLOTS) return;
    char *entry = atomic_exchange(&slots[slot], NULL);
    // A handler that has begun may still read the string: then it is never freed (the process is
    // ending). With sequentially consistent atomics, a handler that loaded the pointer before the
    // exchange above had already set `cleaning`, so this load sees it.
    if (entry && !atomic_load(&cleaning)) free(entry);
}

long irm_cleanup_registered_count(void) {
    long count = 0;
    for (long i = 0; i < IRM_CLEANUP_SLOTS; i++) {
        if (atomic_load(&slots[i])) count++;
    }
    return count;
}

void irm_cleanup_defer(int on) {
    if (on) {
        atomic_fetch_add(&deferring, 1);
    } else if (atomic_fetch_sub(&deferring, 1) == 1) {
        int signal_number = atomic_exchange(&pending_signal, 0);
        if (signal_number) finish(signal_number);
    }
}

int irm_rename_exchange(const char *from, const char *to) {
#if defined(__linux__) && defined(SYS_renameat2)
    return (int)syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, 1u << 1 /* RENAME_EXCHANGE */);
#elif defined(__APPLE__)
    return renamex_np(from, to, RENAME_SWAP);
#else
    (void)from;
    (void)to;
    errno = ENOSYS;
    return -1;
#endif
}
