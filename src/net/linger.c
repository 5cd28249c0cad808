/* Lingering close: one thread polls the sockets handed over, reads and
 * drops their input, and closes each at end of input or its deadline. */
#include "net/linger.h"

#include "core/clock.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct lingering {
    int fd;
    uint64_t deadline_ms;
} lingering;

struct net_linger {
    pthread_t thread;
    int wake;                 /* eventfd: a socket was added, or stop */
    unsigned max, timeout_ms;
    pthread_mutex_t lock;     /* guards the fields below */
    lingering *socks;         /* max entries, n in use */
    unsigned n;
    bool stopping;
};

bool net_linger_needed(int fd)
{
    char c;
    return recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

/* Reads what is there; false once the client has closed or failed. */
static bool drain(int fd)
{
    char buf[16384];
    for (int i = 0; i < 64; i++) { /* a bounded turn: others wait on this thread */
        ssize_t got = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (got > 0)
            continue;
        if (got < 0 && errno == EINTR)
            continue;
        return got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
    return true;
}

static void *linger_main(void *arg)
{
    net_linger *l = arg;
    struct pollfd *pfd = calloc((size_t)l->max + 1, sizeof *pfd);
    for (;;) {
        pthread_mutex_lock(&l->lock);
        if (l->stopping || !pfd) {
            l->stopping = true; /* later additions are closed at once */
            break;              /* with the lock held: closed below */
        }
        uint64_t now = inferd__now_ms(), next = UINT64_MAX;
        unsigned n = 0;
        for (unsigned i = 0; i < l->n; i++) {
            if (l->socks[i].deadline_ms <= now) {
                close(l->socks[i].fd); /* too slow to finish: a reset now is deserved */
                continue;
            }
            if (l->socks[i].deadline_ms < next)
                next = l->socks[i].deadline_ms;
            l->socks[n++] = l->socks[i];
        }
        l->n = n;
        for (unsigned i = 0; i < n; i++)
            pfd[i] = (struct pollfd){.fd = l->socks[i].fd, .events = POLLIN};
        pthread_mutex_unlock(&l->lock);
        pfd[n] = (struct pollfd){.fd = l->wake, .events = POLLIN};
        int timeout = next == UINT64_MAX ? -1 : (int)(next - now);
        if (poll(pfd, n + 1, timeout) < 0 && errno != EINTR)
            usleep(10000);
        if (pfd[n].revents & POLLIN) {
            uint64_t v;
            ssize_t ignored = read(l->wake, &v, sizeof v);
            (void)ignored;
        }
        /* Only this thread removes entries, and additions go to the end:
         * the first n are still the ones polled. */
        pthread_mutex_lock(&l->lock);
        unsigned kept = 0;
        for (unsigned i = 0; i < l->n; i++) {
            if (i < n && pfd[i].revents && !drain(l->socks[i].fd)) {
                close(l->socks[i].fd);
                continue;
            }
            l->socks[kept++] = l->socks[i];
        }
        l->n = kept;
        pthread_mutex_unlock(&l->lock);
    }
    for (unsigned i = 0; i < l->n; i++)
        close(l->socks[i].fd);
    l->n = 0;
    pthread_mutex_unlock(&l->lock);
    free(pfd);
    return NULL;
}

net_linger *net_linger_start(unsigned max_sockets, unsigned timeout_ms)
{
    net_linger *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->max = max_sockets ? max_sockets : 1;
    l->timeout_ms = timeout_ms;
    l->socks = calloc(l->max, sizeof *l->socks);
    l->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    pthread_mutex_init(&l->lock, NULL);
    if (!l->socks || l->wake < 0 || pthread_create(&l->thread, NULL, linger_main, l) != 0) {
        if (l->wake >= 0)
            close(l->wake);
        pthread_mutex_destroy(&l->lock);
        free(l->socks);
        free(l);
        return NULL;
    }
    return l;
}

void net_linger_add(net_linger *l, int fd)
{
    /* The reply is sent: the end of it (FIN) tells the client so. */
    shutdown(fd, SHUT_WR);
    if (!l) {
        close(fd);
        return;
    }
    pthread_mutex_lock(&l->lock);
    bool taken = !l->stopping && l->n < l->max;
    if (taken)
        l->socks[l->n++] = (lingering){fd, inferd__now_ms() + l->timeout_ms};
    pthread_mutex_unlock(&l->lock);
    if (!taken) {
        close(fd);
        return;
    }
    uint64_t one = 1;
    ssize_t ignored = write(l->wake, &one, sizeof one);
    (void)ignored;
}

void net_linger_stop(net_linger *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->lock);
    l->stopping = true;
    pthread_mutex_unlock(&l->lock);
    uint64_t one = 1;
    ssize_t ignored = write(l->wake, &one, sizeof one);
    (void)ignored;
    pthread_join(l->thread, NULL);
    close(l->wake);
    pthread_mutex_destroy(&l->lock);
    free(l->socks);
    free(l);
}
