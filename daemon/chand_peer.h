/*
 * chand_peer.h - a connection from this chand to another node of its
 * cluster, as a client of it: a replica to its primary (chand_repl.c), a
 * group's primary to the primary a slot moves to (chand_slots.c).
 *
 * The link dials HOST:PORT (tls://HOST:PORT too) on the server's loop, with
 * TLS when this node's listeners speak TLS (nodes of one cluster share
 * their TLS settings: the peer's certificate is checked against --tls-ca
 * and the address's host, and this node shows its own certificate), says
 * Hello with the node's --auth-file token, and hands each Reply frame to
 * its owner.  It never redials by itself: the owner decides when.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAND_PEER_H
#define CHAND_PEER_H

#include <stdbool.h>
#include <stdint.h>

#include "chan.pb-c.h"

typedef struct chand_server chand_server_t;
typedef struct chand_peer chand_peer_t;

typedef struct peer_cbs {
    /* The connection is up and Hello is written: send requests now. */
    void (*connected)(void *arg);
    /* A reply (its memory is gone after the call).  Return false to drop
     * the connection (then `down` follows, with a reason of the owner's
     * own already said). */
    bool (*reply)(void *arg, const Chan__Reply *r);
    /* After the replies of one read: a good moment to answer in bulk. */
    void (*read_done)(void *arg);
    /* The connection failed or ended (why: a sentence), or the owner's
     * reply callback refused a frame (why: NULL).  The link is down: the
     * owner may connect again. */
    void (*down)(void *arg, const char *why);
} peer_cbs_t;

/* chand_peer_new - a link for s's loop; who names its owner in log lines
 * ("replica", "slot move").  max_frame: the longest reply frame taken.
 * NULL if this node's TLS files cannot be loaded (logged). */
chand_peer_t *chand_peer_new(chand_server_t *s, const char *who, uint64_t max_frame,
                             const peer_cbs_t *cbs, void *arg);
/* chand_peer_connect - dial addr (a link that is up is closed first).
 * -1 if the dial cannot even start (why logged by `down`, which is called
 * before this returns). */
int chand_peer_connect(chand_peer_t *p, const char *addr);
/* chand_peer_send - write request rq, giving it the link's next id, which
 * is returned (0: the link is down, nothing written). */
uint64_t chand_peer_send(chand_peer_t *p, Chan__Request *rq);
/* chand_peer_up - connected (Hello written), not yet down. */
bool chand_peer_up(const chand_peer_t *p);
/* chand_peer_pending - bytes written and not yet taken by the socket. */
size_t chand_peer_pending(const chand_peer_t *p);
/* chand_peer_close - drop the connection now, without calling `down`. */
void chand_peer_close(chand_peer_t *p);
void chand_peer_free(chand_peer_t *p);

#endif /* CHAND_PEER_H */
