/*  evr_spool.h: bytes handed from one thread to the event loop in place.

    One producer thread writes into memory the spool gives it and puts
    what it wrote; the loop peeks at the oldest bytes put, where they
    lie, and takes them once done.  Nothing is copied on the way (a pipe
    between them cost a copy into the kernel and one out of it, and the
    system calls, for every byte).  The bytes live in segments of a fixed
    size; a segment the loop has taken whole is kept for the next (till
    the spool goes), and while the loop keeps up the producer writes the
    same segment from its start again.  What the spool holds is bounded: at
    most `max` bytes of segments, then the producer is refused room until
    the loop takes some.  Each side waits in poll(2) on an eventfd of its
    own: the loop's is readable while bytes put are not taken, the
    producer's once room came back after a refusal, or the loop closed.

    A put is never split: what one put publishes lies in one segment, and
    peek gives it whole (with what was put before it in that segment), so
    the producer can lay out records that the loop reads without joining
    pieces.  All calls are thread-safe in that sense: room and put from
    the producer, peek, take and close from the loop. */
#ifndef EVR_SPOOL_H_INCLUDED
#define EVR_SPOOL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct evr_spool evr_spool_t;

/*  A spool of segments of seg bytes, holding at most max bytes of them
    (max >= seg).  NULL (errno set) when an eventfd cannot be made.
    Caller owns the result. */
evr_spool_t *evr_spool_new(size_t seg, size_t max);
/*  Frees it all; the producer must be done with it (its thread joined). */
void evr_spool_destroy(evr_spool_t **self_p);

/* ----------------------------------------------------------- the producer */

/*  Where the producer may write at least need bytes (need <= seg): the
    free end of the current segment, or a new one; *room says how many
    bytes it may write there.  NULL when the spool holds max bytes
    already (poll evr_spool_room_fd for room; it is readable once the loop
    took a segment) or the loop closed it (evr_spool_closed). */
uint8_t *evr_spool_room(evr_spool_t *self, size_t need, size_t *room);
/*  Publishes the first n bytes at what evr_spool_room gave last (n at
    most its *room) and wakes the loop. */
void evr_spool_put(evr_spool_t *self, size_t n);
/*  The producer's eventfd: readable once room came back after
    evr_spool_room refused it, or the loop closed the spool.  The
    producer reads it (8 bytes) before asking for room again. */
int evr_spool_room_fd(const evr_spool_t *self);
/*  True once the loop closed the spool: the producer should stop. */
bool evr_spool_closed(evr_spool_t *self);

/* --------------------------------------------------------------- the loop */

/*  The loop's eventfd: readable while bytes put are not taken (cleared
    by evr_spool_peek, set again by evr_spool_take when bytes are left). */
int evr_spool_fd(const evr_spool_t *self);
/*  The oldest bytes put and not taken, as they lie (all that was put in
    the oldest segment holding any): *len of them, valid until taken.
    NULL (*len 0) when there are none. */
const uint8_t *evr_spool_peek(evr_spool_t *self, size_t *len);
/*  The first n bytes of what evr_spool_peek gave are done (n at most its
    *len); a segment taken whole goes, and room comes back. */
void evr_spool_take(evr_spool_t *self, size_t n);
/*  The loop leaves: the producer is refused room from now on and woken
    (evr_spool_room_fd). */
void evr_spool_close(evr_spool_t *self);

#endif
