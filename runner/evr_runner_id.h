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

/*  The runner_id setting, when set, a runner id (evr_spec_name_ok): an
    empty one (--id "$ID" with ID unset) took the made one in silence.
    EVR_ERR_CONFIG naming the setting and its source, recorded for
    evr_config_report, so that --print-config says it as a start does. */
evr_rc_t evr_runner_id_check(const evr_config_t *cfg, evr_err_t *err);

#endif
