/*  evr_runner_tune.c: evrun-runner's process settings (see
    evr_runner_tune.h), apart from main.c's wiring.

    Output passes through buffers of 64 KiB and more (a chunk, its
    event, LMDB's overflow pages), freed within a turn or a commit.
    glibc's defaults hand such memory back to the kernel and take it
    again at once: for 100 MB of output the page faults were a quarter
    of the runner's time.  Kept: up to 32 MiB free at the top of the
    heap, blocks under 4 MiB from the heap.

    Printed output goes out once per commit (the engine flushes stdout
    after the actions of a commit), not per chunk: stdout to a file or a
    pipe gets a buffer that holds a commit's worth of chunks (100 MB of
    output were ~4,600 writes, ~3 per chunk, with stdio's 4 KiB).  A
    terminal keeps its line buffer. */
#include "evr_runner_tune.h"

#include <malloc.h>
#include <stdio.h>
#include <unistd.h>

void
evr_runner_tune(void)
{
    mallopt(M_MMAP_THRESHOLD, 4 << 20);
    mallopt(M_TRIM_THRESHOLD, 32 << 20);
    static char buf[1u << 20];   /* glibc ignores a size given without a buffer */
    if (!isatty(STDOUT_FILENO))
        setvbuf(stdout, buf, _IOFBF, sizeof buf);
}
