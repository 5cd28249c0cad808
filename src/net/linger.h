/* net/linger.h: lingering close (RFC 9112 section 9.6). A server that
 * closes a socket while the client's bytes wait unread makes the kernel
 * send a reset, and the reset can destroy the reply still sitting in the
 * client's receive buffer: a client uploading a body the server refused
 * (413 before reading it) then sees "connection reset" instead of the 413.
 * The lingerer takes such a socket, reads and drops what still comes until
 * the client closes or a deadline passes, and only then closes it.
 * Internal to the daemon. */
#ifndef INFERD_NET_LINGER_H
#define INFERD_NET_LINGER_H

#include <stdbool.h>

typedef struct net_linger net_linger;

/* Up to max_sockets sockets at once, each for at most timeout_ms. NULL
 * when the thread cannot start (callers then close at once, as before). */
net_linger *net_linger_start(unsigned max_sockets, unsigned timeout_ms);

/* True when fd has unread input, so closing it now would reset the
 * connection. */
bool net_linger_needed(int fd);

/* Takes fd (the caller's own descriptor, e.g. a dup of a socket whose
 * reply is sent): it is shut for writing, drained and closed later. When
 * the lingerer is full or NULL, fd is closed now. */
void net_linger_add(net_linger *l, int fd);

/* Closes every socket still lingering and ends the thread. */
void net_linger_stop(net_linger *l);

#endif
