/*  evr_runner_id.h: evrun-runner's id (broker mode), kept in its store. */
#ifndef EVR_RUNNER_ID_H_INCLUDED
#define EVR_RUNNER_ID_H_INCLUDED

#include "evr_config.h"
#include "evr_store.h"

/*  The runner's id: the runner_id setting (--id), else the one its store
    keeps, else one made from the host name and kept.  A store keeps the
    id of the runner whose log it holds: an --id that differs is refused
    (its jobs would be taken as another runner's, refused by the broker
    and cancelled) once its log holds events; a store whose id an older
    runner kept (one that kept a made id, never a given one) takes the
    given one.  NULL after a message on stderr. */
char *evr_runner_id(evr_config_t *cfg, evr_store_t *store, const char *state_dir);

#endif
