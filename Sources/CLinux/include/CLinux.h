#ifndef CLINUX_H
#define CLINUX_H
/* Linux-only headers that SwiftGlibc does not pull in (epoll, eventfd, signalfd, timerfd),
 * plus wrappers for what only exists under _GNU_SOURCE. Everything here is a thin pass-through. */
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/random.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <time.h>
#include <pthread.h>

/* accept4 is declared only under _GNU_SOURCE, which Swift's Glibc module does not set. */
int clinux_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);

/* epoll_ctl with the 64-bit user data passed by value, so Swift never builds a packed struct. */
int clinux_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data);

/* epoll_wait into parallel arrays: events[i] and data[i], avoiding packed-struct access from Swift. */
int clinux_epoll_wait(int epfd, uint32_t *events, uint64_t *data, int maxevents, int timeout_ms);

/* signalfd for exactly the given signals, after blocking them in the calling thread. */
int clinux_signalfd_for(const int *signals, int count);
/* Blocks the given signals in the calling thread (threads created later inherit the mask). */
int clinux_block_signals(const int *signals, int count);
/* Reads one signalfd record; returns the signal number, 0 when none is pending, -1 on error. */
int clinux_signalfd_read(int fd);

/* Monotonic clock in nanoseconds. */
uint64_t clinux_monotonic_ns(void);
/* Wall clock in milliseconds since the epoch. */
int64_t clinux_wall_ms(void);

/* Fills buf with len bytes from the kernel CSPRNG; returns 0 on success. */
int clinux_random(void *buf, size_t len);

/* Resident set size of this process in bytes, from /proc/self/statm (0 if unreadable). */
uint64_t clinux_rss_bytes(void);

/* Process CPU time (user+system) in nanoseconds. */
uint64_t clinux_process_cpu_ns(void);

/* Number of open file descriptors of this process (counts /proc/self/fd). */
int clinux_open_fd_count(void);

/* Returns freed heap memory to the kernel (glibc malloc_trim(0)); 1 when memory was released. */
int clinux_malloc_trim(void);

/* Pins the calling thread's name (visible in top -H); best effort. */
void clinux_set_thread_name(const char *name);

/* Option values that import as anonymous enums, normalised to int. */
static const int clinux_EPOLL_CLOEXEC = EPOLL_CLOEXEC;
static const int clinux_EFD_NONBLOCK_CLOEXEC = EFD_NONBLOCK | EFD_CLOEXEC;
static const int clinux_EFD_CLOEXEC = EFD_CLOEXEC;
static const int clinux_SOCK_NONBLOCK_CLOEXEC = SOCK_NONBLOCK | SOCK_CLOEXEC;
static const int clinux_SO_REUSEPORT = SO_REUSEPORT;

#endif
