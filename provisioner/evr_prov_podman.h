/*  evr_prov_podman.h: the containers of evrun-provisioner's `kind:
    podman` providers, through podman's REST API (the runner's HTTP
    client, evr_http.h, on a loop of this module's own; each call is
    synchronous and bounded by a timeout).

    A runner's container runs the image's entrypoint (evrun-runner) with
    the arguments given, is removed by podman when it exits ("remove":
    true, as `podman run --rm`), logs to a host file (k8s-file), carries
    the labels evrun.provisioner and evrun.runner, and gets the host
    paths it needs bound at the same paths inside (the podman socket, the
    broker's ipc directory, its state directory), so that the paths the
    runner hands podman for its steps' containers (its control channel
    under its state directory) name the same files on the host.
*/
#ifndef EVR_PROV_PODMAN_H_INCLUDED
#define EVR_PROV_PODMAN_H_INCLUDED

#include "evr_common.h"
#include "evr_field.h"
#include "evr_prov.h"

typedef struct evr_prov_podman evr_prov_podman_t;

typedef struct {
    const char *name;           /* the container's name */
    const char *image;
    const evr_strlist_t *args;  /* the entrypoint's arguments */
    const evr_strlist_t *env;   /* NAME=value */
    const evr_strlist_t *binds; /* host paths, each bound at the same path (read-write) */
    const evr_strlist_t *volumes;  /* SRC:DEST[:ro]: SRC absolute (a bind) or a volume name */
    const char *network;        /* host, bridge or none */
    const char *log;            /* the host file of its output (absolute) */
    const char *provisioner;    /* label evrun.provisioner */
    const char *runner;         /* label evrun.runner */
} evr_prov_podman_spec_t;

/*  url: "unix:///path/podman.sock".  NULL (why in err) for another form. */
evr_prov_podman_t *evr_prov_podman_new(const char *url, evr_err_t *err);
void evr_prov_podman_destroy(evr_prov_podman_t **self_p);
const char *evr_prov_podman_url(const evr_prov_podman_t *self);
/*  The socket path of url (in url), for the bind. */
const char *evr_prov_podman_socket(const evr_prov_podman_t *self);


/*  The JSON body of spec's create (caller frees); NULL when a string of
    spec is not UTF-8 (JSON cannot carry it). */
char *evr_prov_podman_body(const evr_prov_podman_spec_t *spec);

/*  Creates and starts spec's container.  EVR_ERR_PODMAN with podman's
    message ("... image not known"), or EVR_ERR_IO for the transport; a
    container created that did not start is removed. */
evr_rc_t evr_prov_podman_run(evr_prov_podman_t *self, const evr_prov_podman_spec_t *spec,
                             evr_err_t *err);

/*  Whether container name is there: *there false when podman does not
    know it (removed); *exited when it has exited (podman removes it in a
    moment).  EVR_ERR_* when podman did not answer (nothing known). */
evr_rc_t evr_prov_podman_state(evr_prov_podman_t *self, const char *name, bool *there,
                               bool *exited, evr_err_t *err);

/*  SIGTERM to the runner (its container goes when it exits). */
evr_rc_t evr_prov_podman_term(evr_prov_podman_t *self, const char *name, evr_err_t *err);
/*  Removes the container, killing it (grace_s seconds after SIGTERM);
    EVR_OK when it is gone or was not there. */
evr_rc_t evr_prov_podman_remove(evr_prov_podman_t *self, const char *name, int grace_s,
                                evr_err_t *err);

/*  Starts the runner id of podman provider p: evrun-runner --broker
    endpoint --once --clean --id id --labels, --executors, --state-dir
    DIR/runners/ID/state, --podman-url (this service), then p's args; in
    container "evrun-runner-ID", logging to DIR/logs/ID.log.  Bound at the
    same paths: the podman socket, DIR/runners/ID (made here, 0700), the
    directory of an ipc:// endpoint.  dir absolute.  EVR_ERR_* (why in
    err) when it could not start. */
evr_rc_t evr_prov_podman_start(evr_prov_podman_t *self, const evr_prov_provider_t *p,
                               const char *id, const char *dir, const char *endpoint,
                               const char *labels, const char *executors, evr_err_t *err);

/*  The containers of runners labelled evrun.provisioner=dir (running or
    not): *names their names, each followed by '\n' (caller frees).
    EVR_ERR_* when podman did not answer. */
evr_rc_t evr_prov_podman_list(evr_prov_podman_t *self, const char *dir, char **names,
                              evr_err_t *err);

/*  Whether image is in podman's store (*there); EVR_ERR_* when podman did
    not answer. */
evr_rc_t evr_prov_podman_image(evr_prov_podman_t *self, const char *image, bool *there,
                               evr_err_t *err);

#endif
