#ifndef DEPLOXA_CPOOLSUPPORT_H
#define DEPLOXA_CPOOLSUPPORT_H
// What Swift cannot say directly about memory shared between processes and about listening
// sockets: relaxed atomics on plain words of a shared mapping, memfd_create, and the length of a
// listening socket's accept queue (TCP_INFO for TCP, sock_diag for unix sockets); also the epoll
// API, thread names and CPU affinity (cpu_set_t is all macros), which the Glibc module leaves out.
#include <stdint.h>
#include <sys/epoll.h>

static inline void pool_add(uint64_t *word, uint64_t value) { __atomic_fetch_add(word, value, __ATOMIC_RELAXED); }
static inline void pool_sub(uint64_t *word, uint64_t value) { __atomic_fetch_sub(word, value, __ATOMIC_RELAXED); }
static inline uint64_t pool_load(const uint64_t *word) { return __atomic_load_n(word, __ATOMIC_ACQUIRE); }
static inline void pool_store(uint64_t *word, uint64_t value) { __atomic_store_n(word, value, __ATOMIC_RELEASE); }
static inline int pool_compare_exchange(uint64_t *word, uint64_t expected, uint64_t desired) {
    return __atomic_compare_exchange_n(word, &expected, desired, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
}
static inline void pool_store_max(uint64_t *word, uint64_t value) {
    uint64_t current = __atomic_load_n(word, __ATOMIC_RELAXED);
    while (current < value && !__atomic_compare_exchange_n(word, &current, value, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {}
}

/// An anonymous shared-memory file (memfd), or -1 with errno.
int pool_memfd_create(const char *name);

/// Connections waiting in a listening socket's accept queue and the queue's capacity.
/// Returns 0, or -1 when the kernel would not say.
int pool_listen_queue(int fd, uint32_t *queued, uint32_t *capacity);

/// accept4(fd, NULL, NULL, SOCK_CLOEXEC): the connection is not inherited by a worker's children.
int pool_accept_cloexec(int fd);

/// pipe2(fds, O_CLOEXEC).
int pool_pipe_cloexec(int fds[2]);

/// prctl(PR_SET_PDEATHSIG, sig): the kernel sends `sig` when the parent (the master) dies.
/// Returns the parent's pid after arming it (1 or a subreaper: the master was already gone).
int pool_parent_death_signal(int sig);

/// prctl(PR_SET_NAME, name): names the calling thread (the kernel keeps 15 bytes).
int pool_name_thread(const char *name);

/// The CPUs the calling thread may run on (sched_getaffinity), ascending, into `cpus`.
/// Returns how many (at most `capacity`), or -1 with errno.
int pool_allowed_cpus(int *cpus, int capacity);

/// sched_setaffinity(0, {cpu}): binds the calling thread to one CPU. 0, or -1 with errno.
int pool_bind_thread_to_cpu(int cpu);

#endif
